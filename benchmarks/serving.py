"""Serving benchmark: a real ``sagelocal serve`` process against in-process ``predict_records``.

Model: PCA (10 components) fitted on scikit-learn's digits (1,797 x 64, real data). Against a
2-worker server on 127.0.0.1 we measure, with keep-alive HTTP clients:

1. single-record CSV requests, one client: requests per second, p50 / p99 latency;
2. 1,000-record CSV batches, one client: requests and records per second, p50 / p99 latency;
3. the HTTP overhead: each p50 divided by the p50 of the same work in process, both as
   ``predict_records`` on parsed rows (the anchor) and as the full in-process predict path
   (``Invoker.invoke``: decode, predict, encode), with one BLAS thread as in the workers;
4. 8 concurrent clients for ``--duration`` seconds (30 by default): throughput, latencies and the error
   count, which must be zero.

    python benchmarks/serving.py            # writes benchmarks/results/serving.json
    python benchmarks/serving.py --quick    # shorter runs, for a smoke check
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

# One BLAS thread here as in the server's workers (which set OMP_NUM_THREADS=1, as SageMaker's containers
# do), so that the in-process anchor is measured under the same threading; set before numpy loads.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
from _common import RESULTS, command_line, save_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def csv_body(rows: np.ndarray) -> bytes:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows).encode()


def summary(latencies: list[float], elapsed: float, records_per_request: int) -> dict:
    ms = np.asarray(latencies) * 1000
    return {"requests": len(ms), "requests_per_s": round(len(ms) / elapsed, 1),
            "records_per_s": round(len(ms) * records_per_request / elapsed, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def timed(call, count: int) -> tuple[list[float], float]:
    latencies, start = [], time.perf_counter()
    for _ in range(count):
        t = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t)
    return latencies, time.perf_counter() - start


class Client:
    """One keep-alive connection (http.client sends headers and a bytes body in one write)."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=70)

    def post(self, body: bytes) -> int:
        self.connection.request("POST", "/invocations", body=body,
                                headers={"Content-Type": "text/csv", "Accept": "application/json"})
        reply = self.connection.getresponse()
        reply.read()
        return reply.status


def sequential(port: int, body: bytes, count: int, records: int) -> dict:
    client = Client(port)
    for _ in range(min(20, count)):  # warm up both workers' code paths
        client.post(body)
    latencies, elapsed = timed(lambda: _expect_ok(client.post(body)), count)
    return summary(latencies, elapsed, records)


def _expect_ok(status: int) -> None:
    if status != 200:
        raise RuntimeError(f"unexpected status {status}")


def in_process(model, rows: np.ndarray, body: bytes, count: int) -> dict:
    from sagelocal.serving import Invoker

    invoker = Invoker(model)
    records, _ = timed(lambda: model.predict_records(rows), count)
    invoke, _ = timed(lambda: invoker.invoke(body, "text/csv", "application/json"), count)
    return {"predict_records_p50_ms": round(float(np.median(records)) * 1000, 4),
            "invoker_p50_ms": round(float(np.median(invoke)) * 1000, 4)}


def concurrent(port: int, bodies: list[bytes], clients: int, duration: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.perf_counter() + duration

    def work(index: int) -> None:
        client, mine, bad = Client(port), [], []
        i = index
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                status = client.post(bodies[i % len(bodies)])
                if status != 200:
                    bad.append(f"status {status}")
            except (OSError, http.client.HTTPException) as exc:
                bad.append(f"{type(exc).__name__}: {exc}")
                client = Client(port)
            mine.append(time.perf_counter() - t)
            i += 1
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = summary(latencies, time.perf_counter() - start, 1)
    result.update({"clients": clients, "duration_s": duration, "errors": len(errors),
                   "error_examples": errors[:5]})
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and a 10 s concurrency run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=None, help="seconds of the concurrency run")
    parser.add_argument("--output", default=str(RESULTS / "serving.json"))
    args = parser.parse_args(argv)
    single_n, batch_n = (300, 30) if args.quick else (2000, 150)
    duration = args.duration or (10.0 if args.quick else 30.0)

    from sklearn.datasets import load_digits

    import sagelocal
    from sagelocal.serving import LocalServer

    X = load_digits().data.astype(np.float32)
    model = sagelocal.PCA(num_components=10, algorithm_mode="regular").fit(X)
    batch = np.resize(X, (1000, X.shape[1]))
    single_body, batch_body = csv_body(X[:1]), csv_body(batch)

    results = {"benchmark": "serving", "command": command_line(__file__, argv),
               "model": "PCA, 10 components, regular mode, fitted on scikit-learn digits (1797 x 64)",
               "server": {"workers": args.workers, "bind": "127.0.0.1", "http": "uvicorn"},
               "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                           "platform": platform.platform()},
               "note": "timings taken on a shared 2-core machine under contention from other jobs"}
    with LocalServer(model, workers=args.workers) as server:
        port = server.port
        single = sequential(port, single_body, single_n, 1)
        batches = sequential(port, batch_body, batch_n, 1000)
        local_single = in_process(model, X[:1], single_body, single_n)
        local_batch = in_process(model, batch, batch_body, batch_n)
        rows = [csv_body(X[i:i + 1]) for i in range(64)]
        load = concurrent(port, rows, 8, duration)
    single["http_over_predict_records"] = round(single["p50_ms"] / local_single["predict_records_p50_ms"], 2)
    single["http_over_in_process_invoke"] = round(single["p50_ms"] / local_single["invoker_p50_ms"], 2)
    batches["http_over_predict_records"] = round(batches["p50_ms"] / local_batch["predict_records_p50_ms"], 2)
    batches["http_over_in_process_invoke"] = round(batches["p50_ms"] / local_batch["invoker_p50_ms"], 2)
    results.update({"single_record_csv": {**single, "in_process": local_single},
                    "batch_1000_csv": {**batches, "in_process": local_batch},
                    "concurrency_8_clients": load})
    save_results(args.output, results, announce=None)
    print(json.dumps({k: v for k, v in results.items() if k not in ("machine",)}, indent=1))
    print(f"single-record CSV: {single['requests_per_s']} req/s, p50 {single['p50_ms']} ms, p99 {single['p99_ms']} ms; "
          f"HTTP / predict_records = {single['http_over_predict_records']}x")
    print(f"1,000-record CSV: {batches['records_per_s']} records/s, p50 {batches['p50_ms']} ms; "
          f"HTTP / predict_records = {batches['http_over_predict_records']}x")
    print(f"8 clients x {duration:g} s: {load['requests_per_s']} req/s, errors: {load['errors']}")
    return 0 if load["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
