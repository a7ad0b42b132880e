"""Response encoders: SageMaker's inference response bodies from an algorithm's records.

Records come from ``Estimator.predict_records``: one dict per input row, such as
``{"projection": [...]}``. The JSON body wraps them under the algorithm's top-level key
(``predictions``, ``projections``, ``scores``); JSON lines writes one record per line; RecordIO-protobuf
writes one ``Record`` per row with each key as a Float32 tensor under ``label``.
"""

from __future__ import annotations

import json
from typing import Any

from ..base.errors import SagelocalError
from ..io.content_types import parse_content_type

JSON = "application/json"
JSONLINES = "application/jsonlines"
RECORDIO_PROTOBUF = "application/x-recordio-protobuf"


class UnsupportedAcceptError(SagelocalError):
    """An Accept type the algorithm cannot answer in (HTTP 406)."""

    http_status = 406


def encode_json(records: list[dict[str, Any]], response_key: str) -> bytes:
    """``{"<response_key>": [record, ...]}``."""
    return json.dumps({response_key: records}).encode()


def encode_jsonlines(records: list[dict[str, Any]], response_key: str = "") -> bytes:
    """One JSON record per line, each line ending with a newline."""
    return "".join(json.dumps(record) + "\n" for record in records).encode()


def encode_recordio_protobuf(records: list[dict[str, Any]], response_key: str = "") -> bytes:
    """One RecordIO-framed ``Record`` per row, values as Float32 tensors under ``label``."""
    from ..io.recordio import encode_records

    return encode_records(records)


ENCODERS = {JSON: encode_json, JSONLINES: encode_jsonlines, RECORDIO_PROTOBUF: encode_recordio_protobuf}


def encode_response(records: list[dict[str, Any]], accept: str | None, response_key: str
                    ) -> tuple[bytes, str]:
    """The body and content type answering ``accept`` (default and ``*/*``: JSON)."""
    media = JSON if not accept or accept.strip() in ("*/*", "") else parse_content_type(accept)[0]
    encoder = ENCODERS.get(media)
    if encoder is None:
        raise UnsupportedAcceptError(f"accept type '{accept}' is not supported; supported: "
                                     f"{', '.join(ENCODERS)}")
    return encoder(records, response_key), media
