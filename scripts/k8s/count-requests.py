#!/usr/bin/env python3
"""Count the API requests in a test cluster's audit log, by client; prints JSON.

Usage: scripts/k8s/count-requests.py [--dir DIR] [--since TIME] [--until TIME]
                                     [--user-agent PREFIX] [--user NAME] [FILE...]

Reads the audit log that kube-apiserver writes when the cluster was started with
MOON_TEST_AUDIT=1 (scripts/k8s/up.sh): DIR/logs/audit.log and the rotated DIR/logs/audit-*.log
beside it, or the FILEs given. One request is one auditID: a long-running request (watch, log
stream, exec) has two events, ResponseStarted and ResponseComplete, and counts once. The control
plane's own users, kwok and health checks are not in the log at all (see up.sh's audit policy).

Filters (all optional, combined with AND):
  --since TIME         requests received at or after TIME: RFC 3339 (2025-01-31T12:00:00Z, or with
                       an offset, up to 9 fractional digits) or Unix seconds (1738324800.5)
  --until TIME         requests received before TIME
  --user-agent PREFIX  requests whose userAgent starts with PREFIX (e.g. "moon/", "kubectl/")
  --user NAME          requests of user.username NAME (e.g. alice)

Output (one JSON object):
  requests             number of requests that passed the filters
  by_user_agent        counts by userAgent prefix: the text before the first "/" or space
                       ("kubectl/v1.34.4 (linux/amd64) kubernetes/$Format" -> "kubectl")
  by_user_agent_full   counts by the whole userAgent
  by_user              counts by user.username
  by_verb              counts by verb (get, list, watch, create, update, patch, delete, ...)
  by_resource          counts by "VERB RESOURCE" ("create batch/jobs", "get pods/log",
                       "list namespaces"; non-resource requests as "get /apis" without the query)
  by_code              counts by HTTP status of the response ("none" while a request is in flight)
  first, last          requestReceivedTimestamp of the first and last request counted
  files, filters, skipped_lines (lines that were not JSON, e.g. one being written)

Python 3.11 standard library only. Exit status 2 when no audit log is found.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import glob
import json
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

_FRACTION = re.compile(r"\.(\d+)")


def parse_time(text: str) -> dt.datetime:
    """RFC 3339 (fraction cut to microseconds, 'Z' allowed) or Unix seconds -> aware datetime."""
    s = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return dt.datetime.fromtimestamp(float(s), tz=dt.timezone.utc)
    # fromisoformat takes at most 6 fractional digits; `date -Ins` and Go give 9.
    s = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], s, count=1)
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    t = dt.datetime.fromisoformat(s)
    if t.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (add Z or an offset)")
    return t


def time_arg(text: str) -> dt.datetime:
    try:
        return parse_time(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time or Unix seconds: {e}") from None


def default_dir() -> str:
    if os.environ.get("MOON_TEST_CLUSTER_DIR"):
        return os.environ["MOON_TEST_CLUSTER_DIR"]
    cache = os.environ.get("MOON_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "moon"
    )
    return os.path.join(cache, "cluster")


def audit_files(cluster_dir: str) -> list[str]:
    logs = os.path.join(cluster_dir, "logs")
    # Rotated files first (their names sort by time), then the live one.
    files = sorted(glob.glob(os.path.join(logs, "audit-*.log")))
    live = os.path.join(logs, "audit.log")
    if os.path.exists(live):
        files.append(live)
    return files


def read_lines(path: str) -> Iterator[str]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        yield from fh


def user_agent_prefix(ua: str) -> str:
    return re.split(r"[/ ]", ua, maxsplit=1)[0] if ua else "(none)"


def resource_key(event: dict[str, Any]) -> str:
    verb = event.get("verb", "?")
    ref = event.get("objectRef")
    if ref:
        res = ref.get("resource", "?")
        if ref.get("subresource"):
            res += "/" + ref["subresource"]
        if ref.get("apiGroup"):
            res = ref["apiGroup"] + "/" + res
        return f"{verb} {res}"
    return f"{verb} {event.get('requestURI', '?').split('?', 1)[0]}"


def main(argv: list[str]) -> int:
    # --help shows this file's docstring, less its first line and usage paragraph.
    details = (__doc__ or "").split("\n\n", 2)[-1]
    ap = argparse.ArgumentParser(
        prog="count-requests.py",
        description="Count the API requests in a test cluster's audit log; prints JSON.",
        epilog=details,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "files", nargs="*", metavar="FILE", help="audit log files (default: the cluster dir's)"
    )
    ap.add_argument(
        "--dir",
        default=None,
        help="state dir (default: $MOON_TEST_CLUSTER_DIR or ~/.cache/moon/cluster)",
    )
    ap.add_argument(
        "--since",
        type=time_arg,
        metavar="TIME",
        help="RFC 3339 time or Unix seconds; requests received at or after it",
    )
    ap.add_argument(
        "--until",
        type=time_arg,
        metavar="TIME",
        help="RFC 3339 time or Unix seconds; requests received before it",
    )
    ap.add_argument(
        "--user-agent", metavar="PREFIX", help="only requests whose userAgent starts with PREFIX"
    )
    ap.add_argument("--user", metavar="NAME", help="only requests of user.username NAME")
    args = ap.parse_args(argv)

    files = args.files or audit_files(args.dir or default_dir())
    if not files:
        where = os.path.join(args.dir or default_dir(), "logs", "audit.log")
        print(
            f"error: no audit log at {where} (start the cluster with MOON_TEST_AUDIT=1)",
            file=sys.stderr,
        )
        return 2

    # auditID -> the event that describes the request best (ResponseComplete over ResponseStarted)
    requests: dict[str, dict[str, Any]] = {}
    skipped = 0
    no_id = 0
    for path in files:
        try:
            for line in read_lines(path):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    skipped += 1
                    continue
                if not isinstance(event, dict) or event.get("kind") != "Event":
                    skipped += 1
                    continue
                aid = event.get("auditID")
                if not aid:  # never seen; count such an event as a request of its own
                    no_id += 1
                    aid = f"(no auditID) {no_id}"
                prev = requests.get(aid)
                if prev is None or event.get("stage") in ("ResponseComplete", "Panic"):
                    requests[aid] = event
        except OSError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

    keys = ("by_user_agent", "by_user_agent_full", "by_user", "by_verb", "by_resource", "by_code")
    counters: dict[str, collections.Counter[str]] = {k: collections.Counter() for k in keys}
    first = last = None
    n = 0
    for event in requests.values():
        ua = event.get("userAgent", "")
        user = (event.get("user") or {}).get("username", "")
        if args.user_agent is not None and not ua.startswith(args.user_agent):
            continue
        if args.user is not None and user != args.user:
            continue
        received = event.get("requestReceivedTimestamp") or event.get("stageTimestamp")
        if args.since or args.until:
            if not received:
                continue
            t = parse_time(received)
            if args.since and t < args.since:
                continue
            if args.until and t >= args.until:
                continue
        n += 1
        counters["by_user_agent"][user_agent_prefix(ua)] += 1
        counters["by_user_agent_full"][ua or "(none)"] += 1
        counters["by_user"][user or "(none)"] += 1
        counters["by_verb"][event.get("verb", "?")] += 1
        counters["by_resource"][resource_key(event)] += 1
        code = (event.get("responseStatus") or {}).get("code")
        counters["by_code"][str(code) if code is not None else "none"] += 1
        if received:
            # Same format throughout (RFC 3339, UTC, microseconds): text order is time order.
            first = received if first is None or received < first else first
            last = received if last is None or received > last else last

    out: dict[str, Any] = {
        "requests": n,
        **{k: dict(c.most_common()) for k, c in counters.items()},
        "first": first,
        "last": last,
        "files": files,
        "filters": {
            "since": args.since.isoformat() if args.since else None,
            "until": args.until.isoformat() if args.until else None,
            "user_agent": args.user_agent,
            "user": args.user,
        },
        "skipped_lines": skipped,
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
