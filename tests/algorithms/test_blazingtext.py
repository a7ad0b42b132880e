"""BlazingText supervised mode, fastText's binary format and the inference protocol.

Oracles: the ``fasttext`` package (fasttext-wheel) trains, loads and predicts with fastText's own C++
code; gensim's Cython hashing and n-gram functions are ports of fastText's; the spec's examples give the
request and response shapes.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import sagelocal
from sagelocal import BlazingText, ChannelError, DataFormatError, HyperparameterError
from sagelocal.algorithms.blazingtext import data as corpus
from sagelocal.algorithms.blazingtext.fasttext_format import read_bin, write_bin

fasttext = pytest.importorskip("fasttext")
gensim_utils = pytest.importorskip("gensim.test.utils")
fasttext_inner = pytest.importorskip("gensim.models.fasttext_inner")

PANG_LEE = gensim_utils.datapath("pang_lee_polarity.cor")


def _lines():
    """The polarity file's lines; it holds Latin-1 bytes, decoded so that both sides see the same text."""
    with open(PANG_LEE, "rb") as handle:
        return handle.read().decode("latin-1").splitlines()


def _text(line: str) -> str:
    return " ".join(t for t in line.split() if not t.startswith("__label__"))


def _fasttext_top(model, texts, k=1):
    """fastText's own predictions through its C++ binding (the wheel's list API mangles k>1 on numpy 2)."""
    return [[(label, prob) for prob, label in model.f.predict(t + "\n", k, 0.0, "strict")] for t in texts]


