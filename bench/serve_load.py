"""`grm serve` under load (not a test): concurrent clients on 127.0.0.1 for a bounded number of requests and a
bounded time, against a server in a child process whose backend is scripted with a fixed service time per
batch (so the figures measure the server: batching, queueing, the overload bound), or the real tiny model.

Two phases: a normal load, then an overload far past the queue bound (``--max-queue``), where the server must
answer 503 (Retry-After) rather than queue without limit. Reports per phase: answers by status, p50/p99 latency
of the 200s as the clients saw it and as the server logged it (its "POST /v1/score 200 in N ms" lines: from
the request reaching the app to the answer), throughput (200s per second) and the server's peak resident memory
(sampled every 20 ms). Clients and server share the machine: on a small one the clients' own event loop adds
to what they see.

    .venv/bin/python -m bench.serve_load [--requests 4000] [--seconds 60] [--clients 16] [--overload-clients 256]
        [--max-queue 64] [--service-ms 20] [--model DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil

from grm.generation.server import free_port, stop_process

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # loopback only


def serve(port: int, max_queue: int, service_ms: float, per_item_ms: float, max_connections: int, log: str) -> None:
    """The server process: the scoring app over a backend that takes ``service_ms`` (+ per item) per batch."""
    import logging

    import uvicorn

    logging.basicConfig(filename=log, level=logging.INFO, format="%(message)s")

    from flows.serving import Limits, create_app
    from grm.reward import GRMReward
    from tests.serve_fuzz import AnyTextJudge

    class Timed(AnyTextJudge):
        def generate(self, requests, params):
            time.sleep((service_ms + per_item_ms * len(requests)) / 1000)
            return super().generate(requests, params)

    app = create_app(GRMReward(Timed(), k=1), Limits(max_queue_items=max_queue))
    uvicorn.run(app, host=HOST, port=port, log_level="warning", limit_concurrency=max_connections)


def start_server(a, port: int) -> subprocess.Popen:
    if a.model:
        cmd = [sys.executable, "-m", "flows.cli", "serve", "--model", a.model, "--device", "cpu", "--max-new-tokens", "16",
               "--host", HOST, "--port", str(port), "--max-queue", str(a.max_queue),
               "--max-connections", str(a.max_connections)]
    else:
        cmd = [sys.executable, "-m", "bench.serve_load", "--serve", str(port), "--max-queue", str(a.max_queue),
               "--service-ms", str(a.service_ms), "--per-item-ms", str(a.per_item_ms),
               "--max-connections", str(a.max_connections), "--server-log", a.server_log]
    env = {k: v for k, v in os.environ.items() if k != "GRM_SERVE_TOKEN"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if httpx.get(f"http://{HOST}:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}")
        time.sleep(0.3)
    stop_process(proc, 10)
    raise SystemExit("the server did not come up")


class PeakRSS:
    """Samples a process's resident memory in a thread."""

    def __init__(self, pid: int):
        self.proc, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()


BODY = {"items": [{"query": "Which answer is right, 7 or 3?", "responses": ["It is 7.", "It is 3."]}]}


async def load(port: int, clients: int, requests: int, seconds: float) -> tuple[Counter, list[float], float]:
    statuses: Counter = Counter()
    latencies: list[float] = []
    sent = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(c: httpx.AsyncClient):
        nonlocal sent
        while sent < requests and time.perf_counter() < deadline:
            sent += 1
            t0 = time.perf_counter()
            try:
                r = await c.post(f"http://{HOST}:{port}/v1/score", json=BODY)
                status = r.status_code
            except httpx.HTTPError as e:
                status = type(e).__name__
            statuses[status] += 1
            if status == 200:
                latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=60) as c:
        await asyncio.gather(*[client(c) for _ in range(clients)])
    return statuses, latencies, time.perf_counter() - t0


def server_latencies(log: str, offset: int) -> list[float]:
    """Milliseconds of the 200s the server logged after byte ``offset`` of its log."""
    with open(log) as f:
        f.seek(offset)
        return [float(m.group(1)) for m in re.finditer(r"POST /v1/score 200 in (\d+) ms", f.read())]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=4000, help="per phase, at most")
    ap.add_argument("--seconds", type=float, default=60, help="per phase, at most")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--overload-clients", type=int, default=256)
    ap.add_argument("--max-queue", type=int, default=64, help="the server's queue bound (items)")
    ap.add_argument("--max-connections", type=int, default=512)
    ap.add_argument("--service-ms", type=float, default=20, help="scripted backend: time per batch")
    ap.add_argument("--per-item-ms", type=float, default=2, help="scripted backend: time per item of a batch")
    ap.add_argument("--model", help="serve this model folder with `grm serve` instead of the scripted backend")
    ap.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the server process
    ap.add_argument("--server-log", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        return serve(a.serve, a.max_queue, a.service_ms, a.per_item_ms, a.max_connections, a.server_log)
    log = tempfile.NamedTemporaryFile(prefix="grm-serve-load-", suffix=".log", delete=False)
    a.server_log = log.name
    port = free_port()
    proc = start_server(a, port)
    try:
        idle = psutil.Process(proc.pid).memory_info().rss
        backend = f"model {a.model}" if a.model else f"scripted backend {a.service_ms:g} ms/batch + {a.per_item_ms:g} ms/item"
        print(f"server: {backend}, queue bound {a.max_queue} items, {a.max_connections} connections; "
              f"resident memory idle {idle / 2**20:.0f} MiB")
        for phase, clients in (("normal", a.clients), ("overload", a.overload_clients)):
            logged = Path(a.server_log).stat().st_size if Path(a.server_log).exists() else 0
            with PeakRSS(proc.pid) as rss:
                statuses, lat, secs = asyncio.run(load(port, clients, a.requests, a.seconds))
            ok = statuses.get(200, 0)
            server_ms = server_latencies(a.server_log, logged) if not a.model else []
            seen = f"; server p50 {pct(server_ms, 0.5):.0f} ms, p99 {pct(server_ms, 0.99):.0f} ms" if server_ms else ""
            print(f"{phase}: {clients} clients, {sum(statuses.values())} requests in {secs:.1f} s; by status "
                  f"{dict(sorted(statuses.items(), key=str))}; 200s: clients p50 {1000 * pct(lat, 0.5):.0f} ms, "
                  f"p99 {1000 * pct(lat, 0.99):.0f} ms{seen}, {ok / secs:.0f}/s; peak memory {rss.peak / 2**20:.0f} MiB")
        assert httpx.get(f"http://{HOST}:{port}/health", timeout=5).status_code == 200, "the server stopped serving"
        print("the server still serves after the overload")
    finally:
        stop_process(proc, 10)
        os.unlink(a.server_log)


if __name__ == "__main__":
    main()
