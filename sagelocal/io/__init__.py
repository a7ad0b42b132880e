"""Readers and writers keyed by content type, and channels in File or Pipe mode.

Every reader yields :class:`Batch` objects (float32 features, dense or CSR, optional labels and ids);
algorithms never parse files themselves.
"""

from .batch import ArraySource, Batch, as_source, rebatch
from .channel import Channel
from .content_types import parse_content_type
from .csv import read_csv
from .readers import read
from .recordio import (
    encode_records,
    read_recordio_protobuf,
    write_numpy_to_dense_tensor,
    write_recordio_protobuf,
    write_spmatrix_to_sparse_tensor,
)

__all__ = [
    "ArraySource",
    "Batch",
    "Channel",
    "as_source",
    "encode_records",
    "parse_content_type",
    "read",
    "read_csv",
    "read_recordio_protobuf",
    "rebatch",
    "write_numpy_to_dense_tensor",
    "write_recordio_protobuf",
    "write_spmatrix_to_sparse_tensor",
]
