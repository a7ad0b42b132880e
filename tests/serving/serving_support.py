"""Shared helpers of the serving tests: a fitted PCA model on disk and an in-thread uvicorn server."""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time

import numpy as np

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

from sagelocal.base.registry import get_class  # noqa: E402
from tests.common.examples import fit_example  # noqa: E402


def fitted_pca():
    """(estimator, X) of the contract suite's PCA example."""
    est, X, _ = fit_example("pca", get_class("pca"))
    return est, X


def csv_body(rows) -> bytes:
    """Rows as a CSV request body (repr of float32 values round-trips exactly)."""
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in np.asarray(rows)).encode()


def protobuf_body(rows) -> bytes:
    """Rows as RecordIO-protobuf, written by the SageMaker SDK (an independent writer)."""
    from sagemaker.amazon.common import write_numpy_to_dense_tensor

    buffer = io.BytesIO()
    write_numpy_to_dense_tensor(buffer, np.asarray(rows, dtype=np.float32))
    return buffer.getvalue()


def sdk_records(body: bytes):
    """RecordIO-protobuf response records, decoded by the SageMaker SDK's protobuf classes."""
    from sagemaker.amazon.common import read_records

    return read_records(io.BytesIO(body))


@contextlib.contextmanager
def thread_server(app):
    """A real uvicorn server for ``app`` on 127.0.0.1 and a free port, in a thread; yields its URL."""
    import uvicorn

    from sagelocal.serving.server import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the in-thread server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
