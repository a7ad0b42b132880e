"""Batch transform: output equals the endpoint's record-by-record answers for every split type and batch
strategy; DataProcessing (filters, join) reproduces the Developer Guide's examples; bad records."""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pytest

from sagelocal.algorithms import PCA
from sagelocal.cli import main
from sagelocal.serving import JSONPath, JSONPathError, LocalServer, TransformError, transform
from tests.conftest import low_rank
from tests.serving.serving_support import csv_body, fitted_pca, protobuf_body, sdk_records

STRATEGIES = ["SingleRecord", "MultiRecord"]
TINY_MB = 1500 / 2**20  # about 1.5 KB: several multi-record requests per file


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    est, X = fitted_pca()
    path = tmp_path_factory.mktemp("pca-model")
    est.save(path)
    return est, X[:40], str(path)


@pytest.fixture(scope="module")
def server(model):
    with LocalServer(model[2], workers=1) as running:
        yield running


def endpoint_records(server, bodies, content_type, accept):
    """The endpoint's answer to each body, one request per record, decoded to projection lists."""
    out = []
    for body in bodies:
        answer = server.invoke(body, content_type, accept)
        assert answer.status == 200, answer.body
        out.extend(decode(answer.body, accept))
    return out


def assert_same(got: list, expected: list, strategy: str) -> None:
    """Exact for single-record requests; for multi-record ones float32 rounding may differ in the last
    bits, since a BLAS matrix product over many rows blocks its sums differently than over one row."""
    if strategy == "SingleRecord":
        assert got == expected
    else:
        np.testing.assert_allclose(np.float32(got), np.float32(expected), rtol=1e-5, atol=1e-5)


def decode(body: bytes, accept: str) -> list:
    if accept == "application/jsonlines":
        return [json.loads(line)["projection"] for line in body.decode().splitlines() if line]
    if accept == "application/json":
        decoder, text, pos, out = json.JSONDecoder(), body.decode(), 0, []
        while pos < len(text):  # AssembleWith=None concatenates one JSON document per request
            if text[pos].isspace():
                pos += 1
                continue
            doc, pos = decoder.raw_decode(text, pos)
            out.extend(r["projection"] for r in doc["projections"])
        return out
    return [list(r.label["projection"].float32_tensor.values) for r in sdk_records(body)]


# ----------------------------------------------------------------------- split types x strategies
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("accept, assemble", [("application/jsonlines", "Line"), ("application/json", "None")])
def test_line_split_csv_equals_endpoint_answers(model, server, tmp_path, strategy, accept, assemble):
    est, X, path = model
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.csv").write_bytes(csv_body(X))
    result = transform(path, tmp_path / "in", tmp_path / "out", content_type="text/csv", split_type="Line",
                       batch_strategy=strategy, max_payload_mb=TINY_MB, assemble_with=assemble, accept=accept)
    assert result.ok and result.files[0].records == len(X)
    output = (tmp_path / "out" / "rows.csv.out").read_bytes()
    expected = endpoint_records(server, [csv_body(row[None]) for row in X], "text/csv", accept)
    assert_same(decode(output, accept), expected, strategy)
    if accept == "application/jsonlines":
        assert output.count(b"\n") == len(X) and b"\n\n" not in output


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_none_split_sends_each_file_whole(model, server, tmp_path, strategy):
    est, X, path = model
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "a.csv").write_bytes(csv_body(X[:7]))
    (tmp_path / "in" / "sub" / "b.csv").write_bytes(csv_body(X[7:]))
    result = transform(path, tmp_path / "in", tmp_path / "out", content_type="text/csv", split_type="None",
                       batch_strategy=strategy, accept="application/json")
    assert result.ok and [f.records for f in result.files] == [1, 1]  # a file is one record
    for name, rows in (("a.csv.out", X[:7]), ("sub/b.csv.out", X[7:])):
        output = (tmp_path / "out" / name).read_bytes()
        whole = server.invoke(csv_body(rows), "text/csv", "application/json").body
        assert output == whole  # one request per file: the body itself
        assert_same(decode(output, "application/json"), endpoint_records(
            server, [csv_body(r[None]) for r in rows], "text/csv", "application/json"), "MultiRecord")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_recordio_split_equals_endpoint_answers(model, server, tmp_path, strategy):
    est, X, path = model
    (tmp_path / "rows.pbr").write_bytes(protobuf_body(X))
    accept = "application/x-recordio-protobuf"
    result = transform(path, tmp_path / "rows.pbr", tmp_path / "out", content_type=accept, split_type="RecordIO",
                       batch_strategy=strategy, max_payload_mb=TINY_MB, accept=accept)
    assert result.ok and result.files[0].records == len(X)
    output = (tmp_path / "out" / "rows.pbr.out").read_bytes()
    expected = endpoint_records(server, [protobuf_body(row[None]) for row in X], accept, accept)
    assert_same(decode(output, accept), expected, strategy)


