"""The Accept used when a request names none (or ``*/*``), per algorithm, against the spec (issue 13, defect 2).

- XGBoost: ``text/csv`` (its container's ``_parse_accept`` falls back to text/csv).
- Seq2Seq and BlazingText: the request's own content type, since for them "Content type and accept must
  be identical" (AWS's seq2seq notebook sends RecordIO-protobuf with no Accept and parses protobuf back;
  its JSON call, also without Accept, reads JSON).
- Every other algorithm: ``application/json``, the inference toolkit's default.
- ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` wins over all of these.
"""

from __future__ import annotations

import io
import json
import os
import re

import numpy as np
import pytest

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

import sagelocal  # noqa: E402
from sagelocal.base.registry import get_class  # noqa: E402
from sagelocal.io import codecs  # noqa: E402
from sagelocal.io.codecs import response_codec  # noqa: E402
from sagelocal.serving import Invoker, create_app  # noqa: E402
from tests.common.examples import fit_example  # noqa: E402
from tests.conftest import spec_dir, spec_of  # noqa: E402
from tests.serving.serving_support import thread_server  # noqa: E402

SPEC = spec_dir()
ALGORITHMS = sagelocal.algorithms()
PROTOBUF = "application/x-recordio-protobuf"

#: Algorithms whose answer follows the request's content type, with the spec sentence that says so.
SAME_AS_REQUEST_SPEC = {
    "seq2seq": "Content type and accept must be identical.",
    "blazingtext": "Content-Type and Accept must match; if they differ, Accept is ignored.",
}
#: Algorithms with their own documented default, with the spec text that gives it.
OWN_DEFAULT_SPEC = {
    "xgboost": ("text/csv", "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT = Accept used when the header is missing or */* "
                            "(fallback text/csv)"),
}
_MATCH_RULE = re.compile(r"content[- ]type and accept must", re.IGNORECASE)


def _spec(name):
    return spec_of(name)


def _media(value: str) -> str:
    return value.split(";")[0].strip().lower()


def _expected(name: str, request_media: str, answered: list[str]) -> str | None:
    if name in SAME_AS_REQUEST_SPEC:
        return request_media
    if name in OWN_DEFAULT_SPEC:
        return OWN_DEFAULT_SPEC[name][0]
    return "application/json" if "application/json" in answered else None  # None: any answered type


# ------------------------------------------------------------------------- every registered algorithm
@pytest.mark.skipif(SPEC is None, reason="../shared/spec is not beside the repository")
def test_the_rule_tables_are_the_specs_words():
    for path in sorted((SPEC / "algorithms").glob("*.json")):
        spec = json.loads(path.read_text())
        notes = spec["inference"].get("notes") or ""
        if _MATCH_RULE.search(notes):
            assert spec["name"] in SAME_AS_REQUEST_SPEC, f"{spec['name']}: {notes[:120]}"
    for name, sentence in SAME_AS_REQUEST_SPEC.items():
        assert sentence in _spec(name)["inference"]["notes"]
    for name, (_, text) in OWN_DEFAULT_SPEC.items():
        assert text in _spec(name)["inference"]["inference_hyperparameters_or_configuration"]


@pytest.mark.skipif(SPEC is None, reason="../shared/spec is not beside the repository")
@pytest.mark.parametrize("name", ALGORITHMS)
@pytest.mark.parametrize("accept", [None, "", "*/*"])
def test_default_accept_matches_the_spec(name, accept):
    cls = get_class(name)
    spec = _spec(name)["inference"]
    answered = [_media(t) for t in spec["response_accept_types"]]
    for request_type in dict.fromkeys(_media(t) for t in spec["request_content_types"]):
        expected = _expected(name, request_type, answered)
        codec, _ = response_codec(cls, accept, content_type=request_type)
        if expected is None:
            assert codec.media_type in answered, (name, request_type)
        else:
            assert codec.media_type == expected, (name, request_type)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_sagemaker_default_invocations_accept_wins(name):
    cls = get_class(name)
    for media in cls.response_content_types:
        codec, _ = response_codec(cls, None, media, content_type=cls.request_content_types[0])
        assert codec.media_type == _media(media)


def test_same_as_request_is_what_seq2seq_and_blazingtext_declare():
    for name in SAME_AS_REQUEST_SPEC:
        if name in ALGORITHMS:
            assert get_class(name).default_accept == codecs.SAME_AS_REQUEST


# --------------------------------------------------------------------------- Seq2Seq end to end
@pytest.fixture(scope="module")
def seq2seq():
    est, X, _ = fit_example("seq2seq", get_class("seq2seq"))
    return est, list(X[:3])


