"""Codecs: one small class per content type, for inference requests and responses.

A *request codec* is built from a request body and its ``Content-Type`` parameters and *is* the decoded
request: ``features`` (float32 rows, dense or CSR, through :func:`sagelocal.io.read` for CSV, libsvm
and RecordIO-protobuf), ``instances`` and ``configuration`` (JSON and JSON lines bodies, for algorithms
whose requests are not feature rows). Decoding is lazy, so an algorithm that reads ``instances`` never
pays for (or fails on) the feature conversion.

A *response codec* turns the records of ``Estimator.predict_records`` (one dict per input row, such as
``{"projection": [...]}``) into a body: JSON wraps them under the algorithm's ``response_key``
(``{"predictions": [...]}``), JSON lines writes one record per line, RecordIO-protobuf writes one
``Record`` per row with each key as a Float32 tensor under ``label`` (as SageMaker does), CSV one line
per record with the values in key order (k-means' ``closest_cluster,distance_to_cluster``).

Algorithms plug in special handling without touching this module: an estimator class may map media
types to its own subclasses in ``request_codecs`` / ``response_codecs`` (XGBoost's CSV rules, its
selectable output), and override ``_serving_input`` to turn a decoded request into what its
``predict_records`` takes (DeepAR's JSON instances and ``configuration``).

A request without ``Accept`` (or with ``*/*``) is answered in ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``,
else in the algorithm's ``default_accept``: ``application/json`` for most, ``text/csv`` for XGBoost, and
:data:`SAME_AS_REQUEST` for the algorithms whose content type and accept must be identical (Seq2Seq,
BlazingText), which answer in the request's own content type.
"""

from __future__ import annotations

import csv
import functools
import inspect
import io
import json
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..base.batch import Batch
from ..base.errors import DataFormatError, UnsupportedAcceptError, UnsupportedContentTypeError
from ..base.hyperparameters import parse_bool
from . import content_types as ct
from .content_types import parse_content_type

JSON = ct.JSON
JSONLINES = ct.JSONLINES
RECORDIO_PROTOBUF = ct.RECORDIO_PROTOBUF
CSV = ct.CSV
LIBSVM = ct.LIBSVM

__all__ = [
    "CSVRequest", "CSVResponse", "JSONLinesRequest", "JSONLinesResponse", "JSONRequest", "JSONResponse",
    "LibSVMRequest", "RecordIOProtobufRequest", "RecordIOProtobufResponse", "RequestCodec", "ResponseCodec",
    "REQUEST_CODECS", "RESPONSE_CODECS", "SAME_AS_REQUEST", "UnsupportedAcceptError", "encode_response",
    "instances_to_features", "request_codec", "request_options", "response_codec",
]

_READ_BATCH = 1 << 16


# ------------------------------------------------------------------------------------------ requests
class RequestCodec:
    """A decoded inference request of one content type (subclasses set ``media_type``).

    Parameters
    ----------
    body : bytes
        The request body.
    params : dict of str to str
        The ``Content-Type`` parameters (``label_size``, ``infer_max_seqlens``, ...).
    """

    media_type: ClassVar[str] = ""

    def __init__(self, body: bytes, params: dict[str, str] | None = None):
        self.body = bytes(body)
        self.params = dict(params or {})

    @cached_property
    def features(self) -> np.ndarray | sp.csr_matrix:
        """The request's rows as float32 features, dense or CSR."""
        raise UnsupportedContentTypeError(f"{self.media_type} requests carry no feature rows")

    @cached_property
    def instances(self) -> list:
        """The request's instances as decoded JSON values (JSON and JSON lines bodies)."""
        raise UnsupportedContentTypeError(f"{self.media_type} requests carry no JSON instances")

    @property
    def configuration(self) -> dict | None:
        """The request's ``configuration`` object (JSON bodies of DeepAR, BlazingText), or None."""
        return None

    def __len__(self) -> int:
        return self.features.shape[0]

    def _read(self, content_type: str, body: bytes | None = None) -> np.ndarray | sp.csr_matrix:
        """Features through :func:`sagelocal.io.read`, the readers training uses too."""
        from .readers import read

        stream = io.BytesIO(self.body if body is None else body)
        stream.name = "request body"  # what the readers' errors name
        batches = list(read(stream, content_type, batch_size=_READ_BATCH))
        if not batches:
            raise DataFormatError(f"the {self.media_type} request holds no records")
        batch = Batch.concat(batches)
        if batch.features is None:
            raise DataFormatError(f"the {self.media_type} request holds no feature rows")
        return batch.features


