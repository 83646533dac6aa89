"""moon's HTTP proxy against nginx, in front of the same replicas on loopback.

Run through benchmarks/proxy.sh, which installs nginx, wrk and hey from Debian
and builds `moon-proxy` and `bench-replica` (a one-thread server answering 100
bytes after a fixed delay). Each measure alternates moon and nginx over the
rounds (which goes first alternates too) and compares medians:

1. throughput, `wrk -t1 -c50`, two fast replicas: requests/s and the proxy's
   CPU per request (every thread of moon's process; nginx's master and
   workers), against nginx with one worker (and, for information, two);
2. added latency at one connection, `wrk -t1 -c1`: p50 and p99;
3. one slow replica among four (3 x 1 ms, 1 x 100 ms), `hey -c50 -q20`: the
   share of requests that reach the slow one, and p99, against nginx's
   `least_conn` (and round-robin, for information);
4. a replica killed with SIGKILL under `wrk -c50` load: requests that failed,
   and for moon how long until the replica was ejected;
5. cold start (moon only): a request to a service at zero replicas, held
   while a replica process starts; the time to its answer.

The last line gives the ratios of medians, moon / nginx.

    benchmarks/proxy.sh [--rounds 5] [--duration 5] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
NGINX_CONF = HERE / "proxy" / "nginx.conf.in"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.01)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


@dataclass
class Replica:
    binary: Path
    delay_ms: int = 0
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self) -> Replica:
        self.process = subprocess.Popen([str(self.binary), str(self.port), str(self.delay_ms)])
        wait_listening(self.port)
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def served(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/__count", timeout=5) as r:
            return int(r.read())


class Moon:
    name = "moon"

    def __init__(self, binary: Path, replicas: list[Replica], threads: int = 1):
        self.port = free_port()
        self.admin_port = free_port()
        self.routes = {
            "service": "bench",
            "listen": f"127.0.0.1:{self.port}",
            "endpoints": [
                {"id": f"r{i}", "addr": f"127.0.0.1:{r.port}"} for i, r in enumerate(replicas)
            ],
        }
        self.work = tempfile.TemporaryDirectory(prefix="moon-proxy-bench-")
        routes_file = Path(self.work.name) / "routes.json"
        routes_file.write_text(json.dumps({"routes": [self.routes]}))
        self.process = subprocess.Popen(
            [
                str(binary),
                "--admin",
                f"127.0.0.1:{self.admin_port}",
                "--routes",
                str(routes_file),
                "--threads",
                str(threads),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_listening(self.port)

    def pids(self) -> list[int]:
        return [self.process.pid]

    def admin(self, method: str, path: str, body: dict | None = None) -> dict:
        connection = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=10)
        connection.request(method, path, body=json.dumps(body) if body is not None else None)
        response = connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise SystemExit(f"moon-proxy admin {method} {path}: {response.status} {data!r}")
        return json.loads(data) if data else {}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()
        self.work.cleanup()


class Nginx:
    def __init__(self, replicas: list[Replica], workers: int = 1, method: str = ""):
        self.name = "nginx" + (f" ({workers} workers)" if workers > 1 else "")
        self.name += f" {method}" if method else ""
        self.port = free_port()
        self.work = tempfile.TemporaryDirectory(prefix="nginx-bench-")
        servers = "\n".join(f"        server 127.0.0.1:{r.port} max_fails=0;" for r in replicas)
        text = (
            NGINX_CONF.read_text()
            .replace("@WORKERS@", str(workers))
            .replace("@PREFIX@", self.work.name)
            .replace("@METHOD@", f"{method};" if method else "")
            .replace("@PORT@", str(self.port))
            .replace("@SERVERS@", servers)
        )
        conf = Path(self.work.name) / "nginx.conf"
        conf.write_text(text)
        self.process = subprocess.Popen(["nginx", "-p", self.work.name, "-c", str(conf)])
        wait_listening(self.port)

    def pids(self) -> list[int]:
        children = (
            Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        )
        return [self.process.pid, *map(int, children)]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()
        self.work.cleanup()


UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * UNITS[match[2]]


@dataclass
class WrkResult:
    rps: float
    requests: int
    failed: int
    p50: float
    p99: float
    cpu_per_request: float = 0.0


def wrk(port: int, connections: int, duration: float, pids: list[int], during=None) -> WrkResult:
    before = cpu_seconds(pids)
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        f"http://127.0.0.1:{port}/",
    ]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    if during:
        during()
    out, _ = run.communicate()
    after = cpu_seconds(pids)
    requests = int(re.search(r"(\d+) requests in", out)[1])
    failed = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        failed += int(m[1])
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        failed += sum(int(x) for x in m.groups())
    return WrkResult(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
        requests=requests,
        failed=failed,
        p50=seconds(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1]),
        p99=seconds(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1]),
        cpu_per_request=(after - before) / max(requests, 1),
    )


def hey(port: int, duration: float) -> tuple[int, float, int]:
    """(requests, p99 in seconds, failed) of `hey -c50 -q20`."""
    out = subprocess.run(
        ["hey", "-c", "50", "-q", "20", "-z", f"{duration}s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    p99 = float(re.search(r"99% in ([\d.]+) secs", out)[1])
    ok = sum(int(n) for n in re.findall(r"\[200\]\s+(\d+) responses", out))
    total = sum(int(n) for n in re.findall(r"\[\d+\]\s+(\d+) responses", out))
    errors = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]\s+Get", out, re.M))
    return total, p99, (total - ok) + errors


def median(values: list[float]) -> float:
    return statistics.median(values)


def alternate(rounds: int, sides: list, measure) -> dict[str, list]:
    results: dict[str, list] = {side.name: [] for side in sides}
    for round_ in range(rounds):
        order = sides if round_ % 2 == 0 else list(reversed(sides))
        for side in order:
            results[side.name].append(measure(side))
    return results


def fmt_us(seconds_: float) -> str:
    return f"{seconds_ * 1e6:.1f} µs"


def throughput_and_latency(args, bins) -> dict:
    replicas = [Replica(bins["replica"]).start() for _ in range(2)]
    moon = Moon(bins["proxy"], replicas)
    nginx = Nginx(replicas)
    nginx2 = Nginx(replicas, workers=2)
    try:
        # Warm both: connections to the replicas are made, caches are hot.
        for side in (moon, nginx, nginx2):
            wrk(side.port, 50, 1, side.pids())
        print(f"\n== throughput: wrk -t1 -c50 -d{args.duration}s, two fast replicas ==")
        runs = alternate(
            args.rounds, [moon, nginx, nginx2], lambda s: wrk(s.port, 50, args.duration, s.pids())
        )
        direct = wrk(replicas[0].port, 50, args.duration, [replicas[0].process.pid])
        for name, results in runs.items():
            print(
                f"{name:20} {median([r.rps for r in results]):9.0f} req/s "
                f"(rounds {', '.join(f'{r.rps:.0f}' for r in results)}), "
                f"CPU/request {fmt_us(median([r.cpu_per_request for r in results]))}, "
                f"p99 {median([r.p99 for r in results]) * 1e3:.2f} ms, "
                f"failed {sum(r.failed for r in results)}"
            )
        print(f"{'direct (one replica)':20} {direct.rps:9.0f} req/s")
        print(f"\n== added latency: wrk -t1 -c1 -d{args.duration}s ==")
        single = alternate(
            args.rounds, [moon, nginx], lambda s: wrk(s.port, 1, args.duration, s.pids())
        )
        direct1 = wrk(replicas[0].port, 1, args.duration, [])
        for name, results in single.items():
            print(
                f"{name:20} p50 {fmt_us(median([r.p50 for r in results]))}, "
                f"p99 {fmt_us(median([r.p99 for r in results]))}"
            )
        print(f"{'direct (one replica)':20} p50 {fmt_us(direct1.p50)}, p99 {fmt_us(direct1.p99)}")
        return {"throughput": runs, "single": single}
    finally:
        for side in (moon, nginx, nginx2):
            side.stop()
        for replica in replicas:
            replica.kill()


def slow_replica(args, bins) -> dict:
    replicas = [Replica(bins["replica"], delay_ms=1).start() for _ in range(3)]
    slow = Replica(bins["replica"], delay_ms=100).start()
    replicas.append(slow)
    moon = Moon(bins["proxy"], replicas)
    least = Nginx(replicas, method="least_conn")
    robin = Nginx(replicas)
    robin.name = "nginx round-robin"
    print(
        "\n== one slow replica among four (3 x 1 ms, 1 x 100 ms): "
        f"hey -c50 -q20 -z {args.duration}s =="
    )
    try:

        def measure(side):
            slow_before = slow.served()
            total, p99, failed = hey(side.port, args.duration)
            return (slow.served() - slow_before) / max(total, 1), p99, failed

        runs = alternate(args.rounds, [moon, least, robin], measure)
        for name, results in runs.items():
            print(
                f"{name:20} {median([r[0] for r in results]) * 100:5.2f}% to the slow one "
                f"(rounds {', '.join(f'{r[0] * 100:.2f}' for r in results)}), "
                f"p99 {median([r[1] for r in results]) * 1e3:.1f} ms, "
                f"failed {sum(r[2] for r in results)}"
            )
        return runs
    finally:
        for side in (moon, least, robin):
            side.stop()
        for replica in replicas:
            replica.kill()


def kill_and_watch(replica: Replica, side, ejected_after: list[float], wait: float) -> None:
    """Kills `replica` after `wait`; behind moon, notes when it shows as ejected."""
    time.sleep(wait)
    replica.kill()
    killed = time.monotonic()
    if not isinstance(side, Moon):
        return
    while time.monotonic() - killed < 5:
        status = side.admin("GET", "/routes/bench")
        if any(r["id"] == "r1" and r["state"] == "ejected" for r in status["replicas"]):
            ejected_after.append(time.monotonic() - killed)
            return
        time.sleep(0.002)


def killed_replica(args, bins) -> dict:
    print(f"\n== a replica killed with SIGKILL under wrk -t1 -c50 -d{args.duration}s ==")
    results: dict[str, list] = {"moon": [], "nginx": []}
    for round_ in range(args.rounds):
        order = ["moon", "nginx"] if round_ % 2 == 0 else ["nginx", "moon"]
        for name in order:
            replicas = [Replica(bins["replica"]).start() for _ in range(3)]
            side = Moon(bins["proxy"], replicas) if name == "moon" else Nginx(replicas)
            ejected_after: list[float] = []
            kill = functools.partial(
                kill_and_watch, replicas[1], side, ejected_after, args.duration / 2
            )
            try:
                result = wrk(side.port, 50, args.duration, side.pids(), during=kill)
            finally:
                side.stop()
                for replica in replicas:
                    replica.kill()
            results[name].append(
                (result.failed, result.requests, ejected_after[0] if ejected_after else None)
            )
    for name, rounds in results.items():
        failed = sum(r[0] for r in rounds)
        requests = sum(r[1] for r in rounds)
        ejection = [r[2] for r in rounds if r[2] is not None]
        extra = ""
        if name == "moon":
            if len(ejection) == len(rounds):
                extra = f", ejected after {median(ejection) * 1e3:.0f} ms (median; "
                extra += f"max {max(ejection) * 1e3:.0f} ms)"
            else:
                extra = f", ejected in only {len(ejection)} of {len(rounds)} rounds"
        print(f"{name:20} {failed} failed of {requests} requests{extra}")
    return results


def held_request(port: int, answer: list) -> None:
    """One GET; appends (status, seconds to the answer) to `answer`."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/")
    response = connection.getresponse()
    response.read()
    answer.append((response.status, time.monotonic() - started))


