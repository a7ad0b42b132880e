"""Readers and writers keyed by content type, and channels in File or Pipe mode.

Every reader takes a path or an open binary stream (gzip is recognised and decompressed) and yields
:class:`Batch` objects: float32 features (dense or CSR) with optional labels, weights and ids for tabular
formats, or :attr:`Batch.records` for JSON Lines objects, text lines and augmented-manifest attributes.
Algorithms never parse files themselves.

- :func:`read` dispatches on the content type: ``application/x-recordio-protobuf``, ``text/csv``,
  ``text/libsvm``, ``application/x-parquet``, ``application/jsonlines``, ``text/plain``.
- :func:`read_recordio_protobuf` reads a whole file into ``(X, y)``; :func:`write_recordio_protobuf`,
  :func:`write_numpy_to_dense_tensor` and :func:`write_spmatrix_to_sparse_tensor` write the SDK's bytes.
- :class:`Channel` is a training channel (File or Pipe mode, sharding, shuffling, manifests): its
  ``batches`` for tabular data and records, ``streams`` for algorithms that parse whole objects, and
  ``local_files`` for a library that reads files itself, all in the channel's order and shard;
  :func:`is_channel` tells a channel from in-memory data; :func:`open_object` opens one object (gzip or
  not); :class:`PipeFeeder` writes Pipe mode's FIFOs from a local folder.
"""

from ..base.batch import ArraySource, Batch, as_source, rebatch
from ._streams import open_object
from .channel import Channel, is_channel
from .content_types import parse_content_type
from .csv import read_csv
from .jsonlines import read_jsonlines
from .libsvm import read_libsvm
from .manifest import read_attribute_frames, read_augmented_manifest, read_manifest, resolve_s3
from .parquet import read_parquet
from .pipe import PipeFeeder
from .readers import read, supported_content_types
from .recordio import (
    encode_int32_records,
    encode_records,
    write_numpy_to_dense_tensor,
    write_recordio_protobuf,
    write_spmatrix_to_sparse_tensor,
)
from .recordio_reader import iter_recordio_protobuf, read_recordio_protobuf
from .text import read_text

__all__ = [
    "ArraySource",
    "Batch",
    "Channel",
    "PipeFeeder",
    "as_source",
    "encode_int32_records",
    "encode_records",
    "is_channel",
    "iter_recordio_protobuf",
    "open_object",
    "parse_content_type",
    "read",
    "read_attribute_frames",
    "read_augmented_manifest",
    "read_csv",
    "read_jsonlines",
    "read_libsvm",
    "read_manifest",
    "read_parquet",
    "read_recordio_protobuf",
    "read_text",
    "rebatch",
    "resolve_s3",
    "supported_content_types",
    "write_numpy_to_dense_tensor",
    "write_recordio_protobuf",
    "write_spmatrix_to_sparse_tensor",
]