class CSVRequest(RequestCodec):
    """``text/csv``: one record per line, features only (``label_size=0`` unless the type says)."""

    media_type = CSV

    @cached_property
    def features(self):
        label_size = self.params.get("label_size", "0")  # inference CSV has no label column
        return self._read(f"{CSV};label_size={label_size}")

    @cached_property
    def rows(self) -> list[list[str]]:
        """The lines as lists of cell strings (for algorithms whose CSV cells are not numbers)."""
        charset = self.params.get("charset", "utf-8")
        try:
            text = self.body.decode(charset)
        except (UnicodeDecodeError, LookupError) as exc:
            raise DataFormatError(f"the CSV request body is not {charset} text: {exc}") from None
        return [row for row in csv.reader(io.StringIO(text)) if row]


class LibSVMRequest(RequestCodec):
    """``text/libsvm``: ``[<label>] <index>:<value> ...`` per line (XGBoost)."""

    media_type = LIBSVM

    @cached_property
    def features(self):
        return self._read(LIBSVM)


class RecordIOProtobufRequest(RequestCodec):
    """``application/x-recordio-protobuf``: RecordIO-framed ``Record`` messages, or one bare ``Record``.

    A body that does not start with the RecordIO magic is read as one unframed ``Record``, which batch
    transform sends for ``SplitType=RecordIO`` with ``SingleRecord``.
    """

    media_type = RECORDIO_PROTOBUF

    @cached_property
    def framed(self) -> bytes:
        """The body as a RecordIO stream (a bare Record framed)."""
        from .recordio import MAGIC_BYTES, write_recordio

        if self.body[:4] == MAGIC_BYTES:
            return self.body
        stream = io.BytesIO()
        write_recordio(stream, self.body)
        return stream.getvalue()

    @cached_property
    def features(self):
        return self._read(RECORDIO_PROTOBUF, self.framed)

    @cached_property
    def records(self) -> list[dict]:
        """Each ``Record`` decoded (features, label, uid, ...), for algorithms reading other tensors."""
        from .recordio import decode_record, iter_recordio

        return [decode_record(payload) for payload in iter_recordio(io.BytesIO(self.framed))]


class JSONRequest(RequestCodec):
    """``application/json``: ``{"instances": [...], "configuration": {...}}``.

    An instance is ``{"features": [...]}``, ``{"data": {"features": {"values": [...]}}}`` or the sparse
    ``{"data": {"features": {"keys": [...], "shape": [d], "values": [...]}}}``. As conveniences a body
    may also be a bare list of instances or rows (what the SDK's JSONSerializer sends for an array), or
    one instance object, and an instance may be a bare list of numbers (what a batch transform
    ``InputFilter`` such as ``$.features`` selects).
    """

    media_type = JSON

    @cached_property
    def document(self) -> Any:
        """The parsed JSON body."""
        return _loads(self.body, "the JSON request body")

    @cached_property
    def instances(self) -> list:
        doc = self.document
        if isinstance(doc, dict):
            if "instances" in doc:
                if not isinstance(doc["instances"], list):
                    raise DataFormatError("'instances' must be a JSON array of instances; got "
                                          f"{_kind(doc['instances'])}")
                return doc["instances"]
            if "features" in doc or "data" in doc:
                return [doc]
            raise DataFormatError('a JSON request must be {"instances": [...]}; got an object with keys '
                                  f"{sorted(doc)[:5]}")
        if isinstance(doc, list):
            return [doc] if doc and all(_is_number(v) for v in doc) else doc
        raise DataFormatError(f'a JSON request must be {{"instances": [...]}}; got {_kind(doc)}')

    @property
    def configuration(self) -> dict | None:
        doc = self.document
        config = doc.get("configuration") if isinstance(doc, dict) else None
        if config is not None and not isinstance(config, dict):
            raise DataFormatError(f"'configuration' must be a JSON object; got {_kind(config)}")
        return config

    @cached_property
    def features(self):
        return instances_to_features(self.instances)