@pytest.fixture(scope="module")
def polarity_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pang") / "train.txt"
    path.write_text("\n".join(_lines()) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------- fastText's hashing
def test_hash_and_character_ngrams_match_fasttexts():
    words = [w.encode() for w in ["héllo", "naïve", "abc", "日本語", "", "__label__x", "a" * 40]]
    assert corpus.fasttext_hash(words).tolist() == [fasttext_inner.ft_hash_bytes(w) for w in words]
    for word in ["héllo", "日本語", "ab", "internationalisation"]:
        for minn, maxn in [(1, 3), (3, 6), (2, 2)]:
            assert corpus.char_ngrams(word.encode(), minn, maxn) == \
                fasttext_inner.compute_ngrams_bytes(word, minn, maxn)


# --------------------------------------------------------------------------------- model.bin format
@pytest.fixture(scope="module")
def fasttext_model(tmp_path_factory, polarity_file):
    model = fasttext.train_supervised(str(polarity_file), dim=16, wordNgrams=3, bucket=5000, minCount=2, epoch=5,
                                      lr=0.5, thread=1, seed=1, verbose=0)
    path = tmp_path_factory.mktemp("ft") / "model.bin"
    model.save_model(str(path))
    return model, path


def test_fasttext_bin_round_trips_byte_for_byte(fasttext_model, tmp_path):
    _, path = fasttext_model
    parsed = read_bin(path)
    assert (parsed.nwords, parsed.nlabels, parsed.args.word_ngrams, parsed.args.bucket) == \
        (len(fasttext_model[0].words), 2, 3, 5000)
    write_bin(tmp_path / "copy.bin", parsed)
    assert (tmp_path / "copy.bin").read_bytes() == path.read_bytes()


def test_serving_a_fasttext_model_gives_fasttexts_labels_and_probabilities(fasttext_model, tmp_path):
    model, path = fasttext_model
    texts = [_text(line) + " zzunseen qq" for line in _lines()[::4]]  # unseen words still form word n-grams
    expected = _fasttext_top(model, texts, k=2)
    folder = tmp_path / "hosted"
    folder.mkdir()
    shutil.copy(path, folder / "model.bin")  # a model folder as fastText users host it
    for served in (BlazingText.from_fasttext(path), sagelocal.load(folder)):
        records = served.predict_records(texts, k=2)
        assert [r["label"] for r in records] == [[label for label, _ in e] for e in expected]
        ours = np.array([r["prob"] for r in records])
        theirs = np.array([[p for _, p in e] for e in expected])
        np.testing.assert_allclose(ours + 1e-5, theirs, atol=2e-5)  # fastText reports p + 1e-5


def test_our_model_bin_loads_in_fasttext_and_predicts_the_same_labels(tmp_path):
    lines = _lines()
    est = BlazingText(mode="supervised", epochs=8, learning_rate=0.3, min_count=1, buckets=20000, vector_dim=16,
                      word_ngrams=3).fit(lines)
    est.save(tmp_path / "model")
    loaded = fasttext.load_model(str(tmp_path / "model" / "model.bin"))
    texts = [_text(line) + " unseen-word" for line in lines]
    theirs = [top[0][0] for top in _fasttext_top(loaded, texts)]
    assert list(est.predict(texts)) == theirs
    assert len(set(theirs)) == 2  # the check is not vacuous: both labels are predicted


# ------------------------------------------------------------------------------------- accuracy
def test_accuracy_on_the_polarity_file_is_at_least_fasttexts(polarity_file):
    """Same settings (BlazingText's defaults, smaller buckets), same file: ours >= fastText - 1 point."""
    lines = _lines()
    gold = np.array([line.split()[0] for line in lines])
    texts = [_text(line) for line in lines]
    ours, theirs = [], []
    for seed in range(3):
        est = BlazingText(mode="supervised", buckets=200000, random_state=seed).fit(polarity_file)
        ours.append(np.mean(est.predict(texts) == gold))
        model = fasttext.train_supervised(str(polarity_file), epoch=5, lr=0.05, dim=100, wordNgrams=2,
                                          minCount=5, bucket=200000, thread=1, seed=seed, verbose=0)
        theirs.append(np.mean([top[0][0] == g for top, g in zip(_fasttext_top(model, texts), gold)]))
    assert np.mean(ours) >= np.mean(theirs) - 0.01


def test_early_stopping_stops_after_patience_and_reports_validation_accuracy():
    rng = np.random.default_rng(0)
    words = {"a": ["red", "green", "blue"], "b": ["one", "two", "three"]}
    make = [f"__label__{k} " + " ".join(rng.choice(words[k], 5)) for k in "ab" for _ in range(40)]
    est = BlazingText(mode="supervised", epochs=30, early_stopping=True, min_epochs=1, patience=2, learning_rate=0.5,
                      buckets=1000, vector_dim=8, min_count=1).fit(make, validation=make[::3])
    # accuracy reaches 1.0 in the first epoch and cannot improve: epochs 2 and 3 are the patience
    assert est.epochs_run_ == 3
    assert est.metrics_["validation:accuracy"] == 1.0


def test_multi_label_lines_predict_both_labels_first():
    lines = ["__label__x __label__y " + "shared words here"] * 30 + ["__label__z other text entirely"] * 30
    est = BlazingText(mode="supervised", epochs=10, learning_rate=0.5, buckets=1000, vector_dim=8,
                      min_count=1).fit(lines)
    record = est.predict_records(["shared words here"], k=3)[0]
    assert set(record["label"][:2]) == {"__label__x", "__label__y"}
    assert record["prob"] == sorted(record["prob"], reverse=True) and abs(sum(record["prob"]) - 1) < 1e-5


# --------------------------------------------------------------------------------------- inputs
def test_augmented_manifest_and_text_channels_train_the_same_model(tmp_path):
    rng = np.random.default_rng(1)
    rows = [(int(k), " ".join(rng.choice(["up", "high"] if k else ["down", "low"], 4))) for k in rng.integers(0, 2, 60)]
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "train.txt").write_text("".join(f"__label__{k} {s}\n" for k, s in rows))
    (tmp_path / "train.manifest").write_text("".join(json.dumps({"source": s, "label": k}) + "\n" for k, s in rows))
    hp = dict(mode="supervised", epochs=3, buckets=1000, vector_dim=8, min_count=1, lines_per_step=1)
    text = BlazingText(**hp).fit(sagelocal.io.Channel(tmp_path / "text", "text/plain"))
    manifest = BlazingText(**hp).fit(sagelocal.io.Channel(tmp_path / "train.manifest", "application/jsonlines",
                                                          data_type="AugmentedManifestFile",
                                                          attribute_names=["source", "label"]))
    np.testing.assert_array_equal(text.model_.input, manifest.model_.input)
    assert text.classes_ == manifest.classes_ and set(text.classes_) == {"__label__0", "__label__1"}


