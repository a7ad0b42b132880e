"""RecordIO-protobuf: spec bytes, SDK byte identity, framing edge cases, decoding."""

from __future__ import annotations

import io
import os
import struct
import threading

import numpy as np
import pytest
import scipy.sparse as sp

from sagelocal.base.errors import DataFormatError
from sagelocal.io import (
    encode_records,
    iter_recordio_protobuf,
    write_numpy_to_dense_tensor,
    write_recordio_protobuf,
    write_spmatrix_to_sparse_tensor,
)
from sagelocal.io.recordio import decode_record, encode_int32_records, iter_recordio, write_recordio

# Bytes written by the SDK under protobuf (recorded once): an independent oracle.
WORKED_EXAMPLE = bytes.fromhex(
    "0a 23 d7 ce 2c 00 00 00 0a 16 0a 06 76 61 6c 75 65 73 12 0c 12 0a 0a 08"
    "00 00 80 3f 00 00 00 40 12 12 0a 06 76 61 6c 75 65 73 12 08 12 06 0a 04"
    "00 00 80 3f")
FLOAT64_EXAMPLE = bytes.fromhex(
    "0a 23 d7 ce 38 00 00 00 0a 1e 0a 06 76 61 6c 75 65 73 12 14 1a 12 0a 10 00 00 00 00 00 00 f0 3f"
    "00 00 00 00 00 00 00 40 12 16 0a 06 76 61 6c 75 65 73 12 0c 1a 0a 0a 08 00 00 00 00 00 00 f0 3f")
SPARSE_EXAMPLE = bytes.fromhex(
    "0a 23 d7 ce 33 00 00 00 0a 1d 0a 06 76 61 6c 75 65 73 12 13 12 11 0a 08 00 00 00 40 00 00 40 40"
    "12 02 01 03 1a 01 04 12 12 0a 06 76 61 6c 75 65 73 12 08 12 06 0a 04 00 00 80 3f 00")
# The worked example's features with the integer label of the last variant (3a 03 0a 01 01, 3 pad bytes).
INT_LABEL_EXAMPLE = bytes.fromhex(
    "0a 23 d7 ce 29 00 00 00 0a 16 0a 06 76 61 6c 75 65 73 12 0c 12 0a 0a 08"
    "00 00 80 3f 00 00 00 40 12 0f 0a 06 76 61 6c 75 65 73 12 05 3a 03 0a 01 01 00 00 00")


def written(writer, *args) -> bytes:
    out = io.BytesIO()
    writer(out, *args)
    return out.getvalue()


def read_all(data: bytes, batch_size: int = 1000, **kwargs) -> list:
    return list(iter_recordio_protobuf(io.BytesIO(data), batch_size, **kwargs))


def frame(payload: bytes, cflag: int = 0) -> bytes:
    """A RecordIO frame built by hand (independent of the code under test)."""
    pad = b"\x00" * (-len(payload) % 4)
    return struct.pack("<II", 0xCED7230A, len(payload) | (cflag << 29)) + payload + pad


# --- spec bytes ----------------------------------------------------------------------------------------

def test_worked_example_bytes():
    data = written(write_numpy_to_dense_tensor, np.array([[1.0, 2.0]], dtype="float32"),
                   np.array([1.0], dtype="float32"))
    assert data == WORKED_EXAMPLE


def test_float64_variant_bytes():
    assert written(write_numpy_to_dense_tensor, np.array([[1.0, 2.0]]), np.array([1.0])) == FLOAT64_EXAMPLE


def test_sparse_variant_bytes():
    matrix = sp.csr_matrix(np.array([[0, 2, 0, 3]], dtype="float32"))
    assert written(write_spmatrix_to_sparse_tensor, matrix, np.array([1.0], dtype="float32")) == SPARSE_EXAMPLE


def test_int_label_variant_bytes():
    data = written(write_numpy_to_dense_tensor, np.array([[1.0, 2.0]], dtype="float32"), np.array([1]))
    assert data == INT_LABEL_EXAMPLE


@pytest.mark.parametrize("data, features, label", [
    (WORKED_EXAMPLE, [[1.0, 2.0]], [1.0]),
    (FLOAT64_EXAMPLE, [[1.0, 2.0]], [1.0]),
    (INT_LABEL_EXAMPLE, [[1.0, 2.0]], [1.0]),
])
def test_reads_spec_examples(data, features, label):
    (batch,) = read_all(data)
    assert batch.features.dtype == np.float32 and batch.labels.dtype == np.float32
    np.testing.assert_array_equal(batch.features, features)
    np.testing.assert_array_equal(batch.labels, label)
    assert batch.ids is None


