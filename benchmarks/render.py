"""Rendering: 10,000 one-replica GPU jobs to their Kubernetes objects, from Python.

Three ways build the same three objects for each job (the anchor ConfigMap holding the job's
spec, the headless Service, and the replica's batch Job with its GPU, tolerations, environment
and shared-memory volume) and serialise them:

- moon: ``moon.render(job, output="json")`` (or ``"yaml"``) from a :class:`moon.Job`; parsing,
  validation and rendering happen in moon's native code;
- the official client (``kubernetes``): ``V1ConfigMap``, ``V1Service`` and ``V1Job`` models, made
  JSON-ready by ``ApiClient.sanitize_for_serialization`` and written by ``json.dumps`` (or
  ``yaml.safe_dump_all``);
- plain dicts: the same objects as literal dicts, written by ``json.dumps`` (or
  ``yaml.safe_dump_all``); the leanest Python can be, and with no validation at all.

Before timing, every job's three outputs are parsed back and compared: they must be the same
objects (the benchmark exits 1 otherwise). The sides alternate, and each figure is the median of
the rounds.

    .venv/bin/pip install -r scripts/requirements-bench.txt   # the official client
    .venv/bin/python benchmarks/render.py [--jobs 10000] [--rounds 5] [--quick]

Targets (JSON): moon at least 10x the official client, and no slower than 1.5x plain dicts. The
last line gives both ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any, Callable

import yaml
from kubernetes import client as k8s

import moon

# moon renders replicas whose spec names no image with its default image.
IMAGE = "python:3.12-slim"
MANAGER = {"app.kubernetes.io/managed-by": "moon"}


def jobs(count: int) -> list[moon.Job]:
    """One-replica jobs that each ask for one GPU, all different."""
    return [
        moon.Job(
            name=f"llm-{i}",
            tenant="vision",
            roles=[
                moon.Role(
                    "main",
                    command=["python", "train.py", f"--seed={i}"],
                    cpus=4,
                    memory="16Gi",
                    gpus=1,
                )
            ],
        )
        for i in range(count)
    ]


def spec_text(job: moon.Job) -> str:
    """The anchor's copy of the spec, as moon writes it."""
    role = job.roles[0]
    spec = {
        "kind": "Job",
        "name": job.name,
        "tenant": job.tenant,
        "framework": job.framework,
        "roles": [
            {
                "name": role.name,
                "replicas": role.replicas,
                "command": list(role.command),
                "cpus": role.cpus,
                "memory": role.memory,
                "gpus": role.gpus,
            }
        ],
        "restartPolicy": job.restart_policy,
        "backoffLimit": job.backoff_limit,
    }
    return json.dumps(spec, indent=2)


def environment(job: moon.Job) -> list[tuple[str, str]]:
    role = job.roles[0]
    return [
        ("MOON_FRAMEWORK", job.framework),
        ("MOON_JOB", job.name),
        ("MOON_RANK", "0"),
        ("MOON_REPLICA", f"{role.name}-0"),
        ("MOON_REPLICA_INDEX", "0"),
        ("MOON_ROLE", role.name),
        ("MOON_TENANT", job.tenant),
        ("MOON_WORLD_SIZE", "1"),
    ]


# --------------------------------------------------------------------------- plain dicts


def dict_objects(job: moon.Job) -> list[dict[str, Any]]:
    role = job.roles[0]
    labels = {**MANAGER, "moon.dev/job": job.name, "moon.dev/tenant": job.tenant}
    replica = f"{job.name}-{role.name}-0"
    replica_labels = {**labels, "moon.dev/replica-index": "0", "moon.dev/role": role.name}
    resources = {"cpu": str(role.cpus), "memory": str(role.memory)}

    def meta(name: str, labels: dict[str, str]) -> dict[str, Any]:
        return {"labels": labels, "name": name, "namespace": job.tenant}

    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "data": {"job.json": spec_text(job)},
            "metadata": meta(job.name, labels),
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(job.name, labels),
            "spec": {
                "clusterIP": "None",
                "ports": [],
                "publishNotReadyAddresses": True,
                "selector": {"moon.dev/job": job.name},
            },
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta(replica, replica_labels),
            "spec": {
                "backoffLimit": 0,
                "completionMode": "NonIndexed",
                "completions": 1,
                "parallelism": 1,
                "podReplacementPolicy": "Failed",
                "template": {
                    "metadata": {"labels": replica_labels},
                    "spec": {
                        "containers": [
                            {
                                "command": list(role.command),
                                "env": [
                                    {"name": name, "value": value}
                                    for name, value in environment(job)
                                ],
                                "image": IMAGE,
                                "name": role.name,
                                "resources": {
                                    "limits": {**resources, "nvidia.com/gpu": str(role.gpus)},
                                    "requests": resources,
                                },
                                "volumeMounts": [{"mountPath": "/dev/shm", "name": "dshm"}],
                            }
                        ],
                        "enableServiceLinks": False,
                        "hostname": replica,
                        "restartPolicy": "Never",
                        "serviceAccountName": "moon-workload",
                        "subdomain": job.name,
                        "tolerations": [
                            {
                                "effect": "NoSchedule",
                                "key": "nvidia.com/gpu",
                                "operator": "Exists",
                            }
                        ],
                        "volumes": [{"emptyDir": {"medium": "Memory"}, "name": "dshm"}],
                    },
                },
            },
        },
    ]


