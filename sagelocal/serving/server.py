"""Running the inference server: settings from SageMaker's variables, uvicorn workers, a test harness.

:func:`serve` runs the Starlette application on uvicorn in the foreground (``sagelocal serve``). Each
worker process loads the model once at start-up. :class:`LocalServer` starts a real server process on
a free port of 127.0.0.1, waits until ``/ping`` answers, and stops it on exit::

    with LocalServer("model/", workers=2) as server:
        boto3.client("sagemaker-runtime", endpoint_url=server.url, ...)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..base.errors import SagelocalError
from .invocation import DEFAULT_MAX_PAYLOAD_BYTES, Answer, Invoker

DEFAULT_PORT = 8080
DEFAULT_TIMEOUT = 60.0
DEFAULT_MODEL_DIR = "/opt/ml/model"
WORKER_HEALTHCHECK_TIMEOUT = 120
#: How ``serve`` hands its settings to the worker processes uvicorn spawns.
SETTINGS_VARIABLE = "SAGELOCAL_SERVING_SETTINGS"


class ServerStartError(SagelocalError):
    """The server process could not start or never answered ``/ping``."""


#: Prefixes of the environment variables a server hands to its model (read once, at start-up).
SERVING_PREFIXES = ("SAGEMAKER_", "SAGELOCAL_", "DEEPAR_")


@dataclass(frozen=True)
class ServerSettings:
    """Everything a server process needs, read from SageMaker's variables.

    Attributes
    ----------
    model_dir : the model directory or ``model.tar.gz`` (``/opt/ml/model``).
    host : the address to bind, ``SAGELOCAL_HOST``; 127.0.0.1 unless told otherwise (a Docker image
        for SageMaker sets 0.0.0.0).
    port : ``SAGEMAKER_BIND_TO_PORT``, default 8080.
    workers : ``SAGEMAKER_MODEL_SERVER_WORKERS``, default the number of CPU cores.
    timeout : ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` seconds per invocation, default 60.
    max_payload_bytes : ``MAX_CONTENT_LENGTH``, default 6 MiB; larger bodies get 413.
    default_accept : ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``, the Accept used for none or ``*/*``.
    batch : ``SAGEMAKER_BATCH`` set (batch transform framing).
    allow_pickle : load pickled payloads (only for models you trust).
    access_log : log every request (off by default: it costs throughput).
    log_level : uvicorn's log level.
    environment : the ``SAGEMAKER_*`` / ``SAGELOCAL_*`` / ``DEEPAR_*`` variables, read once here; each worker
        hands them to its model (``SAGEMAKER_INFERENCE_OUTPUT``, ``DEEPAR_INFERENCE_CONFIG``, ...).
    """

    model_dir: str = DEFAULT_MODEL_DIR
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 1
    timeout: float = DEFAULT_TIMEOUT
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    default_accept: str | None = None
    batch: bool = False
    allow_pickle: bool = False
    access_log: bool = False
    log_level: str = "info"
    environment: dict = field(default_factory=dict)

    @classmethod
    def from_environment(cls, environ=None, **overrides) -> ServerSettings:
        """Settings from SageMaker's variables in ``environ`` (default ``os.environ``), then ``overrides``.

        ``None`` overrides are ignored, so command-line options left unset keep the variables' values.
        """
        env = os.environ if environ is None else environ
        values = {
            "host": env.get("SAGELOCAL_HOST") or "127.0.0.1",
            "port": _number(env, "SAGEMAKER_BIND_TO_PORT", int, DEFAULT_PORT),
            "workers": _number(env, "SAGEMAKER_MODEL_SERVER_WORKERS", int, os.cpu_count() or 1),
            "timeout": _number(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", float, DEFAULT_TIMEOUT),
            "max_payload_bytes": _number(env, "MAX_CONTENT_LENGTH", int, DEFAULT_MAX_PAYLOAD_BYTES),
            "default_accept": env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or None,
            "batch": bool(env.get("SAGEMAKER_BATCH")),  # XGBoost treats any non-empty value as true
            "environment": {k: str(v) for k, v in env.items() if k.startswith(SERVING_PREFIXES)},
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise :class:`SagelocalError` naming the first out-of-range setting."""
        problems = [(self.port, "port", 0, 65535), (self.workers, "workers", 1, 1024),
                    (self.timeout, "timeout", 0, None), (self.max_payload_bytes, "max_payload_bytes", 0, None)]
        for value, name, low, high in problems:
            if value < low or (high is not None and value > high):
                bound = f">= {low}" if high is None else f"in [{low}, {high}]"
                raise SagelocalError(f"server setting '{name}' must be {bound}; got {value}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerSettings:
        data = json.loads(text)
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def _number(env, name: str, kind, default):
    raw = env.get(name)
    if raw is None or not str(raw).strip():
        return default
    try:
        return kind(str(raw).strip())
    except ValueError:
        raise SagelocalError(f"environment variable {name} must be {'an integer' if kind is int else 'a number'}; "
                             f"got {raw!r}") from None


def load_invoker(settings: ServerSettings) -> Invoker:
    """The model of ``settings`` loaded once, behind its :class:`Invoker`."""
    from ..base.artifacts import load_estimator as load

    model = load(settings.model_dir, allow_pickle=settings.allow_pickle)
    return Invoker(model, max_payload_bytes=settings.max_payload_bytes,
                   default_accept=settings.default_accept, batch=settings.batch, environ=settings.environment)


def app_from_environment():
    """uvicorn's application factory in each worker: load the model named by ``SAGELOCAL_SERVING_SETTINGS``."""
    from .app import create_app

    settings = ServerSettings.from_json(os.environ[SETTINGS_VARIABLE])
    return create_app(load_invoker(settings), timeout=settings.timeout, workers=settings.workers)


def serve(settings: ServerSettings | None = None, **options) -> None:
    """Run the server in the foreground until interrupted (SIGINT / SIGTERM).

    ``options`` override fields of ``settings`` (by default read from the environment). The model is
    loaded here first, so a bad model fails at once with a clear error; with several workers each
    worker process then loads its own copy at start-up. Worker processes are spawned, so a script
    calling this with ``workers > 1`` needs the usual ``if __name__ == "__main__":`` guard.
    """
    import uvicorn

    from .app import create_app

    if settings is None:
        settings = ServerSettings.from_environment(**options)
    elif options:
        settings = replace(settings, **{k: v for k, v in options.items() if v is not None})
    invoker = load_invoker(settings)
    common = {"host": settings.host, "port": settings.port, "access_log": settings.access_log,
              "log_level": settings.log_level, "timeout_graceful_shutdown": 10,
              "timeout_keep_alive": 60}  # SDK clients reuse connections between calls
    if settings.workers == 1:
        uvicorn.run(create_app(invoker, timeout=settings.timeout, workers=1), **common)
        return
    del invoker  # validated; each worker loads its own copy
    os.environ[SETTINGS_VARIABLE] = settings.to_json()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as SageMaker's containers: one process per core
    # uvicorn's supervisor kills a worker that does not answer its health ping within this many seconds,
    # and a worker only answers once it has imported sagelocal (torch, ...): 5 s, the default, is too
    # short on a busy machine and ends in a restart loop.
    _run_workers(uvicorn.Config(f"{__name__}:app_from_environment", factory=True, workers=settings.workers,
                                timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT, **common))


def _run_workers(config) -> None:
    """uvicorn's multi-process mode, on a listening socket whose connections have Nagle's algorithm off.

    uvicorn binds the shared socket without naming the TCP protocol, so asyncio does not set TCP_NODELAY
    on its connections, and each response (headers and body written separately) then waits ~40 ms for
    the client's delayed ACK. Re-wrapping the socket with its protocol, and setting the option on the
    listener (inherited by accepted sockets on Linux), restores ~1 ms answers.
    """
    from uvicorn.supervisors import Multiprocess

    listener = config.bind_socket()
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener = socket.socket(listener.family, listener.type, socket.IPPROTO_TCP, fileno=listener.detach())
    listener.set_inheritable(True)
    Multiprocess(config, sockets=[listener]).run()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalServer:
    """A real ``sagelocal serve`` process on 127.0.0.1 and a free port, as a context manager.

    Parameters
    ----------
    model : str, Path or Estimator
        A model directory or ``model.tar.gz``, or a fitted estimator (saved to a temporary folder).
    workers : int
        Worker processes.
    env : dict, optional
        Extra environment variables for the server (``SAGEMAKER_*``).
    startup_timeout : float
        Seconds to wait for ``/ping`` to answer 200.
    **options
        Other ``sagelocal serve`` options by their flag names: ``timeout``, ``max_payload_mb``,
        ``default_accept``, ``allow_pickle``, ``access_log``.

    Attributes
    ----------
    url : ``http://127.0.0.1:<port>``, set once started.
    """

    def __init__(self, model, *, workers: int = 1, env: dict[str, str] | None = None,
                 startup_timeout: float = 60.0, **options):
        self.model = model
        self.workers = workers
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.options = options
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self._tmp: str | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        """Start the process and wait until ``/ping`` answers; raise :class:`ServerStartError` if not."""
        self._tmp = tempfile.mkdtemp(prefix="sagelocal-server-")
        try:
            model_dir = self._model_dir()
            self.port = free_port(self.host)
            self._log = open(Path(self._tmp) / "server.log", "wb")
            self.process = subprocess.Popen(self._command(model_dir), stdout=self._log, stderr=subprocess.STDOUT,
                                            env={**os.environ, **self.env}, start_new_session=True)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _model_dir(self) -> str:
        if isinstance(self.model, (str, os.PathLike)):
            return os.fspath(self.model)
        self.model.save(Path(self._tmp) / "model")
        return str(Path(self._tmp) / "model")

    def _command(self, model_dir: str) -> list[str]:
        command = [sys.executable, "-m", "sagelocal.cli", "serve", "--model-dir", model_dir, "--host", self.host,
                   "--port", str(self.port), "--workers", str(self.workers)]
        for name, value in self.options.items():
            flag = "--" + name.replace("_", "-")
            if value is True:
                command.append(flag)
            elif value not in (None, False):
                command += [flag, str(value)]
        return command

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(f"the server exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise ServerStartError(f"the server did not answer /ping within {self.startup_timeout:g} s:\n{self.log_tail()}")

    def log_tail(self, size: int = 4000) -> str:
        """The end of the server's output (stdout and stderr)."""
        if self._tmp is None or not (Path(self._tmp) / "server.log").exists():
            return ""
        return (Path(self._tmp) / "server.log").read_bytes()[-size:].decode("utf-8", "replace")

    def invoke(self, body: bytes, content_type: str | None = None, accept: str | None = None,
               path: str = "/invocations") -> Answer:
        """POST ``body`` to the server (``/invocations`` by default) and return its answer."""
        headers = {k: v for k, v in (("Content-Type", content_type), ("Accept", accept)) if v}
        request = urllib.request.Request(self.url + path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=70) as reply:
                return Answer(reply.status, reply.read(), reply.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.read(), exc.headers.get("Content-Type", ""))

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout`` seconds) and remove its files."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the session we started: the server and its workers
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