def _protobuf_request(est, sentences) -> bytes:
    from sagelocal.algorithms.seq2seq.data import encode_pair

    return b"".join(encode_pair([est.vocab_source_[w] for w in s.split()]) for s in sentences)


def _record_deserializer():
    try:
        from sagemaker.deserializers import RecordDeserializer
    except ImportError:  # older SDKs keep it in sagemaker.amazon.common
        from sagemaker.amazon.common import RecordDeserializer
    return RecordDeserializer()


def _targets(records) -> list[list[int]]:
    return [list(r.features["target"].int32_tensor.values) for r in records]


def test_seq2seq_answers_a_protobuf_request_without_accept_in_protobuf(seq2seq):
    pytest.importorskip("sagemaker")
    est, sentences = seq2seq
    body = _protobuf_request(est, sentences)
    invoker = Invoker(est)
    explicit = invoker.invoke(body, PROTOBUF, PROTOBUF)
    assert explicit.status == 200, explicit.message
    for accept in (None, "*/*"):
        answer = invoker.invoke(body, PROTOBUF, accept)
        assert answer.status == 200 and answer.content_type == PROTOBUF, answer.message
        assert answer.body == explicit.body
        records = _record_deserializer().deserialize(io.BytesIO(answer.body), answer.content_type)
        assert len(records) == len(sentences)
        expected = [[est.vocab_target_[w] for w in r["target"].split()] for r in est.predict_records(
            [{"data": s} for s in sentences])]
        assert _targets(records) == expected


def test_seq2seq_json_and_jsonlines_requests_without_accept_keep_their_type(seq2seq):
    est, sentences = seq2seq
    invoker = Invoker(est)
    body = json.dumps({"instances": [{"data": s} for s in sentences]}).encode()
    answer = invoker.invoke(body, "application/json", None)  # the notebook's JSON call sends no Accept
    assert answer.status == 200 and answer.content_type == "application/json"
    assert [p["target"] for p in json.loads(answer.body)["predictions"]] == list(est.predict(sentences))
    lines = "".join(json.dumps({"source": s}) + "\n" for s in sentences).encode()
    answer = invoker.invoke(lines, "application/jsonlines", "*/*")
    assert answer.status == 200 and answer.content_type == "application/jsonlines"
    assert [json.loads(line)["target"] for line in answer.body.splitlines()] == list(est.predict(sentences))
    # an explicit mismatch is still refused, and the container's default Accept still wins
    assert invoker.invoke(body, "application/json", PROTOBUF).status == 406
    env_default = Invoker(est, default_accept="application/jsonlines").invoke(body, "application/json", None)
    assert env_default.content_type == "application/jsonlines"


def test_blazingtext_answers_in_the_request_type_without_accept():
    est, _, _ = fit_example("blazingtext", get_class("blazingtext"))
    invoker = Invoker(est)
    lines = b'{"source": "good great film"}\n{"source": "bad dull film"}\n'
    explicit = invoker.invoke(lines, "application/jsonlines", "application/jsonlines")
    for accept in (None, "*/*"):
        answer = invoker.invoke(lines, "application/jsonlines", accept)
        assert answer.status == 200 and answer.content_type == "application/jsonlines", answer.message
        assert answer.body == explicit.body
    body = json.dumps({"instances": ["good great film"]}).encode()
    assert invoker.invoke(body, "application/json", None).body == invoker.invoke(
        body, "application/json", "application/json").body


def test_seq2seq_notebook_call_over_http(seq2seq):
    """boto3's invoke_endpoint with no Accept, as the seq2seq notebook calls it, read by RecordDeserializer."""
    boto3 = pytest.importorskip("boto3")
    botocore = pytest.importorskip("botocore")
    est, sentences = seq2seq
    body = _protobuf_request(est, sentences)
    with thread_server(create_app(Invoker(est))) as url:
        session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
        runtime = session.client("sagemaker-runtime", endpoint_url=url,
                                 config=botocore.config.Config(retries={"max_attempts": 1}))
        response = runtime.invoke_endpoint(EndpointName="seq2seq", ContentType=PROTOBUF, Body=body)
        assert response["ContentType"] == PROTOBUF
        records = _record_deserializer().deserialize(response["Body"], response["ContentType"])
    assert _targets(records) == _targets(_record_deserializer().deserialize(
        io.BytesIO(Invoker(est).invoke(body, PROTOBUF, PROTOBUF).body), PROTOBUF))
    assert len(records) == len(sentences) and all(np.ndim(t) == 1 for t in _targets(records))