class JSONLinesRequest(RequestCodec):
    """``application/jsonlines``: one instance per line, in the shapes :class:`JSONRequest` takes.

    Rows are read by :func:`sagelocal.io.read`; lines that are bare arrays of numbers (what a batch
    transform ``InputFilter`` such as ``$.features`` sends) are rows too.
    """

    media_type = JSONLINES

    @cached_property
    def instances(self) -> list:
        text = _text(self.body, "the JSON lines request body")
        lines = [line for line in text.splitlines() if line.strip()]
        try:  # one C-level parse for the whole body; per line only to name a bad line
            return json.loads("[" + ",".join(lines) + "]")
        except ValueError:
            pass
        out = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError as exc:
                    raise DataFormatError(f"line {number} is not valid JSON: {exc}", record=number) from None
        return out

    @cached_property
    def features(self):
        if self.body.lstrip()[:1] == b"[":
            return instances_to_features(self.instances, what="line")
        return self._read(JSONLINES)


def instances_to_features(instances: list, what: str = "instance") -> np.ndarray | sp.csr_matrix:
    """Float32 rows from JSON instances (dense rows, or CSR when any instance is sparse).

    Errors are :class:`DataFormatError` naming the 1-based instance (or line) number.
    """
    if not instances:
        raise DataFormatError("the request holds no instances")
    rows: list = []
    sparse: dict[int, tuple] = {}
    for number, instance in enumerate(instances, 1):
        values, keys, shape = _instance_vector(instance, number, what)
        if keys is None:
            rows.append(values)
        else:
            sparse[len(rows)] = (keys, shape)
            rows.append(values)
    if not sparse:
        return _dense(rows, what)
    return _sparse(rows, sparse, what)


def _instance_vector(instance, number: int, what: str) -> tuple[list, list | None, int | None]:
    """(values, keys or None, width or None) of one instance in a documented shape."""
    if isinstance(instance, list):
        return instance, None, None
    if isinstance(instance, dict):
        if "features" in instance:
            values = instance["features"]
            if isinstance(values, list):
                return values, None, None
            raise DataFormatError(f"{what} {number}: 'features' must be an array of numbers; got "
                                  f"{_kind(values)}", record=number)
        tensor = instance.get("data", {}).get("features") if isinstance(instance.get("data"), dict) else None
        if isinstance(tensor, dict) and isinstance(tensor.get("values"), list):
            keys, shape = tensor.get("keys"), tensor.get("shape")
            if keys is None:
                return tensor["values"], None, None
            return tensor["values"], keys, _width(shape, number, what)
    raise DataFormatError(f'{what} {number}: expected {{"features": [...]}} or {{"data": {{"features": '
                          f'{{"values": [...]}}}}}}; got {_kind(instance)}', record=number)


def _width(shape, number: int, what: str) -> int:
    if (isinstance(shape, list) and len(shape) == 1 and isinstance(shape[0], int)
            and not isinstance(shape[0], bool) and shape[0] > 0):
        return shape[0]
    raise DataFormatError(f"{what} {number}: a sparse instance needs 'shape': [<feature count>]; got "
                          f"{shape!r}", record=number)


def _dense(rows: list, what: str) -> np.ndarray:
    try:
        array = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        array = None
    if array is not None and array.ndim == 2:
        return array
    width = None
    for number, row in enumerate(rows, 1):  # only on failure: find and name the offending instance
        if not all(_is_number(v) for v in row):
            raise DataFormatError(f"{what} {number}: feature values must be numbers", record=number)
        if width is not None and len(row) != width:
            raise DataFormatError(f"{what} {number} has {len(row)} features; {what} 1 has {width}",
                                  record=number)
        width = len(row)
    raise DataFormatError(f"every {what} must hold at least one feature")


