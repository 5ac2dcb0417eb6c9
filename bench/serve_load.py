"""Load figures of the web demo (``python -m t2i_tf.serve``): requests/s, latency and peak RSS under many
concurrent clients, and with many idle connections held open, while ``/healthz`` is polled throughout.

    python bench/serve_load.py [--clients=200] [--requests=5] [--idle=300] [--idle_seconds=25]

It builds a tiny untrained TIRG export (the test preset) and a 12-image gallery in a temporary directory, starts
the server on a free port in a subprocess, and runs two phases with asyncio clients (raw HTTP/1.0 sockets):

1. ``--clients`` concurrent clients, each making ``--requests`` retrieve calls in a row (a 32 px PNG + a text);
2. the same load while ``--idle`` connections that never send a byte are held open for ``--idle_seconds``
   (reopened whenever the server closes one, as a hostile client would).

A poller asks ``/healthz`` every 0.2 s during both phases; every answer must come back 200 within 5 s. Peak RSS
is the server process's VmHWM (reset between phases through /proc/PID/clear_refs). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

HEALTH_INTERVAL_S = 0.2
HEALTH_LIMIT_S = 5.0


def make_export(root: str) -> tuple[str, str, bytes]:
    """A tiny untrained TIRG export, a 12-image gallery and one query PNG, under ``root``."""
    import tensorflow as tf

    from configs import tirg as cfg
    from t2i_tf.datasets.css.convert import convert_css
    from t2i_tf.datasets.css.generate import generate_css
    from t2i_tf.tasks.tirg import TirgTask

    raw, records = os.path.join(root, "raw"), os.path.join(root, "records")
    generate_css(raw, seed=3, num_base_scenes=12, edits_per_scene=4, image_size=32)
    convert_css(raw, records, image_size=32)
    task = TirgTask(dict(cfg.TEST, data_dir=records, seed=0))
    task.prepare(os.path.join(root, "run"))
    task.build(tf.distribute.get_strategy())
    export = os.path.join(root, "export")
    task.export(export)
    gallery = os.path.join(root, "gallery")
    os.makedirs(gallery)
    images = sorted(n for n in os.listdir(os.path.join(raw, "images")) if n.startswith("css_test_"))[:13]
    for n in images[1:]:
        shutil.copy(os.path.join(raw, "images", n), os.path.join(gallery, n))
    with open(os.path.join(raw, "images", images[0]), "rb") as f:
        query = f.read()
    return export, gallery, query


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux >= 4.0); False when not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


async def http_call(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, float]:
    """(status, seconds) of one HTTP/1.0 request on a fresh connection; status 0: connection error."""
    t = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (f"{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        writer.write(head + body)
        await writer.drain()
        data = await reader.read()
        writer.close()
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    except (OSError, asyncio.IncompleteReadError, ValueError):
        status = 0
    return status, time.perf_counter() - t


class HealthPoller:
    """Polls /healthz every HEALTH_INTERVAL_S until stopped; records each answer's status and latency."""

    def __init__(self, port: int):
        self.port, self.results, self._stop = port, [], asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                status, dt = await asyncio.wait_for(http_call(self.port, "GET", "/healthz"), HEALTH_LIMIT_S)
            except TimeoutError:
                status, dt = -1, HEALTH_LIMIT_S
            self.results.append((status, dt))
            try:
                await asyncio.wait_for(self._stop.wait(), HEALTH_INTERVAL_S)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()


class IdleHolder:
    """Holds ``n`` connections open that send nothing, reopening each one the server closes."""

    def __init__(self, port: int, n: int):
        self.port, self.n, self.opened, self.closed_by_server, self.failed = port, n, 0, 0, 0
        self._stop = asyncio.Event()

    async def _one(self) -> None:
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.failed += 1
                await asyncio.sleep(0.1)
                continue
            self.opened += 1
            read = asyncio.ensure_future(reader.read())
            stop = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait({read, stop}, return_when=asyncio.FIRST_COMPLETED)
            if read.done():
                self.closed_by_server += 1
            for fut in (read, stop):
                fut.cancel()
            writer.close()

    async def run(self, seconds: float) -> None:
        tasks = [asyncio.ensure_future(self._one()) for _ in range(self.n)]
        await asyncio.sleep(seconds)
        self._stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


