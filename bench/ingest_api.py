"""Sustained rows/s through the ingest API, beside the peer: the same rows written directly as landing files by
the simulator's own atomic writer.

Usage: python bench/ingest_api.py [--seconds 20] [--clients 4] [--batch-rows 500] [--workdir data/bench/ingest].
Generates sales batches with the simulator's generator (faults off, duplicates as usual), starts `salespulse
dashboard` as its own process with one API token per client (rate limit raised so it does not cap the
measure), then each client thread POSTs CSV batches over loopback for SECONDS; every accepted batch lands as
one file. The peer writes the same batches with `write_csv_atomic` from as many threads for as long. Writes
the 'ingest' section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import LoadWatch, publish

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from salespulse.lake import MANIFEST  # noqa: E402
from salespulse.settings import SimulatorSettings  # noqa: E402
from salespulse.simulator.output import write_csv, write_csv_atomic  # noqa: E402
from salespulse.simulator.run import Simulation  # noqa: E402
from salespulse.storage import as_storage  # noqa: E402

END_MS = 1_790_000_000_000  # the other benches' end time
HOUR_MS = 3_600_000


def make_batches(rows_per_batch: int, batches: int) -> list[pa.Table]:
    """Sales batches from the simulator's generator, faults off (the API refuses structurally bad rows)."""
    sim = Simulation(SimulatorSettings(bad_rows_pct=0, seed=21), rate=200.0, run_tag="bench")
    tables: list[pa.Table] = []
    start = END_MS
    while sum(t.num_rows for t in tables) < rows_per_batch * batches:
        parts, _ = sim.window(start, start + HOUR_MS)
        tables.append(pa.concat_tables([t for t in parts if t.num_rows]))
        start += HOUR_MS
    everything = pa.concat_tables(tables)
    return [everything.slice(i * rows_per_batch, rows_per_batch) for i in range(batches)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_dashboard(workdir: Path, tokens: list[str], port: int) -> subprocess.Popen:
    lake = workdir / "lake"
    lake.mkdir(parents=True)
    # An empty published lake: what `salespulse dashboard` needs to start; the API does not read it.
    (lake / MANIFEST).write_text(json.dumps({"tables": {}, "schemas": {}}))
    env = {**os.environ, "SALESPULSE_API__TOKENS": json.dumps(tokens), "SALESPULSE_API__RATE_LIMIT": "1000000/minute",
           "SALESPULSE_PATHS__LANDING": str(workdir / "landing"), "SALESPULSE_PATHS__LAKE": str(lake),
           "PYTHONPATH": str(ROOT)}  # this checkout's code, whatever the environment has installed
    log = (workdir / "dashboard.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "salespulse", "dashboard", "--port", str(port)],
                               env=env, stdout=log, stderr=log, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"bench: the dashboard did not answer /healthz; see {workdir / 'dashboard.log'}")


def run_clients(seconds: float, clients: int, send: list) -> tuple[int, float, list[float], int]:
    """Each client loops over the batches calling its ``send`` until ``seconds`` pass. Returns rows, wall
    seconds, per-call latencies and failures."""
    rows, failures, latencies = [0] * clients, [0] * clients, [[] for _ in range(clients)]
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        position = index
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                rows[index] += send[index](position)
            except (urllib.error.URLError, OSError):
                failures[index] += 1
            latencies[index].append(time.perf_counter() - began)
            position += clients

    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(rows), time.monotonic() - began, [x for per in latencies for x in per], sum(failures)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds, for the API and for the peer")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (threads)")
    parser.add_argument("--batch-rows", type=int, default=500)
    parser.add_argument("--workdir", default=str(ROOT / "data" / "bench" / "ingest"))
    args = parser.parse_args()
    workdir = Path(args.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)

    batches = make_batches(args.batch_rows, 200)
    bodies = []
    for table in batches:
        sink = io.BytesIO()
        write_csv([table], sink)
        bodies.append(sink.getvalue())
    tokens = [f"bench-token-{i}-0123456789abcdef" for i in range(args.clients)]
    port = free_port()
    size_kb = sum(map(len, bodies)) / len(bodies) / 1e3
    print(f"bench: {len(batches)} batches of {args.batch_rows} rows ({size_kb:.0f} kB each); `salespulse dashboard` "
          f"on port {port}; {args.clients} clients for {args.seconds:g} s")

    def poster(index: int):
        def post(position: int) -> int:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/sales", data=bodies[position % len(bodies)], method="POST",
                headers={"Content-Type": "text/csv", "Authorization": f"Bearer {tokens[index]}"})
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())["rows_accepted"]
        return post

    peer_landing = as_storage(workdir / "peer")

    def writer(index: int):
        def write(position: int) -> int:
            table = batches[position % len(batches)]
            write_csv_atomic([table], peer_landing, "sales", f"peer-{index}-{position:08d}.csv")
            return table.num_rows
        return write

    with LoadWatch() as load:
        server = start_dashboard(workdir, tokens, port)
        try:
            api_rows, api_s, api_latency, api_failed = run_clients(
                args.seconds, args.clients, [poster(i) for i in range(args.clients)])
            server_rss = psutil.Process(server.pid).memory_info().rss / 2**20
        finally:
            server.terminate()
            server.wait(timeout=30)
        peer_rows, peer_s, peer_latency, peer_failed = run_clients(
            args.seconds, args.clients, [writer(i) for i in range(args.clients)])

    landed = sorted((workdir / "landing" / "sales").glob("*.csv"))
    landed_rows = sum(sum(1 for _ in f.open()) - 1 for f in landed)
    assert landed_rows == api_rows, (landed_rows, api_rows)  # every accepted row is in exactly one landed file
    api_rps, peer_rps = api_rows / api_s, peer_rows / peer_s
    print(f"bench: API {api_rps:,.0f} rows/s, peer {peer_rps:,.0f} rows/s")
    command = f"bench/ingest_api.py --seconds {args.seconds:g} --clients {args.clients} --batch-rows {args.batch_rows}"
    rows = "\n".join(
        f"| {name} | {rows / seconds:,.0f} | {len(latency):,} | {statistics.median(latency) * 1000:.1f} / "
        f"{percentile(latency, 0.95) * 1000:.1f} | {failed} |"
        for name, rows, seconds, latency, failed in (
            ("ingest API (HTTP + validation + atomic file)", api_rows, api_s, api_latency, api_failed),
            ("peer: direct atomic files", peer_rows, peer_s, peer_latency, peer_failed)))
    publish("ingest", f"""
## Ingest API sustained rate (`{command}`)

`salespulse dashboard` (Werkzeug threaded server, one process) with the ingest API; {args.clients} client threads
on loopback POST CSV batches of {args.batch_rows} simulator sales rows (faults off) for {args.seconds:g} s, one
token each (rate limit raised for the run); every accepted batch is validated and lands as one atomic file.
Peer: the same batches written straight into a landing folder by the simulator's `write_csv_atomic` from
{args.clients} threads for as long. 1-minute load average during the run: {load.summary()}.

| path | rows/s | requests (or files) | p50 / p95 per batch (ms) | failures |
| --- | ---: | ---: | ---: | ---: |
{rows}

- The API sustains **{api_rps:,.0f} rows/s**, **{api_rps / peer_rps:.2f}x** of writing the files directly;
  {len(landed):,} files landed holding exactly the {api_rows:,} accepted rows. Dashboard RSS at the end:
  {server_rss:,.0f} MiB.
""")


if __name__ == "__main__":
    main()