def test_reads_sparse_spec_example():
    (batch,) = read_all(SPARSE_EXAMPLE)
    assert sp.issparse(batch.features) and batch.features.dtype == np.float32
    np.testing.assert_array_equal(batch.features.toarray(), [[0, 2, 0, 3]])
    np.testing.assert_array_equal(batch.labels, [1.0])


def test_decode_record_of_spec_examples():
    record = decode_record(next(iter_recordio(io.BytesIO(SPARSE_EXAMPLE))))
    tensor = record["features"]["values"]
    assert tensor["dtype"] == "float32" and tensor["shape"] == [4]
    np.testing.assert_array_equal(tensor["values"], [2, 3])
    np.testing.assert_array_equal(tensor["keys"], [1, 3])
    assert record["label"]["values"]["keys"] is None and record["uid"] is None
    label = decode_record(next(iter_recordio(io.BytesIO(INT_LABEL_EXAMPLE))))["label"]["values"]
    assert label["dtype"] == "int32" and label["values"].tolist() == [1]


# --- framing ---------------------------------------------------------------------------------------------

def test_write_recordio_pads_to_four_bytes():
    for n in range(6):
        out = io.BytesIO()
        write_recordio(out, b"x" * n)
        assert out.getvalue() == frame(b"x" * n)


def test_split_record_is_joined_with_magic():
    pieces = [b"abcd", b"efgh", b"ij"]
    data = frame(pieces[0], 1) + frame(pieces[1], 2) + frame(pieces[2], 3) + frame(b"next")
    magic = b"\x0a\x23\xd7\xce"
    assert list(iter_recordio(io.BytesIO(data))) == [magic.join(pieces), b"next"]
    assert list(iter_recordio(io.BytesIO(frame(b"ab", 1) + frame(b"cd", 3)))) == [b"ab" + magic + b"cd"]


def test_split_record_decodes_to_joined_payload():
    # dmlc splits a record where the magic occurs at an aligned offset: here the first feature's bytes
    magic = b"\x0a\x23\xd7\xce"
    X = np.array([[np.frombuffer(magic, "<f4")[0], 2.0]], dtype=np.float32)
    payload = written(write_numpy_to_dense_tensor, X)[8:]
    cut = payload.index(magic)
    assert cut % 4 == 0
    data = frame(payload[:cut], 1) + frame(payload[cut + 4:], 3)
    assert list(iter_recordio(io.BytesIO(data))) == [payload]
    (batch,) = read_all(data)
    assert batch.features.tobytes() == X.tobytes()


def test_length_is_masked_with_29_bits():
    # the length word of a continuation frame has cflag bits set: unmasked it would be ~1 GiB
    data = frame(b"abcd", 1) + frame(b"efgh", 3)
    assert struct.unpack_from("<I", data, 4)[0] > 1 << 29
    assert list(iter_recordio(io.BytesIO(data))) == [b"abcd\x0a\x23\xd7\xceefgh"]


def test_empty_stream_yields_nothing():
    assert list(iter_recordio(io.BytesIO(b""))) == []
    assert read_all(b"") == []


def test_bad_magic_names_record():
    data = WORKED_EXAMPLE + b"\x00\x00\x00\x00\x04\x00\x00\x00abcd"
    with pytest.raises(DataFormatError, match="record 2") as info:
        list(iter_recordio(io.BytesIO(data), source="train.rec", channel="train"))
    assert "magic" in str(info.value) and "train.rec" in str(info.value) and info.value.record == 2


@pytest.mark.parametrize("tail", [b"\x0a\x23\xd7", b"\x0a\x23\xd7\xce\x08\x00\x00\x00abc"])
def test_truncated_frame_names_record(tail):
    with pytest.raises(DataFormatError, match="record 2.*truncated"):
        read_all(WORKED_EXAMPLE + tail)


def test_unfinished_split_record_is_an_error():
    with pytest.raises(DataFormatError, match="record 1"):
        list(iter_recordio(io.BytesIO(frame(b"abcd", 1))))
    with pytest.raises(DataFormatError, match="continuation"):
        list(iter_recordio(io.BytesIO(frame(b"abcd", 2))))


def test_missing_final_padding_is_tolerated():
    assert list(iter_recordio(io.BytesIO(frame(b"abcde")[:-3]))) == [b"abcde"]