def test_bad_inputs_are_named_errors():
    with pytest.raises(DataFormatError, match="list of sentences"):
        BlazingText(mode="supervised").fit("__label__a one line")
    with pytest.raises(DataFormatError, match="__label__"):
        BlazingText(mode="supervised", min_count=1).fit(["no labels here"] * 3)
    with pytest.raises(ChannelError, match="validation"):
        BlazingText(mode="supervised", early_stopping=True).fit(["__label__a x"])
    with pytest.raises(ChannelError, match="only the train channel"):
        BlazingText(mode="cbow").fit(["a b"], validation=["a b"])
    with pytest.raises(HyperparameterError) as info:
        BlazingText(mode="supervised", subwords=True, window_size=3).fit(["__label__a x"])
    assert set(info.value.names) == {"subwords", "window_size"}
    with pytest.raises(HyperparameterError) as info:
        BlazingText(mode="skipgram", subwords=True, min_char=5, max_char=3).fit(["a b"])
    assert info.value.names == ["max_char"]


# ------------------------------------------------------------------------------------- inference
@pytest.fixture(scope="module")
def classifier():
    lines = ["__label__1 the movie was excellent and fun"] * 20 + ["__label__2 i did not like the plot ."] * 20
    return BlazingText(mode="supervised", epochs=5, learning_rate=0.5, buckets=1000, vector_dim=8,
                       min_count=1).fit(lines)


def test_json_request_and_response_match_the_spec(classifier):
    from sagelocal.serving.invocation import Invoker

    body = json.dumps({"instances": ["the movie was excellent", "i did not like the plot ."],
                       "configuration": {"k": 2}}).encode()
    answer = Invoker(classifier).invoke(body, "application/json", "application/json")
    assert answer.status == 200 and answer.content_type == "application/json"
    response = json.loads(answer.body)
    assert isinstance(response, list) and [list(r) for r in response] == [["label", "prob"]] * 2
    assert [r["label"] for r in response] == [["__label__1", "__label__2"], ["__label__2", "__label__1"]]
    assert all(len(r["prob"]) == 2 and r["prob"][0] > 0.5 for r in response)
    single = json.loads(Invoker(classifier).invoke(json.dumps({"instances": ["fun"]}).encode(),
                                                   "application/json", "application/json").body)
    assert [list(r) for r in single] == [["label", "prob"]] and len(single[0]["label"]) == 1  # k defaults to 1


def test_jsonlines_request_takes_k_per_line(classifier):
    from sagelocal.serving.invocation import Invoker

    body = b'{"source": "the movie was excellent", "k": 2}\n{"source": "did not like"}\n'
    answer = Invoker(classifier).invoke(body, "application/jsonlines", "application/jsonlines")
    lines = [json.loads(line) for line in answer.body.decode().splitlines()]
    assert answer.body.decode().splitlines()[0].startswith('{"prob": ')  # the guide's key order
    assert [len(line["label"]) for line in lines] == [2, 1]
    bad = Invoker(classifier).invoke(json.dumps({"instances": ["x"], "configuration": {"k": 0}}).encode(),
                                     "application/json", "application/json")
    assert bad.status == 400 and "k" in bad.message


def test_save_load_keeps_predictions_and_artifact_files(classifier, tmp_path):
    tarball = classifier.save(tmp_path / "model")
    assert (tmp_path / "model" / "model.bin").is_file()
    loaded = sagelocal.load(tarball)
    texts = ["the movie", "plot", "zzz"]
    assert loaded.predict_records(texts, k=2) == classifier.predict_records(texts, k=2)
