"""Inference requests and responses with the SageMaker XGBoost container's rules.

Requests (:class:`CSVRequest`, :class:`LibSVMRequest`; RecordIO-protobuf uses the standard codec):

- ``text/csv``: rows without a label column; the delimiter is sniffed from the first line; empty cells
  are NaN; a ``label_size`` parameter other than 1 is refused with HTTP 415, as is a body that does not
  parse (the container answers parse failures with 415, not 400).
- ``text/libsvm`` (also ``text/x-libsvm``, and requests with no Content-Type): tokens without ``:``
  (such as a label) are ignored. Indices are used as written (0-based, as the developer guide says);
  the container's heuristic shifting every index down when all are >= 1 is not copied, since it
  makes served rows disagree with the rows the model was trained on.

Responses (the classes below; ``SAGEMAKER_BATCH`` arrives as ``batch``; ``SAGEMAKER_INFERENCE_OUTPUT`` and
``SAGEMAKER_INFERENCE_ENSEMBLE`` are read once, when a server or batch transform loads the model, into
the estimator's ``serving_environment``):

- Standard output (``SAGEMAKER_INFERENCE_OUTPUT`` unset): JSON ``{"predictions": [{"score": v}]}``;
  CSV one prediction per line, every line ending with a newline (``b"0.86\\n0.10\\n"``; ``multi:softprob``
  rows comma-separated), as sagemaker-containers' ``array_to_csv`` writes it; under batch transform
  ``str(prediction)`` per line plus a final newline whatever the Accept. JSON lines and
  RecordIO-protobuf exist only in selectable mode: the container fails them with a server error (500).
- Selectable output: the requested keys among predicted_label, labels, probability, probabilities,
  raw_score, raw_scores, predicted_score (keys invalid for the objective are NaN); JSON, JSON lines,
  one RecordIO ``Record`` per row (keys as Float32 tensors in ``label``), or CSV in the requested key
  order with lists quoted as ``"[0.4, 0.6]"`` (lines joined by newlines, with no final newline outside
  batch transform, as the container's ``_encode_selected_predictions_csv`` writes them). An objective
  outside the table answers 500.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Mapping
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from ...base.errors import DataFormatError, SagelocalError, UnsupportedContentTypeError
from ...io import codecs
from ...io import content_types as ct
from ...io.codecs import RequestCodec, ResponseCodec
from .data import sniff_delimiter

INFERENCE_OUTPUT = "SAGEMAKER_INFERENCE_OUTPUT"
INFERENCE_ENSEMBLE = "SAGEMAKER_INFERENCE_ENSEMBLE"

PREDICTED_LABEL, LABELS, PROBABILITY, PROBABILITIES = "predicted_label", "labels", "probability", "probabilities"
RAW_SCORE, RAW_SCORES, PREDICTED_SCORE = "raw_score", "raw_scores", "predicted_score"
#: Every selectable key, in the order the container builds each record.
SELECTABLE_KEYS = (PREDICTED_LABEL, LABELS, PROBABILITY, PROBABILITIES, RAW_SCORE, RAW_SCORES, PREDICTED_SCORE)
_CLASSIFIER_KEYS = (PREDICTED_LABEL, LABELS, RAW_SCORE, RAW_SCORES)
_PROBABILISTIC_KEYS = (PREDICTED_LABEL, LABELS, PROBABILITY, PROBABILITIES, RAW_SCORE, RAW_SCORES)
#: Objective -> the keys it answers (others are NaN); objectives not listed cannot use selectable output.
VALID_KEYS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("reg:squarederror", "reg:logistic", "reg:gamma", "reg:absoluteerror", "reg:tweedie"),
                    (PREDICTED_SCORE,)),
    "binary:logistic": _PROBABILISTIC_KEYS, "binary:logitraw": _CLASSIFIER_KEYS, "binary:hinge": _CLASSIFIER_KEYS,
    "multi:softmax": _CLASSIFIER_KEYS, "multi:softprob": _PROBABILISTIC_KEYS,
}


class XGBoostServingError(SagelocalError):
    """A request the SageMaker XGBoost container fails with a server error (HTTP 500)."""

    http_status = 500


def inference_output_keys(value: str | None) -> list[str] | None:
    """The selected output keys of a ``SAGEMAKER_INFERENCE_OUTPUT`` value, None (standard mode) for None.

    Keys are comma-separated, case-insensitive, spaces ignored, as the container reads them.
    """
    if value is None:
        return None
    return value.replace(" ", "").lower().split(",")


def ensemble_enabled(environ: Mapping[str, str]) -> bool:
    """``SAGEMAKER_INFERENCE_ENSEMBLE`` in the serving ``environ`` (default true): combine every model file,
    else use the first."""
    return environ.get(INFERENCE_ENSEMBLE, "true").strip().lower() != "false"


# ------------------------------------------------------------------------------------------ records
def standard_records(predictions: np.ndarray) -> list[dict]:
    """``[{"score": v}, ...]``: v a number, or the class probabilities of ``multi:softprob``."""
    return [{"score": value} for value in predictions.tolist()]


def selected_records(predictions: np.ndarray, keys: list[str], objective: str, num_class: int | None
                     ) -> list[dict]:
    """The records of selectable inference output for ``keys`` (see the module docstring)."""
    if objective not in VALID_KEYS:
        raise XGBoostServingError(f"Objective `{objective}` unsupported for selectable inference predictions; "
                                  f"supported: {', '.join(VALID_KEYS)}")
    valid = [k for k in SELECTABLE_KEYS if k in keys and k in VALID_KEYS[objective]]
    invalid = list(dict.fromkeys(k for k in keys if k not in VALID_KEYS[objective]))
    columns = {key: _column(key, np.asarray(predictions), objective, num_class) for key in valid}
    records = []
    for i in range(len(predictions)):
        record = {key: column[i] for key, column in columns.items()}
        for key in invalid:
            record[key] = math.nan
        records.append(record)
    return records


def _column(key: str, preds: np.ndarray, objective: str, num_class: int | None) -> list:
    n = len(preds)
    softprob = objective == "multi:softprob"
    if key == PREDICTED_LABEL:
        if softprob:
            return preds.argmax(axis=1).tolist()
        if objective == "binary:logistic":
            return (preds > 0.5).astype(int).tolist()
        if objective == "binary:logitraw":
            return (preds > 0).astype(int).tolist()
        return preds.tolist()  # binary:hinge, multi:softmax: the prediction is the label
    if key == LABELS:
        labels = [0, 1] if objective.startswith("binary:") else list(range(num_class)) if num_class else math.nan
        return [list(labels) if isinstance(labels, list) else labels for _ in range(n)]
    if key in (PROBABILITY, RAW_SCORE):
        return preds.max(axis=1).tolist() if softprob else preds.tolist()
    if key in (PROBABILITIES, RAW_SCORES):
        if softprob:
            return preds.tolist()
        values = preds.astype(np.float64)  # [1 - v, v] even when v is a margin or a label, as the container
        return np.column_stack([1.0 - values, values]).tolist()
    return preds.tolist()  # predicted_score


# ----------------------------------------------------------------------------------------- requests
def _refuse(what: str, exc: Exception) -> UnsupportedContentTypeError:
    return UnsupportedContentTypeError(f"Loading {what} data failed with Exception, please ensure data is in "
                                       f"{what} format: {exc}")


class CSVRequest(RequestCodec):
    """``text/csv`` inference rows (no label column), parsed as the XGBoost container does."""

    media_type = ct.CSV

    @cached_property
    def features(self) -> np.ndarray:
        from ...base.batch import Batch
        from ...io import read

        label_size = self.params.get("label_size")
        if label_size is not None and label_size.strip() != "1":
            raise UnsupportedContentTypeError(f"text/csv;label_size={label_size} is not an accepted csv content "
                                              f"type: label_size must be 1 (requests carry no label column)")
        try:
            text = self.body.decode(self.params.get("charset", "utf-8")).strip()
            delimiter = sniff_delimiter(text.split("\n", 1)[0])
            if delimiter != ",":
                text = text.replace(delimiter, ",")
            batches = list(read(io.BytesIO(text.encode()), f"{ct.CSV};label_size=0", batch_size=1 << 16))
        except (DataFormatError, UnicodeDecodeError, LookupError) as exc:
            raise _refuse("csv", exc) from None
        if not batches:
            raise _refuse("csv", DataFormatError("no rows"))
        return Batch.concat(batches).features


_LIBSVM_TOKEN = re.compile(rb"(?<!\S)([^\s:]*):(\S*)")


class LibSVMRequest(RequestCodec):
    """``text/libsvm`` inference rows: ``index:value`` tokens per line, other tokens ignored."""

    media_type = ct.LIBSVM

    @cached_property
    def features(self) -> sp.csr_matrix:
        body = self.body.strip()
        newlines = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n"))
        matches = list(_LIBSVM_TOKEN.finditer(body))
        try:
            if not matches:
                raise ValueError("no index:value tokens")
            starts = np.fromiter((m.start() for m in matches), dtype=np.int64, count=len(matches))
            rows = np.searchsorted(newlines, starts)
            columns = np.array([m.group(1) for m in matches]).astype(np.int64)
            values = np.array([m.group(2) for m in matches]).astype(np.float32)
        except ValueError as exc:
            raise _refuse("libsvm", exc) from None
        if columns.min() < 0:
            raise _refuse("libsvm", ValueError(f"negative feature index {columns.min()}"))
        shape = (len(newlines) + 1, int(columns.max()) + 1)
        return sp.csr_matrix((values, (rows, columns)), shape=shape, dtype=np.float32)


# ---------------------------------------------------------------------------------------- responses
class _Response(ResponseCodec):
    """Chooses between standard, batch and selectable output (see the module docstring)."""

    def encode(self, records, model) -> bytes:
        keys = inference_output_keys(model.serving_environment.get(INFERENCE_OUTPUT))
        if keys is None and self.batch:
            return "".join(str(record["score"]) + "\n" for record in records).encode()
        if keys is None:
            return self.standard(records, model)
        return self.selectable(records, keys)

    def standard(self, records, model) -> bytes:
        raise XGBoostServingError(f"{self.media_type} responses need selectable inference output "
                                  f"({INFERENCE_OUTPUT}); the SageMaker XGBoost container fails such requests "
                                  f"with a server error; ask for text/csv or application/json")

    def selectable(self, records, keys) -> bytes:
        raise NotImplementedError


class JSONResponse(_Response):
    """``application/json``: ``{"predictions": [...]}`` (NaN written as the bare token NaN)."""

    media_type = ct.JSON

    def standard(self, records, model) -> bytes:
        return json.dumps({model.response_key: records}).encode()

    def selectable(self, records, keys) -> bytes:
        return json.dumps({"predictions": records}).encode()

    def split(self, body, model) -> list:
        return json.loads(body)["predictions"]


class JSONLinesResponse(_Response, codecs.JSONLinesResponse):
    """``application/jsonlines`` (selectable output only): one record per line, as the standard codec."""

    def selectable(self, records, keys) -> bytes:
        return codecs.JSONLinesResponse.encode(self, records, None)


class RecordIOProtobufResponse(_Response):
    """``application/x-recordio-protobuf`` (selectable output only): one Record per row."""

    media_type = ct.RECORDIO_PROTOBUF

    def selectable(self, records, keys) -> bytes:
        from ...io.recordio import encode_records

        return encode_records(records)


class CSVResponse(_Response):
    """``text/csv``: one prediction per line; selectable keys in the requested order, lists quoted."""

    media_type = ct.CSV
    line_based = True

    def standard(self, records, model) -> bytes:
        # sagemaker-containers' encoders.array_to_csv: a csv.writer with lineterminator "\n", so every
        # row (a multi:softprob row too) ends with a newline: b"0.86\n0.10\n"
        lines = [",".join(map(str, r["score"])) if isinstance(r["score"], list) else str(r["score"])
                 for r in records]
        return "".join(line + "\n" for line in lines).encode()

    def selectable(self, records, keys) -> bytes:
        lines = [",".join(f'"{r[k]}"' if isinstance(r[k], list) else str(r[k]) for k in keys) for r in records]
        return ("\n".join(lines) + ("\n" if self.batch else "")).encode()

    def split(self, body, model) -> list:
        import csv

        return [row for row in csv.reader(io.StringIO(body.decode())) if row]


REQUEST_CODECS = {c.media_type: c for c in (CSVRequest, LibSVMRequest)}
RESPONSE_CODECS = {c.media_type: c for c in (JSONResponse, JSONLinesResponse, RecordIOProtobufResponse, CSVResponse)}
