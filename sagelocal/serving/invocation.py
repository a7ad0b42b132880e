"""The one predict path behind ``/invocations``, the runtime API route and batch transform.

:class:`Invoker` answers ``(body, Content-Type, Accept)`` with ``(status, body, content type)``:
limits → request codec (415) → response codec (406) → decode (400) → the algorithm's
``_serving_input`` and ``predict_records`` → encode. Errors come back as answers built from the one
table in :mod:`sagelocal.serving.errors`; nothing escapes, and no traceback reaches the client.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field

from ..io.codecs import request_codec, request_options, response_codec
from .errors import PayloadTooLargeError, error_body, status_for

logger = logging.getLogger("sagelocal.serving")

#: SageMaker's request limit: 6 MiB (botocore's InvokeEndpoint Body max, XGBoost's MAX_CONTENT_LENGTH).
DEFAULT_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


@dataclass
class Answer:
    """An inference answer: HTTP status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def message(self) -> str:
        """The error message of an error answer ('' for a success)."""
        if self.ok:
            return ""
        try:
            return str(json.loads(self.body).get("message", ""))
        except (ValueError, AttributeError):
            return self.body.decode("utf-8", "replace")


def error_answer(exc: BaseException) -> Answer:
    """The JSON error answer for ``exc`` (status from the table in :mod:`sagelocal.serving.errors`)."""
    status = status_for(exc)
    if status >= 500:
        logger.error("unexpected error while serving a request", exc_info=exc)
        message = f"internal error while serving the request: {type(exc).__name__}: {exc}"
    else:
        message = str(exc)
    return Answer(status, json.dumps(error_body(status, message)).encode(), "application/json")


class Invoker:
    """Answers inference requests for one loaded model, in process.

    Parameters
    ----------
    model : Estimator
        A fitted (or loaded) estimator.
    max_payload_bytes : int
        Bodies above this size are refused with 413 (0: no limit).
    default_accept : str, optional
        The Accept used for a missing Accept or ``*/*`` (``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``); the
        algorithm's ``default_accept`` when None.
    batch : bool
        Answering a batch transform (``SAGEMAKER_BATCH``): passed to the response codecs.
    environ : mapping, optional
        The serving environment (default ``os.environ``, now): the model reads its own variables from it
        once, here (:meth:`Estimator.configure_serving`), never at predict time.

    Calls are serialised per invoker, since a model's predict need not be thread-safe (as the
    SageMaker containers assume: one model per worker process).
    """

    def __init__(self, model, *, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
                 default_accept: str | None = None, batch: bool = False, environ=None):
        model.configure_serving(os.environ if environ is None else environ)
        self.model = model
        self.max_payload_bytes = int(max_payload_bytes)
        self.default_accept = default_accept or None
        self.batch = batch
        self._lock = threading.Lock()

    def check_size(self, size: int) -> None:
        """Raise :class:`PayloadTooLargeError` when ``size`` bytes exceed the payload limit."""
        if self.max_payload_bytes and size > self.max_payload_bytes:
            raise PayloadTooLargeError(f"the request body has {size} bytes; the limit is "
                                       f"{self.max_payload_bytes} bytes ({self.max_payload_bytes / 2**20:g} MiB)")

    def invoke(self, body: bytes, content_type: str | None = None, accept: str | None = None) -> Answer:
        """The answer to one request; never raises for a bad request or a model failure."""
        try:
            return self._invoke(body, content_type, accept)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an answer from the one table
            return error_answer(exc)

    def _invoke(self, body: bytes, content_type: str | None, accept: str | None) -> Answer:
        self.check_size(len(body))
        model = self.model
        decoder, request_params = request_codec(model, content_type)
        encoder, accept_params = response_codec(model, accept, self.default_accept, content_type=content_type)
        if not body:  # an empty request body is answered 204
            return Answer(204, b"", encoder.media_type)
        request = decoder(body, request_params)
        options = request_options(model, accept_params)
        with self._lock:
            inputs, extra = model._serving_input(request)
            records = model.predict_records(inputs, **{**options, **extra})
        payload = encoder(accept_params, batch=self.batch).encode(records, model)
        return Answer(200, payload, encoder.media_type)
