"""The serving errors and the one table from exception to HTTP status.

| status | when                                                        | raised as                        |
|--------|-------------------------------------------------------------|----------------------------------|
| 400    | malformed body, wrong feature count, bad request option     | any other :class:`SagelocalError` |
| 406    | an ``Accept`` type the algorithm cannot answer in           | :class:`UnsupportedAcceptError`  |
| 413    | a body over the payload limit (6 MiB by default)            | :class:`PayloadTooLargeError`    |
| 415    | a missing, malformed or unsupported ``Content-Type``        | :class:`UnsupportedContentTypeError` |
| 500    | anything unexpected (the traceback goes to the server log)  | any other exception              |

Each :class:`SagelocalError` carries its status as ``http_status``; :func:`status_for` reads it, so an
algorithm can raise its own subclass with another 4xx status without touching the table.
"""

from __future__ import annotations

from http import HTTPStatus

from ..base.errors import SagelocalError, UnsupportedAcceptError, UnsupportedContentTypeError

__all__ = ["PayloadTooLargeError", "ServingError", "UnsupportedAcceptError", "UnsupportedContentTypeError",
           "error_body", "status_for"]


class ServingError(SagelocalError):
    """A request the server refuses; ``http_status`` is the answer's status."""


class PayloadTooLargeError(ServingError):
    """A request body larger than the payload limit (HTTP 413)."""

    http_status = 413


def status_for(exc: BaseException) -> int:
    """The HTTP status answering ``exc``: its ``http_status`` for sagelocal errors, else 500."""
    if isinstance(exc, SagelocalError):
        status = getattr(exc, "http_status", 400)
        return status if isinstance(status, int) and 400 <= status < 600 else 400
    return 500


def error_body(status: int, message: str) -> dict[str, object]:
    """The JSON body of an error answer: ``{"error": <reason phrase>, "status": ..., "message": ...}``."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"error": phrase, "status": status, "message": message}
