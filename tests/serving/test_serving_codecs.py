"""Codecs, content negotiation and the in-process predict path (no HTTP)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from sagelocal import DataFormatError, UnsupportedContentTypeError
from sagelocal.algorithms import PCA
from sagelocal.io.codecs import (
    CSVRequest,
    CSVResponse,
    JSONLinesRequest,
    JSONRequest,
    RecordIOProtobufRequest,
    encode_response,
    request_codec,
    request_options,
    response_codec,
)
from sagelocal.serving import Invoker
from sagelocal.serving.errors import UnsupportedAcceptError, status_for
from tests.serving.serving_support import csv_body, fitted_pca, protobuf_body, sdk_records

ROWS = np.array([[1.5, 16.0, 14.0, 23.0], [-2.0, 100.25, 15.5, 9.0]], dtype=np.float32)


@pytest.fixture(scope="module")
def pca():
    return fitted_pca()


class VerbosePCA(PCA):
    """A PCA answering in CSV too, with a ``verbose`` request option (as kNN and IP Insights have)."""

    response_content_types = (*PCA.response_content_types, "text/csv")

    def _records(self, features, verbose=False):
        records = super()._records(features)
        if verbose:
            norms = np.linalg.norm(np.asarray(features.todense() if sp.issparse(features) else features), axis=1)
            for record, norm in zip(records, norms.tolist()):
                record["norm"] = norm
        return records


# ------------------------------------------------------------------------------------ requests
def test_csv_request_reads_rows_without_label_column():
    request = CSVRequest(b"1.5,16,14,23\n-2,100.25,15.5,9\n", {})
    np.testing.assert_array_equal(request.features, ROWS)
    assert request.rows == [["1.5", "16", "14", "23"], ["-2", "100.25", "15.5", "9"]]


def test_csv_request_rows_reject_undecodable_text():
    with pytest.raises(DataFormatError, match="utf-8"):
        _ = CSVRequest(b"entity,\xff\xfe", {}).rows
    assert CSVRequest(b'"u1",10.0.0.1\n', {}).rows == [["u1", "10.0.0.1"]]


def test_csv_request_honours_label_size_parameter():
    request = CSVRequest(b"7,1.5,16,14,23\n8,-2,100.25,15.5,9\n", {"label_size": "1"})
    np.testing.assert_array_equal(request.features, ROWS)


def test_json_request_takes_every_documented_instance_shape():
    body = {"instances": [
        {"features": [1.5, 16.0, 14.0, 23.0]},
        {"data": {"features": {"values": [-2.0, 100.25, 15.5, 9.0]}}},
        {"configuration": {}, "data": {"features": {"values": [1.5, 16.0, 14.0, 23.0]}}},
    ]}
    features = JSONRequest(json.dumps(body).encode()).features
    np.testing.assert_array_equal(features, ROWS[[0, 1, 0]])


def test_json_request_sparse_instance_becomes_csr():
    body = {"instances": [
        {"data": {"features": {"keys": [26, 182, 232, 243, 431], "shape": [2000], "values": [1, 1, 1, 4, 1]}}},
        {"data": {"features": {"keys": [0], "shape": [2000], "values": [2.5]}}},
    ]}
    features = JSONRequest(json.dumps(body).encode()).features
    expected = sp.csr_matrix(([1, 1, 1, 4, 1, 2.5], ([0, 0, 0, 0, 0, 1], [26, 182, 232, 243, 431, 0])),
                             shape=(2, 2000))
    assert sp.issparse(features) and features.shape == (2, 2000)
    np.testing.assert_array_equal(features.toarray(), expected.toarray())


def test_json_request_mixing_dense_and_sparse_instances():
    body = {"instances": [{"features": [0.0, 3.0, 0.0]},
                          {"data": {"features": {"keys": [2], "shape": [3], "values": [5.0]}}}]}
    features = JSONRequest(json.dumps(body).encode()).features
    np.testing.assert_array_equal(features.toarray(), [[0, 3, 0], [0, 0, 5]])


@pytest.mark.parametrize("body", [ROWS.tolist(), ROWS[0].tolist(), {"features": ROWS[0].tolist()}])
def test_json_request_conveniences(body):
    features = JSONRequest(json.dumps(body).encode()).features
    np.testing.assert_array_equal(features, np.atleast_2d(np.asarray(body["features"] if isinstance(body, dict)
                                                                     else body, dtype=np.float32)))


def test_json_request_keeps_configuration_and_raw_instances():
    body = {"instances": [{"start": "2009-11-01", "target": [4.0, "NaN"]}], "configuration": {"num_samples": 5}}
    request = JSONRequest(json.dumps(body).encode())
    assert request.instances == body["instances"]
    assert request.configuration == {"num_samples": 5}


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "not valid JSON"),
    (b'{"rows": []}', "instances"),
    (b'{"instances": [{"features": [1, 2]}, {"features": [1, "x"]}]}', "instance 2"),
    (b'{"instances": [{"features": [1, 2]}, {"features": [1, 2, 3]}]}', "instance 2 has 3 features"),
    (b'{"instances": [{"data": {"features": {"keys": [5], "shape": [3], "values": [1]}}}]}', "keys must lie"),
    (b'{"instances": [{"data": {"features": {"keys": [1], "values": [1]}}}]}', "shape"),
    (b'{"instances": [{"label": 1}]}', "instance 1"),
])
def test_json_request_errors_name_the_instance(body, fragment):
    with pytest.raises(DataFormatError, match=fragment):
        _ = JSONRequest(body).features


def test_jsonlines_request_reads_each_line_and_names_bad_lines():
    body = b'{"features": [1.5, 16.0, 14.0, 23.0]}\n\n{"data": {"features": {"values": [-2, 100.25, 15.5, 9]}}}\n'
    np.testing.assert_array_equal(JSONLinesRequest(body).features, ROWS)
    with pytest.raises(DataFormatError, match="record 3"):
        _ = JSONLinesRequest(b'{"features": [1]}\n{"features": [2]}\n{"features": [3\n').features


def test_recordio_request_reads_framed_and_bare_records():
    body = protobuf_body(ROWS)
    np.testing.assert_array_equal(RecordIOProtobufRequest(body).features, ROWS)
    single = protobuf_body(ROWS[:1])
    length = int.from_bytes(single[4:8], "little") & 0x1FFFFFFF
    bare = single[8:8 + length]  # batch transform's SingleRecord sends the payload without its frame
    np.testing.assert_array_equal(RecordIOProtobufRequest(bare).features, ROWS[:1])


# ----------------------------------------------------------------------------------- responses
def test_json_jsonlines_and_protobuf_responses(pca):
    est, X = pca
    records = est.predict_records(X[:3])
    body, media = encode_response(records, "application/json", "projections")
    assert media == "application/json" and json.loads(body) == {"projections": records}
    body, _ = encode_response(records, "application/jsonlines", "projections")
    assert [json.loads(line) for line in body.decode().splitlines()] == records
    body, _ = encode_response(records, "application/x-recordio-protobuf", "projections")
    decoded = sdk_records(body)
    assert len(decoded) == 3
    for record, expected in zip(decoded, records):
        assert list(record.label) == ["projection"] and len(record.features) == 0
        np.testing.assert_array_equal(record.label["projection"].float32_tensor.values,
                                      np.float32(expected["projection"]))


def test_csv_response_writes_values_in_key_order():
    records = [{"closest_cluster": 1.0, "distance_to_cluster": 3.5},
               {"closest_cluster": 2.0, "distance_to_cluster": 5.0}]
    assert CSVResponse().encode(records, None) == b"1.0,3.5\n2.0,5.0\n"
    assert CSVResponse().split(b"1.0,3.5\n2.0,5.0\n", None) == [["1.0", "3.5"], ["2.0", "5.0"]]
    assert CSVResponse().encode([{"score": [0.25, 0.75], "label": "a,b"}], None) == b'0.25,0.75,"a,b"\n'


# --------------------------------------------------------------------------------- negotiation
def test_request_codec_negotiation(pca):
    est, _ = pca
    assert request_codec(est, "text/CSV; label_size=0") == (CSVRequest, {"label_size": "0"})
    assert request_codec(est, "application/json")[0] is JSONRequest
    for bad in ("text/plain", "application/jsonlines", "nonsense", None, ""):
        with pytest.raises(UnsupportedContentTypeError) as info:
            request_codec(est, bad)
        assert status_for(info.value) == 415


def test_accept_negotiation_lists_wildcards_and_defaults(pca):
    est, _ = pca
    assert response_codec(est, None)[0].media_type == "application/json"
    assert response_codec(est, "*/*", "application/jsonlines")[0].media_type == "application/jsonlines"
    assert response_codec(est, "text/csv, application/jsonlines;q=0.5")[0].media_type == "application/jsonlines"
    assert response_codec(est, "application/json;q=0, application/x-recordio-protobuf")[0].media_type \
        == "application/x-recordio-protobuf"
    with pytest.raises(UnsupportedAcceptError) as info:
        response_codec(est, "text/csv")
    assert status_for(info.value) == 406 and "application/jsonlines" in str(info.value)


def test_accept_parameters_become_declared_record_options(pca):
    est = VerbosePCA(**pca[0].get_params()).fit(pca[1])
    assert request_options(est, {"verbose": "true", "charset": "utf-8"}) == {"verbose": True}
    assert request_options(est, {"verbose": "False"}) == {"verbose": False}
    assert request_options(pca[0], {"verbose": "true"}) == {}  # PCA declares no option: ignored
    with pytest.raises(DataFormatError, match="'verbose' must be true or false"):
        request_options(est, {"verbose": "maybe"})
    assert Invoker(est).invoke(csv_body(pca[1][:1]), "text/csv", "application/json;verbose=2").status == 400
    invoker = Invoker(est)
    plain = json.loads(invoker.invoke(csv_body(pca[1][:2]), "text/csv", "application/json").body)
    verbose = json.loads(invoker.invoke(csv_body(pca[1][:2]), "text/csv", "application/json; verbose=true").body)
    assert all(set(r) == {"projection"} for r in plain["projections"])
    expected = np.linalg.norm(pca[1][:2], axis=1)
    np.testing.assert_allclose([r["norm"] for r in verbose["projections"]], expected, rtol=1e-6)


class TopPCA(PCA):
    """A PCA with an integer request option (as BlazingText's ``k``)."""

    def _records(self, features, k=1):
        return [{"projection": r["projection"][:k]} for r in super()._records(features)]


def test_integer_accept_parameters_are_parsed(pca):
    invoker = Invoker(TopPCA(**pca[0].get_params()).fit(pca[1]))
    body = csv_body(pca[1][:2])
    answer = json.loads(invoker.invoke(body, "text/csv", "application/json; k=2").body)
    assert [len(r["projection"]) for r in answer["projections"]] == [2, 2]
    bad = invoker.invoke(body, "text/csv", "application/json; k=two")
    assert bad.status == 400 and "'k' must be an integer" in bad.message


# ----------------------------------------------------------------------------------- plug-ins
class TextPCA(PCA):
    """A PCA whose requests are JSON objects ``{"text": "1 2 3 ..."}``, with its own CSV response codec."""

    request_content_types = ("application/json",)
    response_content_types = ("application/json", "text/csv")

    class _Semicolons(CSVResponse):
        def encode(self, records, model):
            return "".join(";".join(map(str, r["projection"])) + "\n" for r in records).encode()

    response_codecs = {"text/csv": _Semicolons}

    def _serving_input(self, request):
        rows = [[float(t) for t in instance["text"].split()] for instance in request.instances]
        return np.asarray(rows, dtype=np.float32), {}


def test_algorithms_plug_in_request_decoding_and_response_codecs(pca):
    est = TextPCA(**pca[0].get_params()).fit(pca[1])
    X = pca[1][:2]
    body = json.dumps({"instances": [{"text": " ".join(repr(float(v)) for v in row)} for row in X]}).encode()
    answer = Invoker(est).invoke(body, "application/json", "text/csv")
    assert answer.status == 200 and answer.content_type == "text/csv"
    expected = est.predict(X)
    got = np.array([[float(v) for v in line.split(";")] for line in answer.body.decode().splitlines()])
    np.testing.assert_array_equal(got, expected)


# ------------------------------------------------------------------------------ invoker errors
def test_invoker_status_table(pca):
    est, X = pca
    invoker = Invoker(est, max_payload_bytes=1000)
    assert invoker.invoke(b"", "text/csv").status == 204
    assert invoker.invoke(b"1,2,x\n", "text/csv").status == 400
    assert invoker.invoke(csv_body(X[:1])[:-1] + b",1\n", "text/csv").status == 400  # wrong feature count
    assert invoker.invoke(b"x" * 1001, "text/csv").status == 413
    assert invoker.invoke(b"1,2", "text/plain").status == 415
    assert invoker.invoke(csv_body(X[:1]), "text/csv", "text/html").status == 406


class BrokenPCA(PCA):
    """A PCA whose predict fails unexpectedly (a bug, not bad input)."""

    def _records(self, features):
        raise RuntimeError("kernel exploded at /secret/path.py line 12")


def test_unexpected_errors_are_500_without_traceback(pca):
    est = BrokenPCA(**pca[0].get_params()).fit(pca[1])
    answer = Invoker(est).invoke(csv_body(pca[1][:1]), "text/csv")
    body = json.loads(answer.body)
    assert answer.status == 500 and body["status"] == 500
    assert "RuntimeError" in body["message"] and "Traceback" not in answer.body.decode()