def _sparse(rows: list, sparse: dict[int, tuple], what: str) -> sp.csr_matrix:
    widths = {shape for _, shape in sparse.values()} | {len(r) for i, r in enumerate(rows) if i not in sparse}
    if len(widths) != 1:
        raise DataFormatError(f"the {what}s disagree on the feature count: {sorted(widths)}")
    width = widths.pop()
    indices, data, indptr = [], [], [0]
    for i, values in enumerate(rows):
        number = i + 1
        if i in sparse:
            keys = sparse[i][0]
            if not isinstance(keys, list) or len(keys) != len(values):
                raise DataFormatError(f"{what} {number}: 'keys' and 'values' must be arrays of the same "
                                      f"length", record=number)
        else:
            keys = list(range(len(values)))
        try:
            k = np.asarray(keys, dtype=np.int64)
            v = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError):
            raise DataFormatError(f"{what} {number}: keys must be integers and values numbers",
                                  record=number) from None
        if k.size and (k.min() < 0 or k.max() >= width):
            raise DataFormatError(f"{what} {number}: keys must lie in [0, {width}); got {k.min()}..{k.max()}",
                                  record=number)
        indices.append(k)
        data.append(v)
        indptr.append(indptr[-1] + k.size)
    matrix = sp.csr_matrix((np.concatenate(data), np.concatenate(indices), np.asarray(indptr)),
                           shape=(len(rows), width), dtype=np.float32)
    matrix.sum_duplicates()
    return matrix


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _text(body: bytes, what: str) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{what} is not UTF-8 text: {exc}") from None


def _loads(body: bytes, what: str):
    try:
        return json.loads(_text(body, what))
    except ValueError as exc:
        raise DataFormatError(f"{what} is not valid JSON: {exc}") from None


# ----------------------------------------------------------------------------------------- responses
class ResponseCodec:
    """Encodes response records in one content type (subclasses set ``media_type``).

    Parameters
    ----------
    params : dict of str to str
        The ``Accept`` parameters (``verbose``, ...).
    batch : bool
        True when answering a batch transform (``SAGEMAKER_BATCH``); some algorithms frame output
        differently then.
    """

    media_type: ClassVar[str] = ""
    #: One output record per line: batch transform splits such bodies by line (AssembleWith=Line, joins).
    line_based: ClassVar[bool] = False

    def __init__(self, params: dict[str, str] | None = None, *, batch: bool = False):
        self.params = dict(params or {})
        self.batch = batch

    def encode(self, records: list[dict[str, Any]], model) -> bytes:
        """The response body for ``records``."""
        raise NotImplementedError

    def split(self, body: bytes, model) -> list:
        """The body's output records in order (objects for JSON, cell lists for CSV), for batch joins."""
        raise UnsupportedAcceptError(f"{self.media_type} responses cannot be split into records")


class JSONResponse(ResponseCodec):
    """``application/json``: ``{"<response_key>": [record, ...]}``."""

    media_type = JSON

    def encode(self, records, model) -> bytes:
        return json.dumps({model.response_key: records}).encode()

    def split(self, body, model) -> list:
        doc = json.loads(body)
        if isinstance(doc, dict) and isinstance(doc.get(model.response_key), list):
            return doc[model.response_key]
        return doc if isinstance(doc, list) else [doc]


class JSONLinesResponse(ResponseCodec):
    """``application/jsonlines``: one JSON record per line, each line ending with a newline."""

    media_type = JSONLINES
    line_based = True

    def encode(self, records, model) -> bytes:
        return "".join(json.dumps(record) + "\n" for record in records).encode()

    def split(self, body, model) -> list:
        return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


class CSVResponse(ResponseCodec):
    """``text/csv``: one line per record, the record's values in key order (lists flattened)."""

    media_type = CSV
    line_based = True

    def encode(self, records, model) -> bytes:
        return "".join(",".join(_csv_cells(record)) + "\n" for record in records).encode()

    def split(self, body, model) -> list:
        return [row for row in csv.reader(io.StringIO(body.decode())) if row]


class RecordIOProtobufResponse(ResponseCodec):
    """``application/x-recordio-protobuf``: one ``Record`` per row, values as Float32 tensors in ``label``."""

    media_type = RECORDIO_PROTOBUF

    def encode(self, records, model) -> bytes:
        from .recordio import encode_records

        return encode_records(records)