def test_gzip_input_and_cli(model, server, tmp_path):
    est, X, path = model
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.csv.gz").write_bytes(gzip.compress(csv_body(X[:5])))
    code = main(["transform", "--model", path, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                 "--content-type", "text/csv", "--split-type", "Line", "--compression", "Gzip",
                 "--accept", "application/jsonlines", "--assemble-with", "Line"])
    assert code == 0
    output = (tmp_path / "out" / "rows.csv.gz.out").read_bytes()
    expected = endpoint_records(server, [csv_body(r[None]) for r in X[:5]], "text/csv", "application/jsonlines")
    assert_same(decode(output, "application/jsonlines"), expected, "MultiRecord")


# -------------------------------------------------------------------------------- bad records
def test_bad_record_is_named_and_the_rest_is_kept(model, server, tmp_path, capsys):
    est, X, path = model
    lines = csv_body(X[:6]).decode().splitlines()
    lines[2] = "1,2,oops"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "in" / "good.csv").write_bytes(csv_body(X[6:9]))
    code = main(["transform", "--model", path, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                 "--content-type", "text/csv", "--split-type", "Line", "--batch-strategy", "MultiRecord",
                 "--accept", "application/jsonlines", "--assemble-with", "Line"])
    assert code == 1
    assert f"{tmp_path / 'in' / 'bad.csv'}: record 3:" in capsys.readouterr().err
    assert not (tmp_path / "out" / "bad.csv.out").exists()  # as SageMaker: no output object for it
    partial = (tmp_path / "out" / "bad.csv.out.partial").read_bytes()
    good_rows = np.delete(X[:6], 2, axis=0)
    accept = "application/jsonlines"
    assert_same(decode(partial, accept), endpoint_records(server, [csv_body(r[None]) for r in good_rows],
                                                          "text/csv", accept), "MultiRecord")
    assert_same(decode((tmp_path / "out" / "good.csv.out").read_bytes(), accept), endpoint_records(
        server, [csv_body(r[None]) for r in X[6:9]], "text/csv", accept), "MultiRecord")


def test_record_over_the_payload_limit_is_reported(model, tmp_path):
    est, X, path = model
    (tmp_path / "rows.csv").write_bytes(csv_body(X[:3]))
    result = transform(path, tmp_path / "rows.csv", tmp_path / "out", content_type="text/csv", split_type="Line",
                       max_payload_mb=100 / 2**20, accept="application/jsonlines")
    assert not result.ok and [e.record for e in result.errors] == [1, 2, 3]
    assert "more than max_payload_mb" in result.errors[0].message


