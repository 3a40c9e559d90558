"""Connection floods against a real `qa serve`: idle connections are closed, and running out of descriptors
neither fills the log nor stops the server for longer than the flood.

    python bench/connections.py                              # 5,000 idle connections, then a flood past 256 fds
    python bench/connections.py --only idle --connections 15000
    python bench/connections.py --only exhaustion --server-fds 256 --flood 1000 --hold 75 --json

idle: --connections sockets connect and never send a byte (this process raises its own open-file limit to the
hard limit first). While they are open: /healthz status and latency (a fresh connection each time) and the
server's open descriptors. After QA_KEEPALIVE_TIMEOUT + --margin seconds: how many are still open (qa closes a
connection that sends nothing within the keep-alive timeout; uvicorn alone kept them for good), /healthz again,
and how many lines the server logged. With more than QA_MAX_CONNECTIONS (1000) open, /healthz is answered 503 at
once by design until the idle ones are closed.

exhaustion: a server started with an open-file limit of --server-fds (soft and hard, so `qa serve` cannot raise
it) gets --flood idle connections for --hold seconds, each one the server closes opened again at once, so it
runs out of descriptors the whole time. /healthz is probed every --probe-every seconds meanwhile; then the flood
stops and the script times how long /healthz takes to answer 200 again. The log must stay small: accept()
failing is logged once a minute with a count, not once a second with a traceback.

The server's stdout and stderr go to a file (bench/served.py's log_file); progress goes to stderr. Exit status 1
when an idle connection outlives the timeout and margin, /healthz does not answer 200 once the connections are
gone (within --recover-within seconds after a flood), or the server logs more than --max-log-lines lines in a
part.
"""

from __future__ import annotations

import argparse
import errno
import os
import resource
import secrets
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from served import finish, served_process

REPO = Path(__file__).resolve().parents[1]
BEFORE = {  # what issue 10 measured before the fixes: 21,000 idle connections, 20,000 descriptors
    "connections": 21_000,
    "healthz_s": "30-47",
    "log": "12,062 tracebacks (5 MB) in 50 s",
}


