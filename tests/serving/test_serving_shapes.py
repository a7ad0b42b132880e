"""Every registered algorithm answers JSON, JSON lines and RecordIO-protobuf with exactly the keys,
nesting and value types of its spec (``response_json_example``, ``response_jsonlines_example``,
``protobuf_response_label_keys``), through the HTTP application, from a saved and re-loaded model.

Generated from the registry and ``tests/common/examples.py``, so a new algorithm is covered as soon as
it is registered. Shapes compare record keys exactly; number types as "number" (the spec's examples
write ``0`` where the service writes ``0.0``); below the record level, object keys that are data (such
as DeepAR's quantile names) are not compared, only the shapes of their values.
"""

from __future__ import annotations

import asyncio
import copy
import json

import httpx
import numpy as np
import pytest
import scipy.sparse as sp

import sagelocal
from sagelocal.base.registry import get_class
from sagelocal.io.codecs import RESPONSE_CODECS
from sagelocal.serving import create_app
from tests.common.examples import fit_example
from tests.conftest import spec_dir
from tests.serving.serving_support import sdk_records

SPEC = spec_dir()
ALGORITHMS = sagelocal.algorithms()
JSON, JSONLINES, PROTOBUF = "application/json", "application/jsonlines", "application/x-recordio-protobuf"
pytestmark = pytest.mark.skipif(SPEC is None, reason="../shared/spec is not beside the repository")
#: Response types the spec documents only under a model environment variable (XGBoost's JSON lines and
#: RecordIO-protobuf examples are its "selectable inference output"); set while checking those types.
SERVING_ENVIRONMENT = {"xgboost": {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probabilities"}}


def spec_inference(name: str) -> dict:
    """The spec's ``inference`` section of the algorithm named ``name`` (files are keyed by their "name")."""
    for file in sorted((SPEC / "algorithms").glob("*.json")):
        spec = json.loads(file.read_text())
        if spec.get("name") == name or file.stem == name:
            return spec["inference"]
    raise AssertionError(f"no spec for {name}")


def shape(value, top: bool = True):
    """A hashable description of a JSON value's structure and types."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, list):
        return ("list", frozenset(shape(v, False) for v in value))
    if top:
        return ("record", frozenset((k, shape(v, False)) for k, v in value.items()))
    return ("object", frozenset(shape(v, False) for v in value.values()))


def spec_variants(inference: dict, response_key: str) -> list[tuple[str | None, list]]:
    """(envelope key or None for a bare list, example records) for each documented response variant."""
    example = inference["response_json_example"]
    if isinstance(example, dict) and set(example) != {response_key} and all(
            isinstance(v, (dict, list)) for v in example.values()) and not any(
            isinstance(v, list) and k == response_key for k, v in example.items()):
        candidates = list(example.values())  # per problem type, e.g. {"supervised": ..., "word2vec": ...}
    else:
        candidates = [example]
    variants = []
    for candidate in candidates:
        if isinstance(candidate, list):
            variants.append((None, candidate))
        elif isinstance(candidate, dict) and len(candidate) == 1:
            key, records = next(iter(candidate.items()))
            variants.append((key, records if isinstance(records, list) else [records]))
    return variants


def allowed_shapes(inference: dict, response_key: str) -> set:
    records = [r for _, rs in spec_variants(inference, response_key) for r in rs]
    for line in (inference.get("response_jsonlines_example") or "").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:  # a documented line with "..." placeholders
            pass
    return {shape(r) for r in records}


def post(app, body: bytes, content_type: str, accept: str) -> httpx.Response:
    async def send():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sagelocal") as client:
            return await client.post("/invocations", content=body,
                                     headers={"Content-Type": content_type, "Accept": accept})

    return asyncio.run(send())


def tabular(X) -> bool:
    return (sp.issparse(X) or isinstance(X, np.ndarray)) and X.ndim == 2


def feature_requests(model, X) -> list[tuple[bytes, str]]:
    rows = X[:3]
    dense = rows.toarray() if sp.issparse(rows) else np.asarray(rows)
    types = [t.split(";")[0].strip() for t in model.request_content_types]
    out = []
    if "text/csv" in types:
        out.append(("".join(",".join(repr(float(v)) for v in row) + "\n" for row in dense).encode(), "text/csv"))
    if JSON in types:
        out.append((json.dumps({"instances": [{"features": row.tolist()} for row in dense]}).encode(), JSON))
    return out


def instance_requests(inference: dict, X) -> list[tuple[bytes, str]]:
    """Requests for algorithms whose inputs are not feature rows: the example's own items (with the spec
    example's ``configuration``, which chooses the documented outputs, then without), then the spec's."""
    out = []
    example = inference.get("request_json_example")
    extra = {k: v for k, v in example.items() if k != "instances"} if isinstance(example, dict) and \
        "instances" in example else {}
    for body in ({"instances": list(X[:3]), **extra}, {"instances": list(X[:3])}):
        try:
            out.append((json.dumps(body).encode(), JSON))
        except (TypeError, ValueError):
            pass
    candidates = [example] if isinstance(example, dict) and "instances" in example else \
        list(example.values()) if isinstance(example, dict) else []
    out += [(json.dumps(c).encode(), JSON) for c in candidates if isinstance(c, dict) and "instances" in c]
    return out


def first_answer(app, requests, accept):
    answers = []
    for body, content_type in requests:
        reply = post(app, body, content_type, accept)
        if reply.status_code == 200:
            return body, content_type, reply
        answers.append(f"{content_type}: {reply.status_code} {reply.text[:300]}")
    pytest.fail("no request was answered 200:\n" + "\n".join(answers))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    cache = {}

    def get(name):
        if name not in cache:
            est, X, _ = fit_example(name, get_class(name))
            path = tmp_path_factory.mktemp(name)
            est.save(path)
            model = sagelocal.load(path)
            cache[name] = (model, X, create_app(model))
        return cache[name]

    return get


def json_records(name, served, inference, environ=None) -> tuple:
    """(model, app, request body, its content type, the JSON answer's records), checked against the spec.

    ``environ``: serving variables; a server reads them once, when it starts, so it gets a server of its own.
    """
    model, X, app = served(name)
    if environ:
        model = copy.copy(model)
        app = create_app(model, environ=environ)
    variants = spec_variants(inference, model.response_key)
    allowed = allowed_shapes(inference, model.response_key)
    requests = feature_requests(model, X) if tabular(X) else instance_requests(inference, X)
    body, content_type, reply = first_answer(app, requests, JSON)
    assert reply.headers["content-type"].startswith(JSON)
    document = reply.json()
    if isinstance(document, dict):
        assert (next(iter(document)), ) in {(key,) for key, _ in variants} and len(document) == 1, document.keys()
        records = document[next(iter(document))]
    else:
        assert None in {key for key, _ in variants}, "the spec documents an enveloped JSON response"
        records = document
    if tabular(X):
        assert len(records) == 3
    assert records and all(shape(r) in allowed for r in records), (records[:1], allowed)
    return model, app, body, content_type, records


@pytest.mark.parametrize("name", ALGORITHMS)
def test_json_responses_match_the_spec(name, served):
    json_records(name, served, spec_inference(name))


@pytest.mark.parametrize("name", ALGORITHMS)
def test_jsonlines_responses_match_the_spec(name, served):
    inference = spec_inference(name)
    model, app, body, content_type, records = json_records(name, served, inference, SERVING_ENVIRONMENT.get(name))
    if JSONLINES not in model.response_content_types:
        pytest.skip(f"{name} does not answer in JSON lines")
    lines = post(app, body, content_type, JSONLINES)
    assert lines.status_code == 200 and lines.headers["content-type"].startswith(JSONLINES)
    parsed = [json.loads(line) for line in lines.text.splitlines() if line.strip()]
    assert [shape(r) for r in parsed] == [shape(r) for r in records]


@pytest.mark.parametrize("name", ALGORITHMS)
def test_protobuf_responses_match_the_spec(name, served):
    inference = spec_inference(name)
    model, app, body, content_type, records = json_records(name, served, inference, SERVING_ENVIRONMENT.get(name))
    if PROTOBUF not in model.response_content_types:
        pytest.skip(f"{name} does not answer in RecordIO-protobuf")
    answer = post(app, body, content_type, PROTOBUF)
    if answer.status_code == 406 and not tabular(served(name)[1]):
        pytest.skip(f"{name} answers RecordIO-protobuf only to its own protobuf requests: {answer.json()['message']}")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(PROTOBUF), answer.text
    decoded = sdk_records(answer.content)
    assert len(decoded) == len(records)
    spec_keys = set(inference.get("protobuf_response_label_keys") or [])
    example_keys = {k for r in (r for _, rs in spec_variants(inference, model.response_key) for r in rs)
                    if isinstance(r, dict) for k in r}
    standard = model.response_codecs.get(PROTOBUF, RESPONSE_CODECS[PROTOBUF]) is RESPONSE_CODECS[PROTOBUF]
    for record, expected in zip(decoded, records):
        keys = set(record.label) or set(record.features)
        assert keys and keys <= spec_keys | example_keys, (keys, spec_keys)
        if standard:  # values as Float32 tensors under Record.label, equal to the JSON answer's values
            assert keys == set(expected) and len(record.features) == 0
            for key in keys:
                tensor = record.label[key]
                assert tensor.WhichOneof("value") == "float32_tensor"
                np.testing.assert_array_equal(tensor.float32_tensor.values,
                                              np.float32(np.ravel(expected[key])))