def cold_start(args, bins) -> list[float]:
    print("\n== cold start (moon): a request held at zero replicas while one starts ==")
    port = free_port()
    moon = Moon(bins["proxy"], [])
    route = dict(moon.routes, endpoints=[], holdMs=30_000, health={"intervalMs": 1000})
    moon.admin("PUT", "/routes/bench", route)
    times = []
    try:
        for _ in range(args.rounds):
            replica = Replica(bins["replica"], port=port)
            answer: list = []
            client = threading.Thread(target=held_request, args=(moon.port, answer))
            client.start()
            while moon.admin("GET", "/routes/bench")["held"] == 0:
                time.sleep(0.002)
            replica.start()
            moon.admin(
                "PUT",
                "/routes/bench",
                dict(route, endpoints=[{"id": "r0", "addr": f"127.0.0.1:{port}"}]),
            )
            client.join()
            status, elapsed = answer[0]
            if status != 200:
                raise SystemExit(f"the held request was answered {status}")
            times.append(elapsed)
            moon.admin("PUT", "/routes/bench", route)
            replica.kill()
        print(
            f"{'moon':20} first answer after {median(times) * 1e3:.0f} ms (median), "
            f"rounds {', '.join(f'{t * 1e3:.0f}' for t in times)} ms"
        )
        return times
    finally:
        moon.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s: a smoke run")
    parser.add_argument("--proxy", type=Path, required=True, help="the moon-proxy binary")
    parser.add_argument("--replica", type=Path, required=True, help="the bench-replica binary")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 2
    bins = {"proxy": args.proxy, "replica": args.replica}

    fast = throughput_and_latency(args, bins)
    slow = slow_replica(args, bins)
    killed = killed_replica(args, bins)
    cold = cold_start(args, bins)

    def med(runs, name, key):
        return median([key(r) for r in runs[name]])

    rps = med(fast["throughput"], "moon", lambda r: r.rps) / med(
        fast["throughput"], "nginx", lambda r: r.rps
    )
    cpu = med(fast["throughput"], "moon", lambda r: r.cpu_per_request) / med(
        fast["throughput"], "nginx", lambda r: r.cpu_per_request
    )
    p50 = med(fast["single"], "moon", lambda r: r.p50) / med(
        fast["single"], "nginx", lambda r: r.p50
    )
    p99 = med(fast["single"], "moon", lambda r: r.p99) / med(
        fast["single"], "nginx", lambda r: r.p99
    )
    slow_share = med(slow, "moon", lambda r: r[0])
    least_share = med(slow, "nginx least_conn", lambda r: r[0])
    slow_p99 = med(slow, "moon", lambda r: r[1])
    moon_failed = sum(r[0] for r in killed["moon"]) + sum(r[2] for r in slow["moon"])
    print(
        f"\nmoon / nginx: req/s {rps:.2f}x, CPU per request {cpu:.2f}x, "
        f"p50 at one connection {p50:.2f}x, p99 {p99:.2f}x; "
        f"slow replica share {slow_share * 100:.2f}% "
        f"({slow_share / max(least_share, 1e-9):.2f}x nginx least_conn's "
        f"{least_share * 100:.1f}%), "
        f"p99 {slow_p99 * 1e3:.1f} ms; killed replica: {sum(r[0] for r in killed['moon'])} failed "
        f"(nginx {sum(r[0] for r in killed['nginx'])}); cold start {median(cold) * 1e3:.0f} ms"
    )
    return 1 if moon_failed else 0


if __name__ == "__main__":
    sys.exit(main())
