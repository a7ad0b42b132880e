"""libsvm against scikit-learn's load_svmlight_file as the oracle."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import dump_svmlight_file, load_svmlight_file

from sagelocal.base.errors import DataFormatError
from sagelocal.io import Batch, read
from sagelocal.io.libsvm import read_libsvm


def whole(data: bytes, **kwargs) -> Batch:
    return Batch.concat(list(read_libsvm(io.BytesIO(data), 7, **kwargs)))


def sklearn_file(X, y, **kwargs) -> bytes:
    out = io.BytesIO()
    dump_svmlight_file(X, y, out, **kwargs)
    return out.getvalue()


def test_matches_sklearn_on_its_own_files():
    keep = np.ones(60)
    keep[5] = 0  # an empty row
    X = sp.csr_matrix(sp.diags(keep) @ sp.random(60, 40, density=0.2, format="csr", random_state=0))
    y = np.random.default_rng(0).integers(0, 3, 60)
    data = sklearn_file(X, y, zero_based=True)
    expected_X, expected_y = load_svmlight_file(io.BytesIO(data), zero_based=True, n_features=40)
    batch = Batch.concat(list(read(io.BytesIO(data), "text/libsvm", batch_size=16)))
    assert sp.issparse(batch.features) and batch.features.dtype == np.float32
    assert batch.features.shape[0] == 60 and batch.features.shape[1] <= 40  # as wide as the largest index + 1
    np.testing.assert_array_equal(batch.features.toarray(), expected_X.toarray()[:, :batch.feature_dim]
                                  .astype(np.float32))
    np.testing.assert_array_equal(batch.labels, expected_y.astype(np.float32))
    assert batch.weights is None


def test_line_by_line_layouts_match_sklearn():
    text = (b"# a comment line\n"
            b"1\t0:1.5   3:2\r\n"
            b"\n"
            b"0 2:-1e-3 # trailing comment\n"
            b"  2 1:4 4:0.25  \n")
    expected_X, expected_y = load_svmlight_file(io.BytesIO(text), zero_based=True)
    batch = whole(text)
    np.testing.assert_array_equal(batch.features.toarray(), expected_X.toarray().astype(np.float32))
    np.testing.assert_array_equal(batch.labels, expected_y)


def test_weights_from_label_colon_weight():
    batch = whole(b"1:0.5 0:1\n0 1:2\n1:3 2:1\n")
    np.testing.assert_array_equal(batch.labels, [1, 0, 1])
    np.testing.assert_array_equal(batch.weights, [0.5, 1, 3])  # a line without a weight weighs 1
    np.testing.assert_array_equal(batch.features.toarray(), [[1, 0, 0], [0, 2, 0], [0, 0, 1]])


def test_zero_based_by_default_and_one_based_on_request():
    data = b"1 1:5 3:7\n"
    np.testing.assert_array_equal(whole(data).features.toarray(), [[0, 5, 0, 7]])  # column 0 stays empty
    np.testing.assert_array_equal(whole(data, zero_based=False).features.toarray(), [[5, 0, 7]])
    with pytest.raises(DataFormatError, match="record 1.*index 0 is out of range.*one-based"):
        whole(b"1 0:1\n", zero_based=False)


def test_inference_lines_without_labels():
    batch = whole(b"0:1 2:3\n1:4\n", labels=False)
    assert batch.labels is None
    np.testing.assert_array_equal(batch.features.toarray(), [[1, 0, 3], [0, 4, 0]])


def test_width_grows_and_concat_widens(monkeypatch):
    monkeypatch.setattr("sagelocal.io.csv._CHUNK_BYTES", 4)  # one line per chunk
    batches = list(read_libsvm(io.BytesIO(b"1 0:1\n1 5:2\n"), 1))
    assert [b.feature_dim for b in batches] == [1, 6]
    joined = Batch.concat(batches)
    np.testing.assert_array_equal(joined.features.toarray(), [[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 2]])


def test_unsorted_and_repeated_indices_are_canonical():
    batch = whole(b"1 3:1 1:2 3:4\n")
    assert batch.features.has_canonical_format
    np.testing.assert_array_equal(batch.features.toarray(), [[0, 2, 0, 5]])


@pytest.mark.parametrize("line, message", [
    (b"1 2:x\n", "record 2.*value 'x' is not a number"),
    (b"abc 1:2\n", "record 2.*label 'abc' is not a number"),
    (b"1 2\n", "record 2.*token '2' is not index:value"),
    (b"1 1.5:2\n", "record 2.*index '1.5' is not an integer"),
    (b"1 -1:2\n", "record 2.*index -1 is negative"),
    (b"1 qid:3 1:2\n", "record 2.*qid"),
    (b"1 2:3:4\n", "record 2"),
])
def test_errors_name_line_and_token(line, message):
    with pytest.raises(DataFormatError, match=message) as info:
        list(read(io.BytesIO(b"1 0:1\n" + line), "text/libsvm", channel="train"))
    assert info.value.source == "<BytesIO>" and info.value.channel == "train"


def test_gzip_and_text_stream(tmp_path):
    path = tmp_path / "train.libsvm.gz"
    path.write_bytes(gzip.compress(b"1 0:1\n0 1:1\n"))
    (batch,) = list(read(path, "text/x-libsvm"))
    np.testing.assert_array_equal(batch.labels, [1, 0])
    (batch,) = list(read_libsvm(io.StringIO("1 0:2\n")))
    np.testing.assert_array_equal(batch.features.toarray(), [[2]])


@st.composite
def libsvm_texts(draw):
    """(libsvm bytes, the same without weights for scikit-learn, the weights or None)."""
    lines, plain, weights = [], [], []
    for _ in range(draw(st.integers(1, 12))):
        label = draw(st.sampled_from(["0", "1", "-2.5", "3e2"]))
        weight = draw(st.sampled_from([None, "0.5", "2", "1e-1"]))
        keys = sorted(draw(st.sets(st.integers(0, 30), max_size=6)))
        pairs = [f"{k}:{draw(st.sampled_from(['1', '-0.25', '7.5e3', '0']))}" for k in keys]
        lines.append(" ".join([label if weight is None else f"{label}:{weight}", *pairs]))
        plain.append(" ".join([label, *pairs]))
        weights.append(weight)
    expected = None if all(w is None for w in weights) else [1.0 if w is None else float(w) for w in weights]
    return ("\n".join(lines) + "\n").encode(), ("\n".join(plain) + "\n").encode(), expected


@settings(max_examples=60, deadline=None)
@given(libsvm_texts(), st.sampled_from([b"\t", b"  "]))
def test_vectorised_and_line_by_line_parsers_agree(texts, separator):
    data, plain, weights = texts
    fast = whole(data)
    slow = whole(data.replace(b" ", separator))  # tabs and double spaces take the line-by-line parser
    expected_X, expected_y = load_svmlight_file(io.BytesIO(plain), zero_based=True, n_features=31)
    for batch in (fast, slow):
        np.testing.assert_array_equal(batch.labels, expected_y.astype(np.float32))
        np.testing.assert_array_equal(batch.features.toarray(),
                                      expected_X.toarray()[:, :batch.feature_dim].astype(np.float32))
        if weights is None:
            assert batch.weights is None
        else:
            np.testing.assert_array_equal(batch.weights, np.float32(weights))


def _xgboost_reads(tmp_path, data: bytes):
    xgb = pytest.importorskip("xgboost")
    path = tmp_path / "data.libsvm"
    path.write_bytes(data)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Text file input has been deprecated"
        return xgb.DMatrix(f"{path}?format=libsvm").get_data()


@pytest.mark.parametrize("layout", ["canonical", "tabs"])
def test_an_index_without_a_value_at_a_line_end_reads_as_zero(tmp_path, layout):
    # The abalone files of SageMaker's XGBoost examples end some lines with "8:"; XGBoost's parser keeps
    # index 8 (an explicit entry). At the end of the file it reads 0 there, as sagelocal does everywhere.
    data = b"1 3:1.5 8:\n0 1:1 2:2\n2 4:4 8:\n"
    if layout == "tabs":  # the line-by-line parser
        data = data.replace(b" ", b"\t").replace(b"8:\n0", b"8:  \n0")
    batch = whole(data)
    np.testing.assert_array_equal(batch.labels, [1, 0, 2])
    assert batch.feature_dim == 9 and batch.features.nnz == 6
    dense = batch.features.toarray()
    np.testing.assert_array_equal(dense[:, 8], [0, 0, 0])
    np.testing.assert_array_equal(dense[2, [4, 8]], [4, 0])
    reference = _xgboost_reads(tmp_path, data)
    assert reference.shape == (3, 9)
    np.testing.assert_array_equal(batch.features.indices, reference.indices)
    np.testing.assert_array_equal(batch.features.indptr, reference.indptr)
    (no_labels,) = list(read_libsvm(io.BytesIO(b"3:1.5 8:\n"), labels=False))
    np.testing.assert_array_equal(no_labels.features.toarray(), [[0, 0, 0, 1.5, 0, 0, 0, 0, 0]])


def test_many_empty_values_stay_on_the_vectorised_parser(monkeypatch):
    from sagelocal.io import libsvm

    monkeypatch.setattr(libsvm, "_parse_slowly", lambda *a: pytest.fail("line-by-line parser used"))
    data = b"".join(b"%d 1:%d 7:\n" % (i % 2, i) for i in range(5000))
    batch = whole(data)
    assert batch.features.shape == (5000, 8) and batch.features.nnz == 10000
    np.testing.assert_array_equal(batch.features.toarray()[:, 7], 0)


@pytest.mark.parametrize("line, message", [
    (b"1 3:1.5 8: 9:2\n", "record 2.*token '8:' has no value"),  # XGBoost's parser refuses the file too
    (b"1 8:abc\n", "record 2.*value 'abc' is not a number"),
    (b"1 x:1\n", "record 2.*index 'x' is not an integer"),
    (b"1 :5\n", "record 2.*index '' is not an integer"),
    (b"1 8\n", "record 2.*token '8' is not index:value"),
])
def test_garbage_still_fails_naming_file_and_record(tmp_path, line, message):
    path = tmp_path / "train.libsvm"
    path.write_bytes(b"1 0:1\n" + line)
    with pytest.raises(DataFormatError, match=message) as info:
        list(read(path, "text/libsvm", channel="train"))
    assert info.value.source.endswith("train.libsvm") and info.value.record == 2
    assert "train.libsvm" in str(info.value)
