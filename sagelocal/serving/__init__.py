"""Inference in SageMaker's request and response formats: the HTTP server and batch transform.

- :func:`serve` runs ``sagelocal serve`` in the foreground; :class:`LocalServer` starts a real server
  process on a free port of 127.0.0.1 as a context manager (for tests and notebooks).
- :func:`transform` runs a batch transform job over a file or folder.
- :class:`Invoker` is the one predict path both use: ``(body, Content-Type, Accept) -> Answer``.
- :mod:`sagelocal.io.codecs` holds one codec class per content type.
"""

from ..io.codecs import (
    REQUEST_CODECS,
    RESPONSE_CODECS,
    RequestCodec,
    ResponseCodec,
)
from .errors import PayloadTooLargeError, UnsupportedAcceptError
from .invocation import Answer, Invoker
from .jsonpath import JSONPath, JSONPathError
from .server import LocalServer, ServerSettings, ServerStartError, serve
from .transform import TransformError, TransformResult, transform

__all__ = [
    "REQUEST_CODECS", "RESPONSE_CODECS", "Answer", "Invoker", "JSONPath", "JSONPathError", "LocalServer",
    "PayloadTooLargeError", "RequestCodec", "ResponseCodec", "ServerSettings", "ServerStartError",
    "TransformError", "TransformResult", "UnsupportedAcceptError", "create_app", "serve", "transform",
]


def create_app(model, **options):
    """The ASGI application serving ``model`` (an estimator, or an :class:`Invoker`) in process.

    ``timeout`` (seconds per invocation) goes to the application, other ``options`` to the :class:`Invoker`.
    """
    from .app import create_app as _create_app

    timeout = options.pop("timeout", 60.0)
    invoker = model if isinstance(model, Invoker) and not options else Invoker(model, **options)
    return _create_app(invoker, timeout=timeout)