@pytest.mark.parametrize("options, fragment", [
    ({"split_type": "TFRecord"}, "split_type"),
    ({"batch_strategy": "Many"}, "batch_strategy"),
    ({"max_payload_mb": 101}, "max_payload_mb"),
    ({"content_type": "text/plain"}, "not supported"),
    ({"accept": "text/csv"}, "not supported"),
    ({"join_source": "Input", "accept": "application/jsonlines", "split_type": "Line", "assemble_with": "Line"},
     "same content_type and accept"),
    ({"join_source": "Input", "accept": "application/json", "content_type": "application/json",
      "split_type": "Line", "assemble_with": "None"}, "split_type equal to assemble_with"),
    ({"input_filter": "$..a"}, "input_filter"),
])
def test_invalid_job_settings_fail_before_any_file(model, tmp_path, options, fragment):
    (tmp_path / "rows.csv").write_bytes(b"1,2\n")
    with pytest.raises(TransformError, match=fragment):
        transform(model[2], tmp_path / "rows.csv", tmp_path / "out", **{"content_type": "text/csv", **options})
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


# ------------------------------------------------------------------------------ DataProcessing
class CSVPCA(PCA):
    """A PCA that also answers in CSV (as k-means does), so that CSV joins can run on it."""

    response_content_types = (*PCA.response_content_types, "text/csv")


class LinesPCA(PCA):
    """A PCA that also takes JSON lines requests (as kNN and NTM do), so that JSON lines joins can run on it."""

    request_content_types = (*PCA.request_content_types, "application/jsonlines")


@pytest.fixture(scope="module")
def lines_model(model):
    est, X, _ = model
    return LinesPCA(**est.get_params()).fit(fitted_pca()[1])


@pytest.fixture(scope="module")
def one_component():
    """A 1-component PCA of 3 features: the DG's ``[1,2,3]`` + ``[1]`` -> ``1,2,3,1`` shape."""
    X = low_rank(n=200, d=3, spectrum=(3.0,), noise=0.1, seed=3)
    return CSVPCA(num_components=1).fit(X)


def test_csv_join_appends_the_output_columns(one_component, tmp_path):
    (tmp_path / "rows.csv").write_text("1,2,3\n4,5,6\n")
    result = transform(one_component, tmp_path / "rows.csv", tmp_path / "out", content_type="text/csv",
                       accept="text/csv", split_type="Line", assemble_with="Line", join_source="Input")
    assert result.ok
    expected = one_component.predict(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32))[:, 0]
    lines = (tmp_path / "out" / "rows.csv.out").read_text().splitlines()
    assert [line.split(",")[:3] for line in lines] == [["1", "2", "3"], ["4", "5", "6"]]
    np.testing.assert_array_equal([np.float32(line.split(",")[3]) for line in lines], expected)


def test_csv_id_column_excluded_from_input_and_kept_in_output(one_component, tmp_path):
    (tmp_path / "rows.csv").write_text("id-7,1,2,3\nid-9,4,5,6\n")
    result = transform(one_component, tmp_path / "rows.csv", tmp_path / "out", content_type="text/csv",
                       accept="text/csv", split_type="Line", assemble_with="Line", input_filter="$[1:]",
                       join_source="Input", output_filter="$[0,-1]")
    assert result.ok
    expected = one_component.predict(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32))[:, 0]
    lines = [line.split(",") for line in (tmp_path / "out" / "rows.csv.out").read_text().splitlines()]
    assert [cells[0] for cells in lines] == ["id-7", "id-9"] and all(len(cells) == 2 for cells in lines)
    np.testing.assert_array_equal([np.float32(cells[1]) for cells in lines], expected)


def test_json_lines_features_filter_and_id_output_filter(model, lines_model, tmp_path):
    est, X, _ = model
    lines = [json.dumps({"id": f"r{i}", "features": row.tolist(), "extra": i}) for i, row in enumerate(X[:4])]
    (tmp_path / "rows.jsonl").write_text("\n".join(lines) + "\n")
    jsonl = "application/jsonlines"
    result = transform(lines_model, tmp_path / "rows.jsonl", tmp_path / "out", content_type=jsonl, accept=jsonl,
                       split_type="Line", assemble_with="Line", input_filter="$.features", join_source="Input",
                       output_filter="$['id','SageMakerOutput']")
    assert result.ok
    got = [json.loads(line) for line in (tmp_path / "out" / "rows.jsonl.out").read_text().splitlines()]
    expected = [r["projection"] for r in lines_model.predict_records(X[:4])]
    assert [list(g) for g in got] == [["id", "SageMakerOutput"]] * 4
    assert [g["id"] for g in got] == ["r0", "r1", "r2", "r3"]
    np.testing.assert_allclose([g["SageMakerOutput"]["projection"] for g in got], expected, rtol=1e-6, atol=1e-6)