def note(message: str) -> None:
    """Progress on stderr, with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def raise_own_limit(wanted: int) -> int:
    """This process's open-file limit, raised towards the hard limit to hold `wanted` sockets; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def open_idle(port: int, n: int, timeout: float = 30.0) -> list[socket.socket]:
    """`n` connections to the server that will never send anything; those that failed to connect are dropped."""
    pending: dict[int, socket.socket] = {}
    for _ in range(n):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex(("127.0.0.1", port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            continue
        pending[sock.fileno()] = sock
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLOUT)
    connected: list[socket.socket] = []
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for fd, _ in poller.poll(500):
            sock = pending.pop(fd)
            poller.unregister(fd)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected.append(sock)
            else:
                sock.close()
    for sock in pending.values():
        sock.close()
    return connected


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server has closed this connection (end of stream or reset)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def healthz(base_url: str, timeout: float = 60.0) -> tuple[int | str, float]:
    """(status or error name, seconds) of one GET /healthz on a connection of its own."""
    started = time.perf_counter()
    try:
        status: int | str = httpx.get(f"{base_url}/healthz", timeout=timeout).status_code
    except httpx.HTTPError as e:
        status = type(e).__name__
    return status, round(time.perf_counter() - started, 3)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descriptors(pid: int) -> int:
    """Open file descriptors of a process."""
    try:
        return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return -1


@dataclass
class Log:
    """The server's log file, read from where the last look left off."""

    path: Path
    offset: int = 0
    lines: list[str] = field(default_factory=list)

    def new_lines(self) -> list[str]:
        data = self.path.read_bytes()
        fresh = data[self.offset :].decode(errors="replace").splitlines()
        self.offset = len(data)
        self.lines += fresh
        return fresh


def log_summary(lines: list[str]) -> dict[str, Any]:
    """Lines, bytes and tracebacks of a stretch of the log, with the first few lines for the reader."""
    return {
        "lines": len(lines),
        "bytes": sum(len(line) + 1 for line in lines),
        "tracebacks": sum(line.startswith("Traceback") for line in lines),
        "throttle_notes": [line for line in lines if "more like this" in line],
        "first_lines": [line[:200] for line in lines if not line.startswith(" ")][:8],
    }


def fresh_index(folder: Path, env: dict[str, str]) -> Path:
    """An index of the sample corpus in `folder`."""
    index = folder / "index"
    subprocess.run(
        [sys.executable, "-m", "qa", "ingest", "--quiet", str(REPO / "corpus")],
        env={**os.environ, **env, "QA_INDEX_DIR": str(index)},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return index


def idle_part(args: argparse.Namespace, env: dict[str, str], tmp: Path, keepalive: float) -> dict[str, Any]:
    """Many connections that never send a request: /healthz meanwhile, and are they closed?"""
    log = Log(tmp / "idle.log")
    with served_process(fresh_index(tmp / "idle", env), env=env, log_file=log.path) as (client, server):
        base_url = str(client.base_url).rstrip("/")
        log.new_lines()  # the start-up lines are not the flood's
        idle_status, idle_latency = healthz(base_url)
        fds_before = descriptors(server.pid)
        note(f"idle: server up ({fds_before} descriptors); opening {args.connections:,} idle connections")
        started = time.monotonic()
        socks = open_idle(int(base_url.rsplit(":", 1)[1]), args.connections)
        opened_in = time.monotonic() - started
        note(f"idle: {len(socks):,} connected in {opened_in:.1f} s; probing /healthz")
        probes = [healthz(base_url) for _ in range(3)]
        fds_open = descriptors(server.pid)
        time.sleep(max(0.0, started + keepalive + args.margin - time.monotonic()))  # the timeout under test
        still_open = sum(not closed_by_server(s) for s in socks)
        after_status, after_latency = healthz(base_url)
        fds_after = descriptors(server.pid)
        note(f"idle: after {keepalive + args.margin:.0f} s, {still_open:,} still open; /healthz {after_status}")
        for sock in socks:
            sock.close()
        time.sleep(1)  # let the last lines reach the log file
        lines = log.new_lines()
    return {
        "connections": args.connections,
        "connected": len(socks),
        "opened_in_s": round(opened_in, 2),
        "healthz_idle": {"status": idle_status, "s": idle_latency},
        "healthz_while_open": [{"status": s, "s": t} for s, t in probes],
        "server_descriptors": {"before": fds_before, "while_open": fds_open, "after": fds_after},
        "waited_s": keepalive + args.margin,
        "still_open": still_open,
        "healthz_after": {"status": after_status, "s": after_latency},
        "log": log_summary(lines),
    }


def exhaustion_part(args: argparse.Namespace, env: dict[str, str], tmp: Path) -> dict[str, Any]:
    """A flood past the server's descriptor limit: /healthz meanwhile and after, and the log's size."""
    log = Log(tmp / "exhaustion.log")
    index = fresh_index(tmp / "exhaustion", env)
    with served_process(index, env=env, log_file=log.path, open_files=args.server_fds) as (client, server):
        base_url = str(client.base_url).rstrip("/")
        port = int(base_url.rsplit(":", 1)[1])
        log.new_lines()
        fds_before = descriptors(server.pid)
        note(
            f"exhaustion: server up with {fds_before} of {args.server_fds} descriptors used; "
            f"{args.flood:,} connections for {args.hold:.0f} s"
        )
        probes: list[tuple[float, int | str, float]] = []
        stop = threading.Event()

        def probe() -> None:
            while not stop.is_set():
                at = time.monotonic() - flood_started
                status, seconds = healthz(base_url, timeout=args.probe_timeout)
                probes.append((round(at, 1), status, seconds))
                note(f"exhaustion: /healthz at {at:.0f} s: {status} in {seconds:.2f} s")
                stop.wait(args.probe_every)  # the probing rate

        cpu_before = cpu_seconds(server.pid)
        flood_started = time.monotonic()
        socks = open_idle(port, args.flood, timeout=5)
        opened = len(socks)
        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        fds_peak = descriptors(server.pid)
        while time.monotonic() - flood_started < args.hold:
            kept = [s for s in socks if not closed_by_server(s)]
            for sock in set(socks) - set(kept):
                sock.close()
            fresh = open_idle(port, args.flood - len(kept), timeout=0.5) if len(kept) < args.flood else []
            opened += len(fresh)
            socks = kept + fresh
            fds_peak = max(fds_peak, descriptors(server.pid))
            time.sleep(0.5)  # the flood's pace
        stop.set()
        cpu_flood = cpu_seconds(server.pid) - cpu_before
        for sock in socks:
            sock.close()
        stopped = time.monotonic()
        flood_seconds = stopped - flood_started
        note(f"exhaustion: flood over ({opened:,} connections opened); waiting for /healthz")
        prober.join()
        recovered: float | None = None
        while time.monotonic() - stopped < args.recover_within:
            status, _ = healthz(base_url, timeout=5)
            if status == 200:
                recovered = time.monotonic() - stopped
                break
            time.sleep(0.5)  # polling a server we wait for, not synchronisation in a test
        after = [healthz(base_url)[1] for _ in range(5)]
        fds_after = descriptors(server.pid)
        time.sleep(1)  # let the last lines reach the log file
        lines = log.new_lines()
    statuses = [str(s) for _, s, _ in probes]
    answered = [t for _, s, t in probes if s == 200]
    note(f"exhaustion: recovered in {recovered} s; {len(lines)} log lines")
    return {
        "server_fds": args.server_fds,
        "flood": args.flood,
        "hold_s": args.hold,
        "connections_opened": opened,
        "server_cpu_s_during_flood": round(cpu_flood, 1),
        "flood_s": round(flood_seconds, 1),
        "server_descriptors": {"before": fds_before, "peak": fds_peak, "after": fds_after},
        "healthz_during": {
            "probes": len(probes),
            "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
            "answered_p50_s": round(statistics.median(answered), 2) if answered else None,
            "answered_max_s": max(answered) if answered else None,
            "all": probes,
        },
        "recovered_after_s": None if recovered is None else round(recovered, 2),
        "healthz_after_p50_s": round(statistics.median(after), 3),
        "log": log_summary(lines),
    }


def print_tables(results: dict[str, Any]) -> None:
    if "idle" in results:
        r = results["idle"]
        during = ", ".join(f"{p['status']} in {p['s']} s" for p in r["healthz_while_open"])
        fds = r["server_descriptors"]
        print(
            f"\nidle: {r['connected']:,} of {r['connections']:,} connected in {r['opened_in_s']} s, none sends a byte"
        )
        print("| measure | value |\n|---|---|")
        print(f"| /healthz before | {r['healthz_idle']['status']} in {r['healthz_idle']['s']} s |")
        print(f"| /healthz while they are open | {during} |")
        print(
            f"| server descriptors before / while open / after | {fds['before']} / {fds['while_open']} / "
            f"{fds['after']} |"
        )
        print(f"| still open after {r['waited_s']:.0f} s | {r['still_open']:,} |")
        print(f"| /healthz after | {r['healthz_after']['status']} in {r['healthz_after']['s']} s |")
        print(f"| server log | {r['log']['lines']} lines, {r['log']['tracebacks']} tracebacks |")
    if "exhaustion" in results:
        r = results["exhaustion"]
        during = r["healthz_during"]
        fds = r["server_descriptors"]
        print(
            f"\nexhaustion: server limited to {r['server_fds']} descriptors; {r['flood']:,} idle connections kept "
            f"open for {r['hold_s']:.0f} s ({r['connections_opened']:,} opened in all)"
        )
        print(f"| measure | before the fix (issue 10: {BEFORE['connections']:,} connections, 20,000 fds) | now |")
        print("|---|---|---|")
        print(
            f"| /healthz during the flood | {BEFORE['healthz_s']} s | {during['probes']} probes: "
            f"{during['statuses']}; answered in p50 {during['answered_p50_s']} s, max {during['answered_max_s']} s |"
        )
        print(
            f"| /healthz after the flood | - | 200 after {r['recovered_after_s']} s; then p50 "
            f"{r['healthz_after_p50_s']} s |"
        )
        print(
            f"| server log | {BEFORE['log']} | {r['log']['lines']} lines ({r['log']['bytes']:,} B), "
            f"{r['log']['tracebacks']} tracebacks in {r['hold_s']:.0f} s |"
        )
        print(f"| server descriptors before / peak / after | - | {fds['before']} / {fds['peak']} / {fds['after']} |")
        print(f"| server CPU during the flood | - | {r['server_cpu_s_during_flood']} s in {r['flood_s']} s |")
        for line in r["log"]["throttle_notes"]:
            print(f"    log: {line[:160]}")
    for problem in results["problems"]:
        print(f"PROBLEM: {problem}")


def problems_of(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    found = []
    if "idle" in results:
        r = results["idle"]
        if r["still_open"]:
            found.append(f"{r['still_open']} idle connections still open after {r['waited_s']:.0f} s")
        if r["healthz_after"]["status"] != 200:
            found.append(f"/healthz answered {r['healthz_after']['status']} once the idle connections were closed")
        if r["log"]["lines"] > args.max_log_lines:
            found.append(f"the server logged {r['log']['lines']} lines for idle connections")
    if "exhaustion" in results:
        r = results["exhaustion"]
        if r["recovered_after_s"] is None:
            found.append(f"/healthz did not answer 200 within {args.recover_within:.0f} s of the flood's end")
        if r["log"]["lines"] > args.max_log_lines:
            found.append(f"the server logged {r['log']['lines']} lines during the flood")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["idle", "exhaustion"], help="run one part (default: both)")
    parser.add_argument("--connections", type=int, default=5_000, help="idle connections in the first part")
    parser.add_argument("--margin", type=float, default=5.0, help="seconds past QA_KEEPALIVE_TIMEOUT to wait")
    parser.add_argument("--server-fds", type=int, default=256, help="the flooded server's open-file limit")
    parser.add_argument("--flood", type=int, default=1_000, help="idle connections kept open in the flood")
    parser.add_argument("--hold", type=float, default=75.0, help="seconds the flood lasts")
    parser.add_argument("--probe-every", type=float, default=5.0, help="seconds between /healthz probes")
    parser.add_argument("--probe-timeout", type=float, default=60.0, help="seconds a /healthz probe may take")
    parser.add_argument("--recover-within", type=float, default=60.0, help="seconds /healthz may take to recover")
    parser.add_argument("--max-log-lines", type=int, default=60, help="most server log lines allowed in a part")
    parser.add_argument("--keep-logs", type=Path, help="copy the servers' logs into this folder")
    parser.add_argument("--env", action="append", default=[], help="QA_NAME=value for the server (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    env = {"QA_API_KEY": secrets.token_urlsafe(16), **dict(item.split("=", 1) for item in args.env)}
    keepalive = float(env.get("QA_KEEPALIVE_TIMEOUT", os.environ.get("QA_KEEPALIVE_TIMEOUT", "5")))
    limit = raise_own_limit(max(args.connections, args.flood) + 100)
    if limit < max(args.connections, args.flood) + 100:
        parser.error(f"this process may open only {limit} files; lower --connections or --flood")
    results: dict[str, Any] = {"load_average_before": os.getloadavg(), "client_open_file_limit": limit}
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "idle"):
            results["idle"] = idle_part(args, env, Path(tmp), keepalive)
        if args.only in (None, "exhaustion"):
            results["exhaustion"] = exhaustion_part(args, env, Path(tmp))
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in Path(tmp).glob("*.log"):
                shutil.copy(log, args.keep_logs / log.name)
    results["load_average_after"] = os.getloadavg()
    results["problems"] = problems_of(results, args)
    finish(results, args.json, print_tables)


if __name__ == "__main__":
    main()