# --------------------------------------------------------------------------- official client


def model_objects(job: moon.Job) -> list[Any]:
    role = job.roles[0]
    labels = {**MANAGER, "moon.dev/job": job.name, "moon.dev/tenant": job.tenant}
    replica = f"{job.name}-{role.name}-0"
    replica_labels = {**labels, "moon.dev/replica-index": "0", "moon.dev/role": role.name}
    resources = {"cpu": str(role.cpus), "memory": str(role.memory)}

    def meta(name: str, labels: dict[str, str]) -> k8s.V1ObjectMeta:
        return k8s.V1ObjectMeta(labels=labels, name=name, namespace=job.tenant)

    container = k8s.V1Container(
        command=list(role.command),
        env=[k8s.V1EnvVar(name=name, value=value) for name, value in environment(job)],
        image=IMAGE,
        name=role.name,
        resources=k8s.V1ResourceRequirements(
            limits={**resources, "nvidia.com/gpu": str(role.gpus)}, requests=resources
        ),
        volume_mounts=[k8s.V1VolumeMount(mount_path="/dev/shm", name="dshm")],
    )
    pod = k8s.V1PodSpec(
        containers=[container],
        enable_service_links=False,
        hostname=replica,
        restart_policy="Never",
        service_account_name="moon-workload",
        subdomain=job.name,
        tolerations=[
            k8s.V1Toleration(effect="NoSchedule", key="nvidia.com/gpu", operator="Exists")
        ],
        volumes=[k8s.V1Volume(empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory"), name="dshm")],
    )
    return [
        k8s.V1ConfigMap(
            api_version="v1",
            kind="ConfigMap",
            data={"job.json": spec_text(job)},
            metadata=meta(job.name, labels),
        ),
        k8s.V1Service(
            api_version="v1",
            kind="Service",
            metadata=meta(job.name, labels),
            spec=k8s.V1ServiceSpec(
                cluster_ip="None",
                ports=[],
                publish_not_ready_addresses=True,
                selector={"moon.dev/job": job.name},
            ),
        ),
        k8s.V1Job(
            api_version="batch/v1",
            kind="Job",
            metadata=meta(replica, replica_labels),
            spec=k8s.V1JobSpec(
                backoff_limit=0,
                completion_mode="NonIndexed",
                completions=1,
                parallelism=1,
                pod_replacement_policy="Failed",
                template=k8s.V1PodTemplateSpec(
                    metadata=k8s.V1ObjectMeta(labels=replica_labels), spec=pod
                ),
            ),
        ),
    ]


# --------------------------------------------------------------------------- the sides

API = k8s.ApiClient()


def moon_json(job: moon.Job) -> str:
    return moon.render(job, output="json")


def moon_yaml(job: moon.Job) -> str:
    return moon.render(job)


def official_json(job: moon.Job) -> str:
    return json.dumps(API.sanitize_for_serialization(model_objects(job)))


def official_yaml(job: moon.Job) -> str:
    return yaml.safe_dump_all(API.sanitize_for_serialization(model_objects(job)))


def dicts_json(job: moon.Job) -> str:
    return json.dumps(dict_objects(job))


def dicts_yaml(job: moon.Job) -> str:
    return yaml.safe_dump_all(dict_objects(job))


def parsed(text: str) -> list[Any]:
    """The objects of a JSON List, a JSON array or a YAML stream, the spec's copy parsed too."""
    if text.startswith("{"):
        objects = json.loads(text)["items"]
    elif text.startswith("["):
        objects = json.loads(text)
    else:
        objects = [doc for doc in yaml.safe_load_all(text) if doc]
    for each in objects:
        if each["kind"] == "ConfigMap":
            each["data"]["job.json"] = json.loads(each["data"]["job.json"])
    return objects


def check(sample: list[moon.Job]) -> None:
    for job in sample:
        want = parsed(moon_json(job))
        for side in (moon_yaml, official_json, official_yaml, dicts_json, dicts_yaml):
            if parsed(side(job)) != want:
                print(f"{side.__name__} differs from moon for job {job.name}", file=sys.stderr)
                sys.exit(1)


def per_job_us(side: Callable[[moon.Job], str], work: list[moon.Job]) -> float:
    started = time.perf_counter()
    for job in work:
        side(job)
    return (time.perf_counter() - started) / len(work) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="500 jobs, 3 rounds: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.rounds = 500, 3
    work = jobs(args.jobs)
    check(work[:50])
    sides = {
        "json": {"moon": moon_json, "official": official_json, "dicts": dicts_json},
        "yaml": {"moon": moon_yaml, "official": official_yaml, "dicts": dicts_yaml},
    }
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for form, each in sides.items():
            for name, side in each.items():
                times.setdefault((form, name), []).append(per_job_us(side, work))
    median = {key: statistics.median(values) for key, values in times.items()}
    print(f"{args.jobs} one-replica GPU jobs, 3 objects each, median of {args.rounds} rounds:")
    for form in sides:
        for name in sides[form]:
            print(f"  {form:4} {name:8} {median[(form, name)]:8.1f} µs per job")
    for form in sides:
        moon_us = median[(form, "moon")]
        print(
            f"{form}: official/moon {median[(form, 'official')] / moon_us:.1f}x, "
            f"moon/dicts {moon_us / median[(form, 'dicts')]:.2f}x"
        )


if __name__ == "__main__":
    main()