def test_json_join_adds_sagemaker_output_or_wraps_non_objects(model, lines_model, tmp_path):
    est, X, _ = model
    jsonl = "application/jsonlines"
    records = [{"key": 1, "features": X[0].tolist()}, X[1].tolist()]
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    result = transform(lines_model, tmp_path / "rows.jsonl", tmp_path / "out", content_type=jsonl, accept=jsonl,
                       split_type="Line", assemble_with="Line", join_source="Input")
    assert result.ok
    first, second = [json.loads(line) for line in (tmp_path / "out" / "rows.jsonl.out").read_text().splitlines()]
    assert set(first) == {"key", "features", "SageMakerOutput"} and first["key"] == 1
    assert set(second) == {"SageMakerInput", "SageMakerOutput"} and second["SageMakerInput"] == X[1].tolist()
    expected = [r["projection"] for r in lines_model.predict_records(X[:2])]
    np.testing.assert_allclose([first["SageMakerOutput"]["projection"], second["SageMakerOutput"]["projection"]],
                               expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------ JSONPath
ROW = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"]


@pytest.mark.parametrize("path, expected", [
    ("$", ROW),
    ("$[1:]", ROW[1:]),
    ("$[1:4]", ROW[1:5]),  # DG: "the second through fifth columns" (inclusive end)
    ("$[:5]", ROW[:6]),    # DG: "the first column (index 0) through the sixth column"
    ("$[5:]", ROW[5:]),    # DG: "from the 6th column through the last column"
    ("$[0,5:]", [ROW[0], *ROW[5:]]),
    ("$[1,3,5]", ["c1", "c3", "c5"]),
    ("$[-1]", "c7"),
    ("$[0,-1]", ["c0", "c7"]),
    ("$[*]", ROW),
])
def test_jsonpath_on_csv_rows(path, expected):
    assert JSONPath(path).apply(ROW) == expected


def test_jsonpath_on_objects():
    record = {"id": 3, "features": [1, 2], "f": {"c1": 1, "c2": 2, "c3": 3}, "SageMakerOutput": {"score": 0.5}}
    assert JSONPath("$.features").apply(record) == [1, 2]
    assert JSONPath("$['id','SageMakerOutput']").apply(record) == {"id": 3, "SageMakerOutput": {"score": 0.5}}
    assert JSONPath("$.f.['c1','c2']").apply(record) == {"c1": 1, "c2": 2}
    assert JSONPath("$.f.*").apply(record) == [1, 2, 3]
    assert JSONPath("$['features'][1]").apply(record) == 2
    assert JSONPath("$[1:4]", inclusive_end=False).apply(ROW) == ROW[1:4]


@pytest.mark.parametrize("path, value, fragment", [
    ("$[9]", ROW, "outside"),
    ("$.missing", {"a": 1}, "no key 'missing'"),
    ("$.a", [1], "of an object"),
])
def test_jsonpath_errors_on_records(path, value, fragment):
    with pytest.raises(JSONPathError, match=fragment):
        JSONPath(path).apply(value)


@pytest.mark.parametrize("path", ["features", "$..id", "$.f.['c1','c2.g']", "$[1", "$[a-b]", "$.", "$x"])
def test_jsonpath_rejects_unsupported_expressions(path):
    with pytest.raises(JSONPathError):
        JSONPath(path)


def test_jsonpath_keeps_order_and_tolerates_spaces():
    assert JSONPath("$[ 2 , 0 ]").apply(ROW) == ["c2", "c0"]
    assert JSONPath('$["id"]').apply({"id": io.__name__}) == "io"
