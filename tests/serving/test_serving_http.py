"""Against a real server process: boto3's sagemaker-runtime client, the SageMaker SDK v2 Predictor, the
status table with a real HTTP client, 1,000 malformed requests, and the container's settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from sagelocal.algorithms import PCA
from sagelocal.serving import LocalServer, ServerSettings, create_app
from sagelocal.serving.server import free_port
from tests.serving.serving_support import csv_body, fitted_pca, protobuf_body, sdk_records, thread_server

boto3 = pytest.importorskip("boto3")
botocore = pytest.importorskip("botocore")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    est, X = fitted_pca()
    path = tmp_path_factory.mktemp("pca-model")
    est.save(path)
    return est, X, str(path)


@pytest.fixture(scope="module")
def server(model):
    with LocalServer(model[2], workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def runtime(server):
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    config = botocore.config.Config(retries={"max_attempts": 1})
    return session.client("sagemaker-runtime", endpoint_url=server.url, config=config)


def expected_projections(est, X):
    return [r["projection"] for r in est.predict_records(X)]


# --------------------------------------------------------------------------------------- boto3
def test_boto3_invoke_endpoint_with_csv_json_and_protobuf(model, runtime):
    est, X, _ = model
    rows = X[:5]
    expected = expected_projections(est, rows)
    reply = runtime.invoke_endpoint(EndpointName="pca-local", Body=csv_body(rows), ContentType="text/csv",
                                    Accept="application/json", CustomAttributes="trace=1",
                                    InferenceId="abc-123")
    assert reply["ContentType"] == "application/json"
    assert reply["InvokedProductionVariant"] == "AllTraffic"
    assert reply["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert [r["projection"] for r in json.loads(reply["Body"].read())["projections"]] == expected

    body = json.dumps({"instances": [{"features": row.tolist()} for row in rows]})
    reply = runtime.invoke_endpoint(EndpointName="pca-local", Body=body, ContentType="application/json",
                                    Accept="application/jsonlines")
    assert reply["ContentType"] == "application/jsonlines"
    got = [json.loads(line)["projection"] for line in reply["Body"].read().decode().splitlines()]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)

    reply = runtime.invoke_endpoint(EndpointName="pca-local", Body=protobuf_body(rows),
                                    ContentType="application/x-recordio-protobuf",
                                    Accept="application/x-recordio-protobuf")
    records = sdk_records(reply["Body"].read())
    got = [list(r.label["projection"].float32_tensor.values) for r in records]
    np.testing.assert_array_equal(np.float32(got), np.float32(expected))


def test_boto3_sees_container_errors_as_model_error(runtime):
    with pytest.raises(runtime.exceptions.ModelError) as info:
        runtime.invoke_endpoint(EndpointName="pca-local", Body=b"1,2,3", ContentType="text/plain")
    error = info.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 415
    assert "text/plain" in error["OriginalMessage"] and "Received client error (415)" in error["Error"]["Message"]


def test_runtime_front_end_validates_body_size_and_endpoint_name(runtime, server):
    too_big = b"0" * (6_291_456 + 1)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        runtime.invoke_endpoint(EndpointName="pca-local", Body=too_big, ContentType="text/csv")
    assert info.value.response["Error"]["Code"] == "ValidationError"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    reply = httpx.post(server.url + "/endpoints/bad_name!/invocations", content=b"1",
                       headers={"Content-Type": "text/csv"})
    assert reply.status_code == 400 and reply.headers["x-amzn-ErrorType"] == "ValidationError"


# ----------------------------------------------------------------------------------------- SDK
def test_sagemaker_sdk_predictor_with_serializers(model, server):
    sagemaker = pytest.importorskip("sagemaker")
    from sagemaker.amazon.common import RecordDeserializer, RecordSerializer
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer

    est, X, _ = model
    rows = X[:4]
    expected = expected_projections(est, rows)
    boto_session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    runtime = boto_session.client("sagemaker-runtime", endpoint_url=server.url)
    session = sagemaker.Session(boto_session=boto_session, sagemaker_runtime_client=runtime)

    predictor = Predictor("pca-local", sagemaker_session=session, serializer=CSVSerializer(),
                          deserializer=JSONDeserializer())
    answer = predictor.predict(rows)
    assert [r["projection"] for r in answer["projections"]] == expected

    predictor = Predictor("pca-local", sagemaker_session=session, serializer=RecordSerializer(),
                          deserializer=RecordDeserializer())
    records = predictor.predict(rows)
    got = [list(r.label["projection"].float32_tensor.values) for r in records]
    np.testing.assert_array_equal(np.float32(got), np.float32(expected))


# ----------------------------------------------------------------------------- the status table
def error_of(reply) -> dict:
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert body["status"] == reply.status_code and body["message"]
    assert "Traceback" not in reply.text
    return body


def test_each_error_status_over_http(model, server):
    est, X, _ = model
    with httpx.Client(base_url=server.url) as client:
        reply = client.post("/invocations", content=b"1,2,x\n", headers={"Content-Type": "text/csv"})
        assert reply.status_code == 400 and "'x' is not a number" in error_of(reply)["message"]
        reply = client.post("/invocations", content=b"1" * (6 * 2**20 + 1), headers={"Content-Type": "text/csv"})
        assert reply.status_code == 413 and "6291456" in error_of(reply)["message"]
        reply = client.post("/invocations", content=b"1,2", headers={"Content-Type": "text/plain"})
        assert reply.status_code == 415 and "text/csv" in error_of(reply)["message"]
        reply = client.post("/invocations", content=csv_body(X[:1]),
                            headers={"Content-Type": "text/csv", "Accept": "text/csv"})
        assert reply.status_code == 406 and "application/json" in error_of(reply)["message"]
        assert client.post("/invocations", content=b"", headers={"Content-Type": "text/csv"}).status_code == 204
        assert client.get("/nowhere").status_code == 404
        assert client.get("/ping").status_code == 200


def test_routes_ping_and_execution_parameters(server):
    assert httpx.get(server.url + "/ping").status_code == 200
    params = httpx.get(server.url + "/execution-parameters").json()
    assert params == {"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}


class _Failing(PCA):
    def _records(self, features):
        if features.shape[0] == 3:
            raise ZeroDivisionError("an unexpected bug")
        if features.shape[0] == 4:
            time.sleep(1.6)  # past the 1 s timeout; the next request waits for it, within its own second
        return super()._records(features)


def test_unexpected_error_and_timeout_are_500_and_the_server_keeps_serving(model):
    est, X, _ = model
    failing = _Failing(**est.get_params()).fit(X)
    with thread_server(create_app(failing, timeout=1.0)) as url, httpx.Client(base_url=url) as client:
        headers = {"Content-Type": "text/csv"}
        reply = client.post("/invocations", content=csv_body(X[:3]), headers=headers)
        assert reply.status_code == 500 and "ZeroDivisionError" in error_of(reply)["message"]
        reply = client.post("/invocations", content=csv_body(X[:4]), headers=headers)
        assert reply.status_code == 500 and "longer than 1 s" in error_of(reply)["message"]
        assert client.get("/ping").status_code == 200  # answered while the slow prediction still runs
        reply = client.post("/invocations", content=csv_body(X[:2]), headers=headers)
        assert reply.status_code == 200 and len(reply.json()["projections"]) == 2


# ----------------------------------------------------------------------- 1,000 malformed requests
MALFORMED = [
    (b"1,2,not-a-number\n", "text/csv", None, 400),
    (b"{\"instances\": [", "application/json", None, 400),
    (b"\x0a\x23\xd7\xce\xff\xff\x00\x00garbage", "application/x-recordio-protobuf", None, 400),
    (b"1,2,3", "image/jpeg", None, 415),
    (b"1,2,3", "text/csv", "text/html", 406),
    (b"1,2,3\n", "text/csv", None, 400),  # 3 features; the model has 10
    (b"\xff\xfe\x00", "application/jsonlines", None, 415),
    (b'{"instances": [{"features": [1, 2]}, {"data": 5}]}', "application/json", None, 400),
]


def test_server_survives_1000_malformed_requests(model, server):
    est, X, _ = model
    statuses = []
    with httpx.Client(base_url=server.url) as client:  # one keep-alive connection per worker in turn
        for i in range(1000):
            body, content_type, accept, _ = MALFORMED[i % len(MALFORMED)]
            headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
            statuses.append(client.post("/invocations", content=body, headers=headers).status_code)
        assert statuses == [MALFORMED[i % len(MALFORMED)][3] for i in range(1000)]
        assert client.get("/ping").status_code == 200
        reply = client.post("/invocations", content=csv_body(X[:3]), headers={"Content-Type": "text/csv"})
        assert reply.status_code == 200
        assert [r["projection"] for r in reply.json()["projections"]] == expected_projections(est, X[:3])


# ------------------------------------------------------------------------- container settings
def test_settings_come_from_sagemaker_variables():
    env = {"SAGEMAKER_BIND_TO_PORT": "9123", "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
           "SAGEMAKER_MODEL_SERVER_TIMEOUT": "12", "MAX_CONTENT_LENGTH": "1024",
           "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/jsonlines", "SAGEMAKER_BATCH": "true"}
    settings = ServerSettings.from_environment(env, model_dir="m")
    assert (settings.port, settings.workers, settings.timeout, settings.max_payload_bytes) == (9123, 3, 12.0, 1024)
    assert settings.default_accept == "application/jsonlines" and settings.batch and settings.host == "127.0.0.1"
    defaults = ServerSettings.from_environment({})
    assert (defaults.port, defaults.workers, defaults.timeout) == (8080, os.cpu_count(), 60.0)
    assert defaults.model_dir == "/opt/ml/model" and defaults.max_payload_bytes == 6 * 2**20
    assert ServerSettings.from_environment(env, port=7000).port == 7000
    with pytest.raises(Exception, match="SAGEMAKER_MODEL_SERVER_WORKERS"):
        ServerSettings.from_environment({"SAGEMAKER_MODEL_SERVER_WORKERS": "many"})


def test_sagelocal_serve_follows_the_container_contract(model, tmp_path):
    """``sagelocal serve --root DIR`` with only SageMaker's variables: port, workers, default Accept."""
    est, X, path = model
    import shutil

    shutil.copytree(path, tmp_path / "model")
    port = free_port()
    env = {**os.environ, "SAGEMAKER_BIND_TO_PORT": str(port), "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
           "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/jsonlines"}
    process = subprocess.Popen([sys.executable, "-m", "sagelocal.cli", "serve", "--root", str(tmp_path)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/ping").status_code == 200:
                    break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        reply = httpx.post(url + "/invocations", content=csv_body(X[:2]), headers={"Content-Type": "text/csv"})
        assert reply.headers["content-type"] == "application/jsonlines"
        assert [json.loads(line)["projection"] for line in reply.text.splitlines()] == expected_projections(est, X[:2])
    finally:
        process.terminate()
        process.wait(15)


def test_serve_with_a_missing_model_fails_clearly(tmp_path, capsys):
    from sagelocal.cli import main

    assert main(["serve", "--model-dir", str(tmp_path / "none"), "--port", str(free_port())]) == 1
    assert "sagelocal serve: no model at" in capsys.readouterr().err