def test_reads_non_seekable_stream_incrementally():
    read_fd, write_fd = os.pipe()
    X = np.arange(3000, dtype=np.float32).reshape(1000, 3)
    data = written(write_numpy_to_dense_tensor, X)

    def writer():
        with os.fdopen(write_fd, "wb", buffering=0) as out:
            for start in range(0, len(data), 999):  # odd-sized writes split frames anywhere
                out.write(data[start:start + 999])

    thread = threading.Thread(target=writer)
    thread.start()
    with os.fdopen(read_fd, "rb", buffering=0) as stream:
        batches = list(iter_recordio_protobuf(stream, 300))
    thread.join()
    assert [len(b) for b in batches] == [300, 300, 300, 100]
    np.testing.assert_array_equal(np.concatenate([b.features for b in batches]), X)


# --- reading batches -----------------------------------------------------------------------------------

def test_batches_have_exact_sizes_and_values():
    X = np.random.default_rng(0).normal(size=(25, 4)).astype(np.float32)
    y = np.arange(25, dtype=np.float32)
    batches = read_all(written(write_numpy_to_dense_tensor, X, y), batch_size=10)
    assert [len(b) for b in batches] == [10, 10, 5]
    np.testing.assert_array_equal(np.concatenate([b.features for b in batches]), X)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), y)
    assert batches[0].features.flags.writeable


def test_vector_labels():
    X = np.ones((4, 2), np.float32)
    Y = np.arange(12, dtype=np.float32).reshape(4, 3)
    (batch,) = read_all(written(write_recordio_protobuf, X, Y))
    assert batch.labels.shape == (4, 3)
    np.testing.assert_array_equal(batch.labels, Y)


def test_no_labels_gives_none():
    (batch,) = read_all(written(write_numpy_to_dense_tensor, np.ones((3, 2), np.float32)))
    assert batch.labels is None


def test_sparse_batch_when_any_record_is_sparse():
    dense = written(write_numpy_to_dense_tensor, np.array([[1, 0, 2, 0]], np.float32))
    sparse = written(write_spmatrix_to_sparse_tensor, sp.csr_matrix(np.array([[0, 0, 5, 0]], np.float32)))
    (batch,) = read_all(dense + sparse)
    assert sp.issparse(batch.features) and batch.features.shape == (2, 4)
    np.testing.assert_array_equal(batch.features.toarray(), [[1, 0, 2, 0], [0, 0, 5, 0]])


def test_all_zero_sparse_row_has_only_shape():
    data = written(write_spmatrix_to_sparse_tensor, sp.csr_matrix((2, 5), dtype=np.float32))
    assert decode_record(next(iter_recordio(io.BytesIO(data))))["features"]["values"]["shape"] == [5]
    (batch,) = read_all(data)
    assert batch.features.shape == (2, 5) and batch.features.nnz == 0


def test_ragged_dense_rows_name_the_record():
    data = (written(write_numpy_to_dense_tensor, np.ones((3, 4), np.float32))
            + written(write_numpy_to_dense_tensor, np.ones((1, 3), np.float32)))
    with pytest.raises(DataFormatError, match="record 4.*3 feature values.*4") as info:
        read_all(data, batch_size=2, source="part.pbr", channel="train")
    assert "part.pbr" in str(info.value) and "channel 'train'" in str(info.value)


def test_record_without_features_is_rejected():
    data = WORKED_EXAMPLE + encode_records([{"score": 1.0}])
    with pytest.raises(DataFormatError, match=r"record 2.*features\['values'\]"):
        read_all(data)


def test_labels_missing_on_a_later_record_is_rejected():
    data = WORKED_EXAMPLE + written(write_numpy_to_dense_tensor, np.ones((1, 2), np.float32))
    with pytest.raises(DataFormatError, match="record 2.*no label"):
        read_all(data)


def test_uids_become_ids():
    payload = WORKED_EXAMPLE[8:] + b"\x1a\x03r-1"
    batch = read_all(frame(payload) + frame(WORKED_EXAMPLE[8:] + b"\x1a\x03r-2"))[0]
    assert batch.ids == ["r-1", "r-2"]
    np.testing.assert_array_equal(batch.features, [[1, 2], [1, 2]])


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def ld(field: int, body: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(body)) + body


def entry(key: str, value: bytes) -> bytes:
    return ld(1, key.encode()) + ld(2, value)


def test_unpacked_values_unknown_fields_and_duplicate_keys():
    unpacked = b"".join(b"\x0d" + struct.pack("<f", v) for v in (7.0, 8.0))  # field 1, fixed32, one by one
    tensor = unpacked + b"\x20\x05" + b"\x2d\x00\x00\x00\x00"  # unknown varint and fixed32 fields
    old = entry("values", ld(2, ld(1, struct.pack("<2f", 1, 2))))
    record = (ld(1, old) + ld(1, entry("values", ld(2, tensor)))  # same key twice: the last wins
              + b"\x98\x06\x01" + ld(99, b"ignored") + ld(4, b'{"m": 1}'))
    decoded = decode_record(record)
    assert decoded["features"]["values"]["values"].tolist() == [7.0, 8.0]
    assert decoded["metadata"] == '{"m": 1}'
    (batch,) = read_all(frame(record))
    np.testing.assert_array_equal(batch.features, [[7.0, 8.0]])


