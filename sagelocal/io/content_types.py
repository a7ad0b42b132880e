"""Content-type strings SageMaker uses, and one parser for ``Content-Type`` / ``ContentType`` values.

Media types and parameter names are case-insensitive; parameters follow ``;`` with optional spaces
(``text/csv; label_size=0``, ``text/CSV;label_size=0``). The short aliases the SageMaker XGBoost
container accepts (``csv``, ``libsvm``, ``parquet``, ``recordio-protobuf``) map to the full types.
"""

from __future__ import annotations

import re

from ..base.errors import UnsupportedContentTypeError

RECORDIO_PROTOBUF = "application/x-recordio-protobuf"
CSV = "text/csv"
LIBSVM = "text/libsvm"
PARQUET = "application/x-parquet"
JSON = "application/json"
JSONLINES = "application/jsonlines"
RECORDIO = "application/x-recordio"  # MXNet image RecordIO (image algorithms)
IMAGE = "application/x-image"
JPEG = "image/jpeg"
PNG = "image/png"
TEXT = "text/plain"

ALIASES = {
    "csv": CSV,
    "libsvm": LIBSVM,
    "text/x-libsvm": LIBSVM,
    "parquet": PARQUET,
    "recordio-protobuf": RECORDIO_PROTOBUF,
    # DeepAR's documented channel content types for JSON lines files (gzip is detected by its magic bytes)
    "json": JSONLINES,
    "json.gz": JSONLINES,
}

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
_MEDIA_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+")


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a content type into its lower-cased media type and its parameters.

    Parameter names are lower-cased, values are kept as written with quotes removed; a parameter
    without ``=`` (``application/json;verbose``) gets the value ``""``. Aliases are resolved, so
    ``parse_content_type("CSV; Label_Size=0")`` returns ``("text/csv", {"label_size": "0"})``.
    A malformed value raises :class:`UnsupportedContentTypeError`.
    """
    if not isinstance(value, str) or not value.strip():
        raise UnsupportedContentTypeError(f"content type must be a non-empty string; got {value!r}")
    parts = _split_parameters(value)
    media = parts[0].strip().lower()
    media = ALIASES.get(media, media)
    if not _MEDIA_TYPE.fullmatch(media):
        raise UnsupportedContentTypeError(f"malformed content type {value!r}: expected 'type/subtype'")
    params: dict[str, str] = {}
    for part in parts[1:]:
        if not part.strip():
            continue  # tolerate "text/csv;" and ";;"
        name, _, raw = part.partition("=")
        name = name.strip().lower()
        if not _TOKEN.fullmatch(name):
            raise UnsupportedContentTypeError(f"malformed parameter {part.strip()!r} in content type {value!r}")
        params[name] = _unquote(raw.strip())
    return media, params


def _split_parameters(value: str) -> list[str]:
    """Split on ``;`` outside double quotes (a quoted parameter value may contain ``;``)."""
    parts, current, quoted, escaped = [], [], False, False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    return raw
