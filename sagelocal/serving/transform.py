"""Batch transform: split input files into records, batch them into requests, answer
each request through the endpoint's own predict path (:class:`~sagelocal.serving.invocation.Invoker`),
and assemble ``<input file>.out`` files.

- ``split_type``: ``None`` (a file is one request), ``Line`` (newline-delimited records), ``RecordIO``
  (RecordIO frames; ``SingleRecord`` sends the bare ``Record``, ``MultiRecord`` the frames).
- ``batch_strategy``: ``SingleRecord`` (one record per request) or ``MultiRecord`` (as many consecutive
  records as fit in ``max_payload_mb``, MB = 2**20 bytes; 0 = no limit).
- ``assemble_with``: ``None`` (response bodies back to back) or ``Line`` (a newline after each record:
  line-based bodies are split into their records so a body ending in a newline adds no blank line).
- ``input_filter`` → ``join_source`` → ``output_filter`` (DataProcessing), for CSV, JSON and JSON
  lines: CSV rows are JSON arrays of their cells; a joined CSV row is the input cells then the output
  cells; a joined JSON object gains ``SageMakerOutput`` (a non-object input is wrapped as
  ``{"SageMakerInput": ..., "SageMakerOutput": ...}``).

Bad records: a failed multi-record request is retried record by record, so every bad record is named
(file and record number: the line number for ``Line``, the frame number for ``RecordIO``) and every
good record is still answered. As SageMaker does, a file with a bad record gets no ``.out``; what
its good records produced is kept in ``<input file>.out.partial`` instead. Outputs are written
atomically (temporary file, then rename).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.errors import SagelocalError
from ..io.codecs import request_codec, response_codec
from ..io.content_types import CSV, JSON, JSONLINES, parse_content_type
from .invocation import Invoker
from .jsonpath import JSONPath, JSONPathError

logger = logging.getLogger("sagelocal.serving")

SPLIT_TYPES = ("None", "Line", "RecordIO")
BATCH_STRATEGIES = ("SingleRecord", "MultiRecord")
ASSEMBLE_WITH = ("None", "Line")
JOIN_SOURCES = ("None", "Input")
COMPRESSIONS = ("None", "Gzip")
_PROCESSING_TYPES = (CSV, JSON, JSONLINES)


class TransformError(SagelocalError):
    """A batch transform job that cannot run as configured (names the setting, allowed, received)."""


@dataclass
class RecordError:
    """A record that could not be transformed."""

    file: str
    record: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}: record {self.record}: {self.message}"


@dataclass
class FileResult:
    """The outcome of one input file: its output (``.out``, or ``.out.partial`` on errors) and errors."""

    input: str
    output: str | None
    records: int = 0
    errors: list[RecordError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class TransformResult:
    """The outcome of a job: one :class:`FileResult` per input file, in path order."""

    files: list[FileResult]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def errors(self) -> list[RecordError]:
        return [e for f in self.files for e in f.errors]


@dataclass
class _Record:
    number: int
    data: bytes
    parsed: Any = None  # the decoded record (DataProcessing only)


def transform(model, input, output, *, content_type: str | None = None, split_type: str = "None",
              batch_strategy: str = "MultiRecord", max_payload_mb: float = 6, assemble_with: str = "None",
              accept: str | None = None, input_filter: str = "$", output_filter: str = "$",
              join_source: str = "None", compression: str = "None", allow_pickle: bool = False,
              inclusive_slice_end: bool = True) -> TransformResult:
    """Run a batch transform job over a file or a folder of files; see the module docstring.

    Parameters
    ----------
    model : str, Path or Estimator
        A model directory or ``model.tar.gz`` (loaded once), or a fitted estimator.
    input : str or Path
        A file, or a folder read recursively (paths below it are kept below ``output``).
    output : str or Path
        The folder receiving ``<relative input path>.out``.
    content_type, accept : str, optional
        Sent as ``Content-Type`` / ``Accept`` on every request (None: the algorithm's defaults).
    split_type, batch_strategy, max_payload_mb, assemble_with, input_filter, output_filter, join_source,
    compression
        SageMaker's ``CreateTransformJob`` fields of the same names.
    inclusive_slice_end : bool
        Read JSONPath slice ends as inclusive, as the Developer Guide describes.

    Returns
    -------
    TransformResult
        Per-file outputs and record errors; the job succeeded when ``result.ok``.
    """
    if isinstance(model, (str, os.PathLike)):
        from ..base.artifacts import load_estimator as load

        model = load(model, allow_pickle=allow_pickle)
    job = _Job(model, content_type=content_type, split_type=split_type, batch_strategy=batch_strategy,
               max_payload_mb=max_payload_mb, assemble_with=assemble_with, accept=accept,
               input_filter=input_filter, output_filter=output_filter, join_source=join_source,
               compression=compression, inclusive_slice_end=inclusive_slice_end)
    root, files = _input_files(Path(input), Path(output))
    results = [job.run_file(path, root, Path(output)) for path in files]
    return TransformResult(results)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    value = "None" if value is None else str(value)
    if value not in allowed:
        raise TransformError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _input_files(input: Path, output: Path) -> tuple[Path, list[Path]]:
    if input.is_file():
        return input.parent, [input]
    if not input.is_dir():
        raise TransformError(f"input '{input}' is neither a file nor a folder")
    skip = output.resolve()
    files = sorted(p for p in input.rglob("*") if p.is_file() and not p.resolve().is_relative_to(skip))
    if not files:
        raise TransformError(f"input folder '{input}' holds no files")
    return input, files


class _Job:
    """One configured job: splitting, batching, invoking, joining, assembling."""

    def __init__(self, model, *, content_type, split_type, batch_strategy, max_payload_mb, assemble_with, accept,
                 input_filter, output_filter, join_source, compression, inclusive_slice_end):
        self.split_type = _choice("split_type", split_type, SPLIT_TYPES)
        self.batch_strategy = _choice("batch_strategy", batch_strategy, BATCH_STRATEGIES)
        self.assemble_with = _choice("assemble_with", assemble_with, ASSEMBLE_WITH)
        self.join = _choice("join_source", join_source, JOIN_SOURCES) == "Input"
        self.compression = _choice("compression", compression, COMPRESSIONS)
        if not isinstance(max_payload_mb, (int, float)) or not 0 <= max_payload_mb <= 100:
            raise TransformError(f"max_payload_mb must be a number in [0, 100] (0: no limit); got {max_payload_mb!r}")
        self.limit = int(max_payload_mb * 2**20)
        self.invoker = Invoker(model, max_payload_bytes=self.limit, batch=True)
        self.content_type, self.accept = content_type, accept
        try:  # a bad Content-Type or Accept fails the job before any file
            request_codec(model, content_type)
            self.encoder, _ = response_codec(model, accept, content_type=content_type)
        except SagelocalError as exc:
            raise TransformError(str(exc)) from None
        self.input_filter = self._path("input_filter", input_filter, inclusive_slice_end)
        self.output_filter = self._path("output_filter", output_filter, inclusive_slice_end)
        self.processing = self.join or not self.input_filter.is_root or not self.output_filter.is_root
        if self.processing:
            self._check_processing(model)

    @staticmethod
    def _path(name: str, expression: str, inclusive: bool) -> JSONPath:
        try:
            return JSONPath(expression or "$", inclusive_end=inclusive)
        except JSONPathError as exc:
            raise TransformError(f"{name}: {exc}") from None

    def _check_processing(self, model) -> None:
        """DataProcessing's rules."""
        self.input_media = parse_content_type(self.content_type or "")[0] if self.content_type else ""
        self.output_media = self.encoder.media_type
        for name, media in (("content_type", self.input_media), ("accept", self.output_media)):
            if media not in _PROCESSING_TYPES:
                raise TransformError(f"input_filter/join_source/output_filter need {name} to be one of "
                                     f"{', '.join(_PROCESSING_TYPES)}; got {media or 'none'!r}")
        if self.join and self.input_media != self.output_media:
            raise TransformError(f"join_source=Input needs the same content_type and accept; got "
                                 f"{self.input_media!r} and {self.output_media!r}")
        if self.join and self.split_type != self.assemble_with:
            raise TransformError(f"join_source=Input needs split_type equal to assemble_with; got "
                                 f"{self.split_type!r} and {self.assemble_with!r}")
        if self.input_media == CSV and self.split_type != "Line":
            raise TransformError(f"input_filter/join_source/output_filter on text/csv need split_type='Line'; "
                                 f"got {self.split_type!r}")
        if self.split_type == "RecordIO":
            raise TransformError("input_filter/join_source/output_filter do not apply to split_type='RecordIO'")

    # ------------------------------------------------------------------------------------ one file
    def run_file(self, path: Path, root: Path, output: Path) -> FileResult:
        relative = path.relative_to(root)
        target = output / relative.parent / (relative.name + ".out")
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.parent / f".{target.name}.tmp"
        result = FileResult(str(path), None)
        try:
            with self._open(path) as stream, open(temporary, "wb") as sink:
                for batch in self._batches(self._records(stream, str(path), result), str(path), result):
                    for piece in self._answer(batch, str(path), result):
                        sink.write(piece)
        except SagelocalError as exc:  # unreadable file (corrupt gzip, bad framing): the whole file fails
            result.errors.append(RecordError(str(path), getattr(exc, "record", None) or 0, str(exc)))
        result.errors.sort(key=lambda e: e.record)
        final = target if result.ok else target.parent / (target.name + ".partial")
        os.replace(temporary, final)
        result.output = str(final)
        for error in result.errors:
            logger.error("%s", error)
        return result

    def _open(self, path: Path):
        if self.compression == "Gzip":
            return gzip.open(path, "rb")
        return open(path, "rb")

    def _records(self, stream, name: str, result: FileResult) -> Iterator[_Record]:
        if self.split_type == "None":
            data = stream.read()
            records = iter([_Record(1, data)] if data else [])
        elif self.split_type == "Line":
            records = (_Record(n, line if line.endswith(b"\n") else line + b"\n")
                       for n, line in enumerate(stream, 1) if line.strip())
        else:
            records = self._frames(stream, name)
        for record in records:
            result.records += 1
            if self.processing:
                try:
                    self._filter_input(record)
                except (SagelocalError, ValueError) as exc:
                    result.errors.append(RecordError(name, record.number, str(exc)))
                    continue
            yield record

    def _frames(self, stream, name: str) -> Iterator[_Record]:
        from ..io.recordio import iter_recordio, write_recordio

        for number, payload in enumerate(iter_recordio(stream, source=name), 1):
            if self.batch_strategy == "SingleRecord":
                yield _Record(number, payload)  # padding and header removed
            else:
                framed = io.BytesIO()
                write_recordio(framed, payload)
                yield _Record(number, framed.getvalue())

    def _batches(self, records: Iterator[_Record], name: str, result: FileResult) -> Iterator[list[_Record]]:
        batch: list[_Record] = []
        size = 0
        for record in records:
            if self.limit and len(record.data) > self.limit:
                result.errors.append(RecordError(name, record.number, f"the record has {len(record.data)} bytes, "
                                                 f"more than max_payload_mb allows ({self.limit} bytes)"))
                continue
            full = self.limit and size + len(record.data) > self.limit
            if batch and (self.batch_strategy == "SingleRecord" or full):
                yield batch
                batch, size = [], 0
            batch.append(record)
            size += len(record.data)
        if batch:
            yield batch

    # --------------------------------------------------------------------------------- answering
    def _answer(self, batch: list[_Record], name: str, result: FileResult) -> Iterator[bytes]:
        """The output bytes of ``batch``; a failed request is retried record by record."""
        answer = self.invoker.invoke(b"".join(r.data for r in batch), self.content_type, self.accept)
        if answer.ok:
            try:
                yield self._assemble(batch, answer.body)
                return
            except (SagelocalError, ValueError) as exc:
                if len(batch) == 1:
                    result.errors.append(RecordError(name, batch[0].number, str(exc)))
                    return
        elif len(batch) == 1:
            result.errors.append(RecordError(name, batch[0].number, answer.message))
            return
        for record in batch:
            yield from self._answer([record], name, result)

    def _assemble(self, batch: list[_Record], body: bytes) -> bytes:
        if self.processing and (self.join or not self.output_filter.is_root):
            outputs = self.encoder().split(body, self.invoker.model)
            if len(outputs) != len(batch):
                raise TransformError(f"the response holds {len(outputs)} records for {len(batch)} input records; "
                                     f"join_source/output_filter need one output per input record")
            lines = [self._serialize(self.output_filter.apply(self._join(r.parsed, o)), self.output_media)
                     for r, o in zip(batch, outputs)]
            return "".join(line + ("\n" if self.assemble_with == "Line" else "") for line in lines).encode()
        if self.assemble_with == "None":
            return body
        if self.encoder.line_based:
            return b"".join(line + b"\n" for line in body.splitlines() if line.strip())
        return body + b"\n"

    # ---------------------------------------------------------------------------- DataProcessing
    def _filter_input(self, record: _Record) -> None:
        """Decode ``record``, keep the decoded value for the join, and send the filtered part."""
        if self.input_media == CSV:
            cells = next(csv.reader([record.data.decode("utf-8").rstrip("\r\n")]), [])
            record.parsed = cells
        else:
            record.parsed = json.loads(record.data)
        if self.input_filter.is_root:
            return
        selected = self.input_filter.apply(record.parsed)
        text = self._serialize(selected, self.input_media)
        record.data = (text + "\n" if self.split_type == "Line" else text).encode()

    def _join(self, parsed: Any, output: Any) -> Any:
        if not self.join:
            return output
        if self.input_media == CSV:
            return list(parsed) + (list(output) if isinstance(output, list) else [output])
        if isinstance(parsed, dict):
            return {**parsed, "SageMakerOutput": output}
        return {"SageMakerInput": parsed, "SageMakerOutput": output}

    @staticmethod
    def _serialize(value: Any, media: str) -> str:
        if media == CSV:
            cells = value if isinstance(value, list) else [value]
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="").writerow(
                [c if isinstance(c, str) else json.dumps(c) for c in cells])
            return buffer.getvalue()
        return json.dumps(value)