def test_int32_and_float64_tensors_everywhere():
    negative = b"".join(varint(v & 0xFFFFFFFFFFFFFFFF) for v in (-3, 200, 70000))
    features = ld(1, entry("values", ld(7, ld(1, negative))))
    record = features + ld(2, entry("values", ld(3, ld(1, struct.pack("<d", 0.5)))))
    (batch,) = read_all(frame(record))
    np.testing.assert_array_equal(batch.features, [[-3, 200, 70000]])
    np.testing.assert_array_equal(batch.labels, [0.5])
    assert decode_record(record)["features"]["values"]["values"].dtype == np.int32


def test_malformed_protobuf_names_record():
    with pytest.raises(DataFormatError, match="record 2.*malformed"):
        read_all(WORKED_EXAMPLE + frame(b"\x0a\x40\x00"))


def test_unsorted_and_repeated_sparse_keys_give_canonical_csr():
    tensor = ld(1, struct.pack("<3f", 1, 2, 4)) + ld(2, bytes([3, 0, 3])) + ld(3, bytes([5]))
    (batch,) = read_all(frame(ld(1, entry("values", ld(2, tensor)))))
    assert batch.features.has_canonical_format
    np.testing.assert_array_equal(batch.features.toarray(), [[2, 0, 0, 5, 0]])


def test_sparse_key_out_of_range_names_record():
    bad = written(write_spmatrix_to_sparse_tensor, sp.csr_matrix(np.eye(2, dtype=np.float32)))
    tensor = ld(1, struct.pack("<f", 1)) + ld(2, bytes([9])) + ld(3, bytes([2]))
    with pytest.raises(DataFormatError, match="record 3.*out of range"):
        read_all(bad + frame(ld(1, entry("values", ld(2, tensor)))))


# --- writers --------------------------------------------------------------------------------------------

def test_writer_dtype_rules_follow_the_sdk():
    with pytest.raises(ValueError, match="Unsupported dtype"):
        written(write_numpy_to_dense_tensor, np.ones((2, 2), np.int32))
    with pytest.raises(ValueError, match="Matrix"):
        written(write_numpy_to_dense_tensor, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="Vector"):
        written(write_numpy_to_dense_tensor, np.ones((2, 2), np.float32), np.ones((2, 1), np.float32))
    with pytest.raises(TypeError, match="sparse"):
        written(write_spmatrix_to_sparse_tensor, np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match="out of range"):
        written(write_numpy_to_dense_tensor, np.array([[2**40]]))


def test_encode_records_layout():
    data = encode_records([{"score": 0.5, "predicted_label": 1}, {"closest_cluster": [1.0, 2.0]}, {}])
    records = [decode_record(p) for p in iter_recordio(io.BytesIO(data))]
    assert [r["features"] for r in records] == [{}, {}, {}]
    assert records[0]["label"]["score"]["values"].tolist() == [0.5]
    assert records[0]["label"]["predicted_label"]["dtype"] == "float32"
    assert records[1]["label"]["closest_cluster"]["values"].tolist() == [1.0, 2.0]
    assert records[2]["label"] == {}
    with pytest.raises(ValueError, match="numeric"):
        encode_records([{"score": "high"}])


def test_encode_int32_records_is_what_the_sdks_protobuf_writes():
    record_pb2 = pytest.importorskip("sagemaker.amazon.record_pb2")
    rows = [{"source": np.array([7, 300, 2**20, -5], np.int32), "target": [5]}, {"source": [], "target": ()},
            {"ids": np.arange(3, dtype=np.uint8)}]
    expected = []
    for row in rows:
        record = record_pb2.Record()
        for name, values in row.items():
            record.features[name].int32_tensor.values.extend(int(v) for v in values)
        expected.append(frame(record.SerializeToString(deterministic=True)))  # map keys sorted
    data = encode_int32_records(rows)
    assert data == b"".join(expected)
    decoded = [decode_record(p)["features"] for p in iter_recordio(io.BytesIO(data))]
    assert decoded[0]["source"]["dtype"] == "int32" and decoded[0]["source"]["values"].tolist() == [7, 300, 2**20, -5]
    assert decoded[1]["target"]["values"].tolist() == [] and decoded[2]["ids"]["values"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="out of range"):
        encode_int32_records([{"source": [2**31]}])
    with pytest.raises(ValueError, match="integers"):
        encode_int32_records([{"source": [1.5]}])
