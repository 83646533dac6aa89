"""Kubernetes submission: jobs submitted and followed to completion on a cluster.

moon's Python API (`client.submit`, then `handle.wait()`, which follows the
cluster's watches) is compared with the official `kubernetes` Python client
creating exactly the objects moon creates (what `moon.render()` gives, plus the
owner references and toleration the backend adds) and then polling each Job's
status the way Kubeflow's SDK waits for a job. Each side runs N one-replica jobs
in a fresh Python process of its own and a namespace of its own; the sides
alternate. Reported per side: wall time from the first submission to the last
completion, the client's CPU time and peak RSS (getrusage of its process, so
moon's Rust threads count), and the API requests it made, counted from the
apiserver's audit log.

    .venv/bin/pip install -r scripts/requirements-bench.txt
    .venv/bin/python benchmarks/kubernetes_jobs.py [--jobs 1000] [--rounds 1] [--json]

The script brings up its own test cluster (scripts/k8s/up.sh with the audit log
on and the controller-manager's and scheduler's API rate limits raised, in
target/bench-cluster, on ports 25xxx) and stops it afterwards unless
--keep-cluster; --kubeconfig uses a running cluster instead. The last line is
the ratio of median wall times, kubernetes client / moon (moon is faster when it
is above 1).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
K8S_SCRIPTS = REPO / "scripts" / "k8s"
DEFAULT_DIR = REPO / "target" / "bench-cluster"
# Ports of this benchmark's own cluster, clear of the test clusters' (23xxx, 26xxx-28xxx).
PORTS = {
    "MOON_TEST_APISERVER_PORT": "25443",
    "MOON_TEST_ETCD_PORT": "25791",
    "MOON_TEST_ETCD_PEER_PORT": "25792",
    "MOON_TEST_KCM_PORT": "25457",
    "MOON_TEST_SCHEDULER_PORT": "25459",
    "MOON_TEST_KWOK_PORT": "25480",
}
# The fake nodes' taint; moon's backend adds it to every pod as configured,
# and the peer adds the same toleration to the manifests it creates.
KWOK_TAINT = "kwok.x-k8s.io/node:NoSchedule"
KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
CPUS_PER_JOB_M = 100
MEMORY_PER_JOB_MI = 64
# Kubeflow's SDKs wait for a job by reading it, checking its conditions and
# sleeping polling_interval seconds, one job per call:
# - kubeflow/sdk, kubeflow/trainer/backends/kubernetes/backend.py,
#   KubernetesBackend.wait_for_job_status(..., polling_interval: int = 2)
#   (what TrainerClient.wait_for_job_status calls; each poll there is a
#   TrainJob get plus a pod list, here one read of the Job's status);
# - kubeflow/training-operator, sdk/python/kubeflow/training/api/training_client.py,
#   TrainingClient.wait_for_job_conditions(..., polling_interval: int = 15).
# The default is the newer, shorter one.
KUBEFLOW_POLL_S = 2.0
PEER_UA_PREFIX = "OpenAPI-Generator/"
WAIT_TIMEOUT_S = 1800


def log(message: str) -> None:
    print(f"[kubernetes_jobs {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def job_name(index: int) -> str:
    return f"j{index:04d}"


def bench_job(moon: Any, namespace: str, i: int) -> Any:
    """Job ``i`` of a run: one replica of 100m CPU, the same on both sides."""
    return moon.Job(
        job_name(i),
        tenant=namespace,
        framework="custom",
        roles=[
            moon.Role(
                "main",
                command=["python", "-c", "pass"],
                cpus=f"{CPUS_PER_JOB_M}m",
                memory=f"{MEMORY_PER_JOB_MI}Mi",
            )
        ],
    )


def run_all(threads: int, work: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """`work` over `items`, in order: a plain loop with one thread, else a pool."""
    if threads <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(work, items))


# ---------------------------------------------------------------------------- the two sides
# Each runs in a fresh process (`--side moon|peer`) and prints one JSON line.


def moon_side(args: argparse.Namespace) -> dict[str, Any]:
    import moon

    client = moon.Client("kubernetes", kubeconfig=args.kubeconfig, tolerations=[KWOK_TAINT])
    setup_started = time.time()
    client.create_tenant(args.namespace, quota=tenant_quota(moon, args.jobs))
    jobs = [bench_job(moon, args.namespace, i) for i in range(args.jobs)]

    def wait(handle: moon.JobHandle) -> str:
        try:
            return handle.wait(timeout=WAIT_TIMEOUT_S).phase
        except moon.JobFailed as error:
            return f"failed: {error}"

    cpu0, started = cpu_seconds(), time.time()
    handles = run_all(args.threads, client.submit, jobs)
    submitted = time.time()
    phases = run_all(args.threads, wait, handles)
    ended, cpu1 = time.time(), cpu_seconds()
    return side_result(setup_started, started, submitted, ended, cpu0, cpu1, phases, "Succeeded")


def tenant_quota(moon: Any, jobs: int) -> Any:
    """Room for every job at once: the cluster, not the quota, limits them."""
    return moon.Quota(
        cpus=f"{jobs * CPUS_PER_JOB_M}m", memory=f"{jobs * MEMORY_PER_JOB_MI}Mi", gpus=0
    )


def peer_side(args: argparse.Namespace) -> dict[str, Any]:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes import utils as k8s_utils

    with open(args.manifests, encoding="utf-8") as fh:
        plan = json.load(fh)
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=args.kubeconfig, client_configuration=configuration)
    # urllib3's pool holds 5 x CPUs connections by default; with more threads
    # than that it would open (and TLS-handshake) a new one per request.
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, args.threads)
    api = k8s.ApiClient(configuration)
    core, batch = k8s.CoreV1Api(api), k8s.BatchV1Api(api)
    namespace = args.namespace

    setup_started = time.time()
    for item in plan["tenant"]:  # the Namespace first, as rendered
        k8s_utils.create_from_dict(api, item)

    def submit(objects: list[dict[str, Any]]) -> str:
        anchor, service, job = objects
        created = core.create_namespaced_config_map(namespace, anchor)
        # As moon's backend does: everything else is owned by the anchor.
        owner = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": created.metadata.name,
            "uid": created.metadata.uid,
            "blockOwnerDeletion": True,
        }
        service["metadata"]["ownerReferences"] = [owner]
        job["metadata"]["ownerReferences"] = [owner]
        core.create_namespaced_service(namespace, service)
        batch.create_namespaced_job(namespace, job)
        return job["metadata"]["name"]

    def wait(name: str) -> str:
        # Kubeflow's loop: read, check the conditions, sleep polling_interval.
        deadline = time.monotonic() + WAIT_TIMEOUT_S
        while True:
            job = batch.read_namespaced_job_status(name, namespace)
            for condition in (job.status and job.status.conditions) or []:
                if condition.type in ("Complete", "Failed") and condition.status == "True":
                    return condition.type
            if time.monotonic() > deadline:
                return "timed out"
            time.sleep(args.poll_interval)

    cpu0, started = cpu_seconds(), time.time()
    names = run_all(args.threads, submit, plan["jobs"])
    submitted = time.time()
    phases = run_all(args.threads, wait, names)
    ended, cpu1 = time.time(), cpu_seconds()
    return side_result(setup_started, started, submitted, ended, cpu0, cpu1, phases, "Complete")


def side_result(
    setup_started: float,
    started: float,
    submitted: float,
    ended: float,
    cpu0: float,
    cpu1: float,
    phases: list[str],
    success: str,
) -> dict[str, Any]:
    failed = [phase for phase in phases if phase != success]
    return {
        "setup_started": setup_started,
        "started": started,
        "submitted": submitted,
        "ended": ended,
        "wall_s": ended - started,
        "submit_s": submitted - started,
        "cpu_s": cpu1 - cpu0,
        "cpu_total_s": cpu1,
        "peak_rss_mib": peak_rss_mib(),
        "jobs_succeeded": len(phases) - len(failed),
        "jobs_not_succeeded": failed[:5],
    }


def child_main(args: argparse.Namespace) -> None:
    result = moon_side(args) if args.side == "moon" else peer_side(args)
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------------- the harness


class Cluster:
    """This benchmark's test cluster, or one given by --kubeconfig."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.dir = Path(args.dir).resolve()
        self.own = args.kubeconfig is None
        self.keep = args.keep_cluster
        self.qps, self.burst = args.cluster_qps, args.cluster_burst
        self.recorded: dict[str, str] = {}
        self.audit_log: str | None = None
        self.kubeconfig = (
            str(self.dir / "admin.kubeconfig") if self.own else str(Path(args.kubeconfig).resolve())
        )

    def up(self) -> None:
        if self.own:
            self._start()
        # Kept for the report: --purge removes the dir before it is printed.
        self.recorded = self._settings()
        self.audit_log = (
            str(self.dir / "logs" / "audit.log")
            if (self.dir / "logs" / "audit.log").exists()
            else None
        )

    def _start(self) -> None:
        env = {
            **os.environ,
            **PORTS,
            "MOON_TEST_AUDIT": "1",
            "MOON_TEST_KUBE_API_QPS": str(self.qps),
            "MOON_TEST_KUBE_API_BURST": str(self.burst),
        }
        log(f"bringing up the test cluster in {self.dir} (scripts/k8s/up.sh)")
        started = time.monotonic()
        subprocess.run(
            [str(K8S_SCRIPTS / "up.sh"), "--dir", str(self.dir), "--quiet"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        log(f"cluster up in {time.monotonic() - started:.1f} s")

    def down(self) -> None:
        if not self.own:
            return
        if self.keep:
            log(f"leaving the cluster running: scripts/k8s/down.sh --dir {self.dir} --purge")
            return
        subprocess.run(
            [str(K8S_SCRIPTS / "down.sh"), "--dir", str(self.dir), "--purge"],
            check=False,
            stdout=subprocess.DEVNULL,
        )
        log("cluster stopped and removed")

    def _settings(self) -> dict[str, str]:
        """The API rate limits the running controller manager was started with."""
        recorded: dict[str, str] = {}
        env_file = self.dir / "config" / "kube-controller-manager.env"
        if env_file.exists():
            for line in env_file.read_text().splitlines():
                key, sep, value = line.partition("=")
                if sep and not key.startswith("#"):
                    recorded[key] = value
        return recorded

    def count_requests(self, since: float, until: float) -> dict[str, Any] | None:
        if self.audit_log is None:
            return None
        out = subprocess.run(
            [
                sys.executable,
                str(K8S_SCRIPTS / "count-requests.py"),
                "--dir",
                str(self.dir),
                "--since",
                f"{since:.6f}",
                "--until",
                f"{until:.6f}",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(out.stdout)


def side_of(user_agent: str) -> str:
    """Whose request it was, by its userAgent: moon's client sends `moon/<version>`
    (builds before it set one sent none: kube-client 5.0.0 sets no User-Agent), the
    official Python client `OpenAPI-Generator/<version>/python`."""
    if user_agent in ("", "(none)") or user_agent.startswith("moon"):
        return "moon"
    if user_agent.startswith(PEER_UA_PREFIX):
        return "peer"
    return "other"


def requests_by_side(counted: dict[str, Any] | None) -> dict[str, Any]:
    if counted is None:
        return {"moon": None, "peer": None, "other": None, "by_resource": {}, "agents": {}}
    sides = {"moon": 0, "peer": 0, "other": 0}
    agents: dict[str, list[str]] = {"moon": [], "peer": [], "other": []}
    for agent, count in counted["by_user_agent_full"].items():
        sides[side_of(agent)] += count
        agents[side_of(agent)].append(agent)
    return {
        **sides,
        "by_resource": counted["by_resource"],
        "by_code": counted["by_code"],
        "agents": agents,
    }


def peer_plan(moon: Any, yaml: Any, namespace: str, jobs: int) -> dict[str, Any]:
    """The objects moon would apply for the tenant and each job, from moon.render()."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # safe_load_all, in C when it can

    def objects(spec: Any) -> list[dict[str, Any]]:
        return [item for item in yaml.load_all(moon.render(spec), Loader=loader) if item]

    plan: dict[str, Any] = {
        "tenant": objects(moon.Tenant(namespace, quota=tenant_quota(moon, jobs))),
        "jobs": [],
    }
    for i in range(jobs):
        job = bench_job(moon, namespace, i)
        rendered = objects(job)
        kinds = [item["kind"] for item in rendered]
        if kinds != ["ConfigMap", "Service", "Job"]:
            raise SystemExit(f"moon.render() gave {kinds} for a one-replica job")
        # moon.render() has no tolerations; the backend adds its configured ones.
        pod = rendered[2]["spec"]["template"]["spec"]
        pod["tolerations"] = [*pod.get("tolerations", []), KWOK_TOLERATION]
        plan["jobs"].append(rendered)
    return plan


def delete_namespace(kubeconfig: str, namespace: str) -> float:
    """Deletes a side's namespace and waits until it is gone, so that the next
    side starts on a quiet cluster; returns the seconds it took."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    api = k8s.CoreV1Api(k8s_config.new_client_from_config(config_file=kubeconfig))
    started = time.monotonic()
    try:
        api.delete_namespace(namespace)
    except k8s.ApiException as error:
        if error.status != 404:
            raise
    while time.monotonic() - started < 900:
        try:
            api.read_namespace(namespace)
        except k8s.ApiException as error:
            if error.status == 404:
                return time.monotonic() - started
            raise
        time.sleep(1)
    raise SystemExit(f"namespace {namespace} still there after 900 s")


def run_side(
    args: argparse.Namespace, cluster: Cluster, side: str, namespace: str, workdir: Path
) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--side",
        side,
        "--namespace",
        namespace,
        "--jobs",
        str(args.jobs),
        "--threads",
        str(args.threads),
        "--poll-interval",
        str(args.poll_interval),
        "--kubeconfig",
        cluster.kubeconfig,
    ]
    if side == "peer":
        import yaml

        import moon

        manifests = workdir / f"{namespace}.json"
        manifests.write_text(json.dumps(peer_plan(moon, yaml, namespace, args.jobs)))
        command += ["--manifests", str(manifests)]
    log(f"{side}: {args.jobs} jobs in namespace {namespace}")
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=REPO)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["jobs_succeeded"] != args.jobs:
        raise SystemExit(
            f"{side}: {result['jobs_succeeded']} of {args.jobs} jobs succeeded; "
            f"e.g. {result['jobs_not_succeeded']}"
        )
    # The audit log is written before each response goes out (blocking mode),
    # so everything the side did is in it by now.
    window = requests_by_side(cluster.count_requests(result["started"], result["ended"] + 1e-3))
    setup = requests_by_side(cluster.count_requests(result["setup_started"], result["started"]))
    result["requests"] = window[side]
    others = [window["other"], window["peer" if side == "moon" else "moon"]]
    # None without an audit log (--kubeconfig of a cluster started without one).
    result["requests_other_clients"] = None if None in others else sum(others)
    result["requests_by_resource"] = window["by_resource"]
    result["requests_by_code"] = window.get("by_code", {})
    result["setup_requests"] = setup[side]
    result["user_agents"] = window["agents"].get(side, [])
    log(
        f"{side}: {result['wall_s']:.1f} s wall ({result['submit_s']:.1f} s submitting), "
        f"{result['cpu_s']:.1f} s CPU, {result['peak_rss_mib']:.0f} MiB peak RSS, "
        f"{result['requests']} API requests"
    )
    if not args.keep_namespaces:
        took = delete_namespace(cluster.kubeconfig, namespace)
        log(f"{side}: deleted namespace {namespace} in {took:.1f} s")
    return result


def median(rounds: list[dict[str, Any]], side: str, key: str) -> float | None:
    values = [r[side][key] for r in rounds if r[side].get(key) is not None]
    return statistics.median(values) if values else None


def ratio(peer: float | None, moon: float | None) -> float | None:
    return peer / moon if peer is not None and moon else None


def report(args: argparse.Namespace, cluster: Cluster, rounds: list[dict[str, Any]]) -> None:
    rows = [
        ("wall time, first submit to last completion (s)", "wall_s", "{:.2f}"),
        ("  of which submitting (s)", "submit_s", "{:.2f}"),
        ("client CPU, user+sys, in that window (s)", "cpu_s", "{:.2f}"),
        ("client CPU, whole process (s)", "cpu_total_s", "{:.2f}"),
        ("client peak RSS (MiB)", "peak_rss_mib", "{:.1f}"),
        ("API requests in that window", "requests", "{:.0f}"),
        ("API requests setting up the tenant", "setup_requests", "{:.0f}"),
    ]
    recorded = cluster.recorded
    qps = recorded.get("KUBE_API_QPS", "unknown")
    burst = recorded.get("KUBE_API_BURST", "unknown")
    settings = {
        "jobs": args.jobs,
        "rounds": args.rounds,
        "threads": args.threads,
        "poll_interval_s": args.poll_interval,
        "controller_manager_qps": qps,
        "controller_manager_burst": burst,
        "cpus": os.cpu_count(),
        "load_average_at_start": args.load_at_start,
        "kubeconfig": cluster.kubeconfig,
        "audit_log": cluster.audit_log,
    }
    medians = {
        side: {key: median(rounds, side, key) for _, key, _ in rows} for side in ("moon", "peer")
    }
    ratios = {key: ratio(medians["peer"][key], medians["moon"][key]) for _, key, _ in rows}
    if args.json:
        print(
            json.dumps(
                {"settings": settings, "rounds": rounds, "median": medians, "ratio": ratios},
                indent=2,
            )
        )
        return

    how = "a plain loop" if args.threads <= 1 else f"a ThreadPoolExecutor of {args.threads} threads"
    print(
        f"{args.jobs} one-replica jobs per side (custom, 100m CPU, 64Mi), {args.rounds} round(s), "
        f"sides alternated, each in a fresh process and namespace; {os.cpu_count()} CPUs shared "
        f"with the cluster (load average at start {args.load_at_start})."
    )
    print(
        f"moon:       client.submit() for every job, then handle.wait() for each (watches), "
        f"both through {how}."
    )
    print(
        f"kubernetes: {PEER_UA_PREFIX.rstrip('/')} client {args.peer_version}: create_namespaced_"
        f"config_map/service/job of moon.render()'s objects, then read_namespaced_job_status per "
        f"job every {args.poll_interval:g} s until Complete (Kubeflow's wait loop), through {how}."
    )
    seen = {
        label: sorted({agent for r in rounds for agent in r[side].get("user_agents") or []})
        for side, label in (("moon", "moon"), ("peer", "kubernetes"))
    }
    agents = "; ".join(f"{label}: {', '.join(found) or 'n/a'}" for label, found in seen.items())
    print(
        f"cluster: controller-manager and scheduler API qps {qps}, burst {burst}; requests "
        f"counted from the audit log by user agent ({agents})."
    )
    print()
    header = f"{'':48} {'moon':>10} {'kubernetes':>11} {'kubernetes/moon':>16}"
    print(header)
    for label, key, fmt in rows:
        moon_value, peer_value, r = medians["moon"][key], medians["peer"][key], ratios[key]
        cells = [fmt.format(v) if v is not None else "n/a" for v in (moon_value, peer_value)]
        print(f"{label:48} {cells[0]:>10} {cells[1]:>11} {f'{r:.2f}x' if r else 'n/a':>16}")
    if args.rounds > 1:
        print(f"(medians of {args.rounds} rounds)")
    for side, label in (("moon", "moon"), ("peer", "kubernetes")):
        resources = rounds[-1][side].get("requests_by_resource") or {}
        top = ", ".join(f"{count} {what}" for what, count in list(resources.items())[:8])
        if top:
            print(f"{label} requests (last round): {top}")
    others = sum(
        r[side].get("requests_other_clients") or 0 for r in rounds for side in r if side != "order"
    )
    if others:
        print(f"note: {others} requests of other clients fell into the measured windows")
    wall = ratios["wall_s"]
    print(
        f"wall time kubernetes / moon: {wall:.2f}x (moon faster when > 1)"
        if wall
        else "wall time kubernetes / moon: n/a"
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per side (default 1000)")
    parser.add_argument("--rounds", type=int, default=1, help="alternated rounds (default 1)")
    parser.add_argument(
        "--threads",
        type=int,
        default=16,
        help="threads each side submits and waits with; 1 is a plain loop (default 16)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=KUBEFLOW_POLL_S,
        help=f"the peer's polling interval in seconds (default {KUBEFLOW_POLL_S:g}, Kubeflow's)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--kubeconfig", help="use the cluster of this kubeconfig instead of starting one"
    )
    parser.add_argument(
        "--dir",
        default=str(DEFAULT_DIR),
        help="state dir of the test cluster, whose audit log counts requests "
        f"(default {DEFAULT_DIR.relative_to(REPO)})",
    )
    parser.add_argument(
        "--keep-cluster", action="store_true", help="leave the cluster running at the end"
    )
    parser.add_argument(
        "--keep-namespaces",
        action="store_true",
        help="leave each side's namespace, jobs and pods (default: delete after each side)",
    )
    parser.add_argument(
        "--cluster-qps", type=int, default=500, help="controller-manager/scheduler API qps"
    )
    parser.add_argument(
        "--cluster-burst", type=int, default=1000, help="controller-manager/scheduler API burst"
    )
    # One side, run by the harness in a process of its own.
    parser.add_argument("--side", choices=("moon", "peer"), help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    parser.add_argument("--manifests", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args(sys.argv[1:])
    if args.side:
        child_main(args)
        return
    try:
        import kubernetes
    except ImportError:
        raise SystemExit(
            "the peer needs the kubernetes client: "
            ".venv/bin/pip install -r scripts/requirements-bench.txt"
        ) from None
    args.peer_version = kubernetes.__version__
    args.load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())

    cluster = Cluster(args)
    rounds: list[dict[str, Any]] = []
    try:
        cluster.up()
        if cluster.audit_log is None:
            log(f"no audit log under {cluster.dir}: API requests are not counted")
        stamp = time.strftime("%H%M%S")
        with tempfile.TemporaryDirectory(prefix="moon-bench-k8s-") as workdir:
            for index in range(1, args.rounds + 1):
                order = ("moon", "peer") if index % 2 else ("peer", "moon")
                results = {
                    side: run_side(
                        args, cluster, side, f"bench-{side}-{stamp}-{index}", Path(workdir)
                    )
                    for side in order
                }
                rounds.append({"order": list(order), **results})
    finally:
        cluster.down()
    report(args, cluster, rounds)


if __name__ == "__main__":
    main()