def _csv_cells(record: dict[str, Any]) -> list[str]:
    cells = []
    for value in record.values():
        if isinstance(value, (list, tuple, np.ndarray)):
            cells.extend(_csv_cell(v) for v in np.ravel(np.asarray(value, dtype=object)))
        else:
            cells.append(_csv_cell(value))
    return cells


def _csv_cell(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n\r') else value
    return json.dumps(value.item() if isinstance(value, np.generic) else value)


REQUEST_CODECS: dict[str, type[RequestCodec]] = {
    c.media_type: c for c in (CSVRequest, JSONRequest, JSONLinesRequest, RecordIOProtobufRequest, LibSVMRequest)}
RESPONSE_CODECS: dict[str, type[ResponseCodec]] = {
    c.media_type: c for c in (JSONResponse, JSONLinesResponse, RecordIOProtobufResponse, CSVResponse)}


# --------------------------------------------------------------------------------------- negotiation
#: ``default_accept`` of an algorithm that answers a request without ``Accept`` (or ``*/*``) in the
#: request's own content type: Seq2Seq ("Content type and accept must be identical") and BlazingText
#: ("Content-Type and Accept must match"). Not a media type, so it can never be mistaken for one.
SAME_AS_REQUEST = "same-as-request"


def _media_types(declared) -> list[str]:
    out = []
    for value in declared:
        try:
            media = parse_content_type(value)[0]
        except UnsupportedContentTypeError:  # a documented template such as "...; infer_max_seqlens=<FWD>"
            media = value.split(";")[0].strip().lower()
        if media not in out:
            out.append(media)
    return out


def request_codec(model, content_type: str | None) -> tuple[type[RequestCodec], dict[str, str]]:
    """The request codec class for ``content_type`` and the type's parameters.

    A missing type falls back to the algorithm's ``default_content_type`` (XGBoost: libsvm); an
    unsupported, unparsable or missing one raises :class:`UnsupportedContentTypeError` (HTTP 415).
    """
    accepted = _media_types(model.request_content_types)
    if not content_type or not content_type.strip():
        content_type = getattr(model, "default_content_type", None)
        if not content_type:
            raise UnsupportedContentTypeError(f"the request has no Content-Type; {model.algorithm} accepts "
                                              f"{', '.join(accepted)}")
    media, params = parse_content_type(content_type)
    codec = getattr(model, "request_codecs", {}).get(media) or REQUEST_CODECS.get(media)
    if media not in accepted or codec is None:
        raise UnsupportedContentTypeError(f"content type '{content_type}' is not supported by "
                                          f"{model.algorithm}; supported: {', '.join(accepted)}")
    return codec, params


def response_codec(model, accept: str | None, default: str | None = None, *, content_type: str | None = None
                   ) -> tuple[type[ResponseCodec], dict[str, str]]:
    """The response codec class answering ``accept`` and the chosen type's parameters.

    ``accept`` may list several types (``"application/json, text/csv;q=0.5"``); the first one the
    algorithm answers in wins (``q=0`` entries are skipped). A missing ``Accept`` or ``*/*`` means
    ``default`` (``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``), else the algorithm's ``default_accept``;
    for a ``default_accept`` of :data:`SAME_AS_REQUEST`, the request's media type ``content_type`` (JSON
    when it is not given or the algorithm does not answer in it). None supported raises
    :class:`UnsupportedAcceptError` (HTTP 406).
    """
    answered = _media_types(model.response_content_types)
    fallback = default or getattr(model, "default_accept", None) or JSON
    if fallback == SAME_AS_REQUEST:
        fallback = _request_media(model, content_type, answered)
    entries = [e for e in (accept or "").split(",") if e.strip()] or ["*/*"]
    for entry in entries:
        try:
            media, params = parse_content_type(entry)
        except UnsupportedContentTypeError:
            continue
        if params.get("q", "1").strip() in ("0", "0.0", "0.00", "0.000"):
            continue
        if media == "*/*":
            media, params = parse_content_type(fallback)
        elif media.endswith("/*"):  # e.g. text/*: the first answered type of that kind
            media = next((m for m in answered if m.startswith(media[:-1])), media)
        codec = getattr(model, "response_codecs", {}).get(media) or RESPONSE_CODECS.get(media)
        if media in answered and codec is not None:
            params.pop("q", None)
            return codec, params
    raise UnsupportedAcceptError(f"accept type '{accept}' is not supported by {model.algorithm}; "
                                 f"supported: {', '.join(answered)}")


def _request_media(model, content_type: str | None, answered: list[str]) -> str:
    """The request's media type, for algorithms answering in it (see :func:`response_codec`)."""
    media = None
    if content_type and content_type.strip():
        try:
            media = parse_content_type(content_type)[0]
        except UnsupportedContentTypeError:
            media = None
    if media in answered:
        return media
    return JSON if JSON in answered or not answered else answered[0]


def request_options(model, params: dict[str, str]) -> dict[str, Any]:
    """The ``Accept`` parameters ``model._records`` declares, typed by their defaults.

    ``verbose=true`` becomes ``verbose=True`` for ``_records(self, features, verbose=False)``; an int or
    float default parses the value as a number. Parameters the algorithm does not declare (``charset``,
    ``q``, ...) are ignored, as SageMaker containers ignore what they do not know. A value that does not
    parse raises :class:`DataFormatError` (HTTP 400) naming the parameter.
    """
    declared, takes_all = _record_options(type(model))
    out = {}
    for name, value in params.items():
        if name in declared:
            out[name] = _typed(name, value, declared[name])
        elif takes_all:
            out[name] = _typed(name, value, None)
    return out


def _typed(name: str, value: str, default) -> Any:
    text = value.strip()
    if isinstance(default, bool) or default is None:
        flag = parse_bool(text)
        if flag is not None:
            return flag
        if isinstance(default, bool):
            raise DataFormatError(f"Accept parameter '{name}' must be true or false; got {value!r}")
        return value
    if isinstance(default, (int, float)):
        try:
            return type(default)(text)
        except ValueError:
            kind = "an integer" if isinstance(default, int) else "a number"
            raise DataFormatError(f"Accept parameter '{name}' must be {kind}; got {value!r}") from None
    return value


@functools.cache
def _record_options(cls) -> tuple[dict[str, Any], bool]:
    """(declared option -> default, whether ``_records`` takes ``**options``)."""
    params = list(inspect.signature(cls._records).parameters.values())[2:]  # self, features
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    declared = {p.name: (None if p.default is inspect.Parameter.empty else p.default)
                for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return declared, takes_all


# ------------------------------------------------------------------------------------ compatibility
ENCODERS = {JSON: JSONResponse, JSONLINES: JSONLinesResponse, RECORDIO_PROTOBUF: RecordIOProtobufResponse}


class _Envelope:
    def __init__(self, response_key: str):
        self.response_key = response_key


def encode_json(records: list[dict[str, Any]], response_key: str) -> bytes:
    """``{"<response_key>": [record, ...]}``."""
    return JSONResponse().encode(records, _Envelope(response_key))


def encode_jsonlines(records: list[dict[str, Any]], response_key: str = "") -> bytes:
    """One JSON record per line, each line ending with a newline."""
    return JSONLinesResponse().encode(records, _Envelope(response_key))


def encode_recordio_protobuf(records: list[dict[str, Any]], response_key: str = "") -> bytes:
    """One RecordIO-framed ``Record`` per row, values as Float32 tensors under ``label``."""
    return RecordIOProtobufResponse().encode(records, _Envelope(response_key))


def encode_response(records: list[dict[str, Any]], accept: str | None, response_key: str
                    ) -> tuple[bytes, str]:
    """The body and media type answering ``accept`` (default and ``*/*``: JSON) for ``records``."""
    media = JSON if not accept or accept.strip() in ("*/*", "") else parse_content_type(accept)[0]
    codec = ENCODERS.get(media)
    if codec is None:
        raise UnsupportedAcceptError(f"accept type '{accept}' is not supported; supported: {', '.join(ENCODERS)}")
    return codec().encode(records, _Envelope(response_key)), media