async def load(port: int, body: bytes, clients: int, requests: int) -> dict:
    async def client():
        return [await http_call(port, "POST", "/api/retrieve", body) for _ in range(requests)]

    t = time.perf_counter()
    results = [r for rs in await asyncio.gather(*(client() for _ in range(clients))) for r in rs]
    wall = time.perf_counter() - t
    ok = [dt for status, dt in results if status == 200]
    return {"requests": len(results), "ok": len(ok), "errors": len(results) - len(ok),
            "rps": len(ok) / wall, "p50": percentile(ok, 50) if ok else float("nan"),
            "p99": percentile(ok, 99) if ok else float("nan"), "wall": wall}


async def phase(pid: int, port: int, body: bytes, clients: int, requests: int, idle: int, idle_seconds: float) -> dict:
    reset_peak(pid)
    poller = HealthPoller(port)
    poll = asyncio.ensure_future(poller.run())
    holder = None
    if idle:
        holder = IdleHolder(port, idle)
        hold = asyncio.ensure_future(holder.run(idle_seconds))
        await asyncio.sleep(2.0)  # the idle connections are in place before the load starts
    out = await load(port, body, clients, requests)
    if holder is not None:
        await hold
    poller.stop()
    await poll
    health = poller.results
    out.update(peak_rss_mb=rss_kb(pid, "VmHWM") / 1024, rss_after_mb=rss_kb(pid, "VmRSS") / 1024,
               health_polls=len(health), health_ok=sum(s == 200 for s, _ in health),
               health_max=max(dt for _, dt in health), idle=idle,
               idle_opened=holder.opened if holder else 0, idle_closed=holder.closed_by_server if holder else 0,
               idle_failed=holder.failed if holder else 0)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--requests", type=int, default=5, help="retrieve calls per client")
    p.add_argument("--idle", type=int, default=300)
    p.add_argument("--idle_seconds", type=float, default=25.0, help="how long the idle connections are held")
    args = p.parse_args()

    root = tempfile.mkdtemp(prefix="serve_load_")
    server = None
    try:
        export, gallery, query = make_export(root)
        body = json.dumps({"image": base64.b64encode(query).decode(), "text": "make top-left large red circle gray",
                           "top_k": 5}).encode()
        port = free_port()
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        server = subprocess.Popen([sys.executable, "-m", "t2i_tf.serve", f"--export_dir={export}",
                                   f"--gallery_dir={gallery}", f"--port={port}"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while asyncio.run(http_call(port, "GET", "/healthz"))[0] != 200:
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the server did not start: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
        idle_rss = rss_kb(server.pid, "VmRSS") / 1024
        asyncio.run(load(port, body, 4, 5))  # warm-up: traces the export's functions
        load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        rows = [asyncio.run(phase(server.pid, port, body, args.clients, args.requests, 0, 0)),
                asyncio.run(phase(server.pid, port, body, args.clients, args.requests, args.idle, args.idle_seconds))]
        alive = server.poll() is None
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)

    print(f"load average before the phases: {load_before}; after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"server RSS after start-up and warm-up: {idle_rss:.0f} MB; {os.cpu_count()} CPUs; "
          f"{args.clients} clients x {args.requests} retrieve calls per phase")
    print("| phase | requests ok / sent | requests/s | p50 latency | p99 latency | peak RSS | /healthz ok / polls "
          "(slowest) | idle connections opened / closed by the server |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        name = f"{args.clients} concurrent clients" + (f" + {r['idle']} idle connections" if r["idle"] else "")
        idle = f"{r['idle_opened']} / {r['idle_closed']}" if r["idle"] else "-"
        print(f"| {name} | {r['ok']} / {r['requests']} | {r['rps']:.1f} | {1000 * r['p50']:.0f} ms | "
              f"{1000 * r['p99']:.0f} ms | {r['peak_rss_mb']:.0f} MB | {r['health_ok']} / {r['health_polls']} "
              f"({1000 * r['health_max']:.0f} ms) | {idle} |")
    healthy = all(r["health_ok"] == r["health_polls"] for r in rows)
    print(f"server alive at the end: {alive}; /healthz answered every poll within {HEALTH_LIMIT_S:.0f} s: {healthy}")
    return 0 if alive and healthy else 1


if __name__ == "__main__":
    sys.exit(main())
