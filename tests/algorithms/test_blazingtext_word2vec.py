"""BlazingText's Word2Vec modes: quality against gensim, the vector files, evaluation, serving.

The corpus is gensim's bundled English Wikipedia excerpt (452,944 tokens as gensim's WikiCorpus reads
it); tests use its first 24 articles (about 110k tokens) and 3 epochs, so quality bounds are loose and
the full comparison lives in benchmarks/blazingtext.py.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import sagelocal
from sagelocal import BlazingText
from sagelocal import MissingDependencyError as MissingBackendError

gensim_models = pytest.importorskip("gensim.models")
gensim_utils = pytest.importorskip("gensim.test.utils")
fasttext = pytest.importorskip("fasttext")

WIKI = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
SETTINGS = dict(vector_dim=50, window_size=5, min_count=5, negative_samples=5, sampling_threshold=1e-4,
                learning_rate=0.05, epochs=3)


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    from gensim.corpora import WikiCorpus

    articles = WikiCorpus(gensim_utils.datapath(WIKI), dictionary={}, processes=1).get_texts()
    path = tmp_path_factory.mktemp("wiki") / "wiki.txt"
    with open(path, "w", encoding="utf-8") as out:
        for number, tokens in enumerate(articles):
            if number == 24:
                break
            out.write(" ".join(tokens) + "\n")
    return path


def _keyed(words, vectors):
    kv = gensim_models.KeyedVectors(vectors.shape[1])
    kv.add_vectors(list(words), vectors)
    return kv


def _scores(kv):
    rho = kv.evaluate_word_pairs(gensim_utils.datapath("wordsim353.tsv"))[1].statistic
    analogies = kv.evaluate_word_analogies(gensim_utils.datapath("questions-words.txt"))[0]
    return 100 * rho, 100 * analogies


@pytest.mark.parametrize("mode", ["cbow", "skipgram"])
def test_quality_matches_gensim_with_the_same_settings(wiki, mode):
    ours = BlazingText(mode=mode, threads=1, random_state=3, **SETTINGS).fit(wiki)
    words = [w.decode() for w in ours.model_.words]
    reference = gensim_models.Word2Vec(
        corpus_file=str(wiki), vector_size=50, window=5, min_count=5, negative=5, sample=1e-4, alpha=0.05,
        min_alpha=0.05 * 1e-4, epochs=3, sg=int(mode == "skipgram"), hs=0, workers=1, seed=3)
    ours_rho, ours_analogy = _scores(_keyed(words, ours.word_vectors_))
    ref_rho, ref_analogy = _scores(reference.wv)
    assert abs(ours_rho - ref_rho) <= 2 and ours_analogy >= ref_analogy - 2
    assert ours.metrics_["train:mean_rho"] == pytest.approx(ours_rho / 100, abs=1e-9)  # gensim's scorer agrees


def test_subword_vectors_files_open_in_gensim_and_fasttext(wiki, tmp_path):
    est = BlazingText(mode="skipgram", subwords=True, min_char=3, max_char=5, buckets=20000, threads=1,
                      **{**SETTINGS, "epochs": 1}).fit(wiki)
    est.save(tmp_path / "model")
    folder = tmp_path / "model"
    words = ["philosophy", "anarchism", "philosophically", "zzqxword"]  # two known, one unseen form, one junk
    ours = est.word_vectors(words)
    assert np.abs(ours).sum(axis=1).min() > 0  # out-of-vocabulary words get vectors from their n-grams
    native = fasttext.load_model(str(folder / "vectors.bin"))
    np.testing.assert_allclose(np.array([native.get_word_vector(w) for w in words]), ours, rtol=1e-4, atol=1e-6)
    loaded = gensim_models.fasttext.load_facebook_model(str(folder / "vectors.bin"))
    np.testing.assert_allclose(np.array([loaded.wv[w] for w in words]), ours, rtol=1e-4, atol=1e-6)
    text = gensim_models.KeyedVectors.load_word2vec_format(str(folder / "vectors.txt"), binary=False)
    assert text.index_to_key[:5] == [w.decode() for w in est.model_.words[:5]]  # most frequent first
    np.testing.assert_allclose(text["philosophy"], ours[0], rtol=1e-4, atol=1e-6)
    evaluation = json.loads((folder / "eval.json").read_text())
    assert evaluation["mean_rho"] == est.metrics_["train:mean_rho"]
    assert evaluation["EN-WS-353-ALL.txt"]["total_pairs"] == 353


def test_word_vectors_without_subwords_are_zero_for_unknown_words_and_served(wiki, tmp_path):
    from sagelocal.serving.invocation import Invoker

    est = BlazingText(mode="cbow", threads=1, evaluation=False, **{**SETTINGS, "epochs": 1}).fit(wiki)
    assert "train:mean_rho" not in est.metrics_
    body = json.dumps({"instances": ["philosophy", "zzqxword"]}).encode()
    answer = Invoker(est).invoke(body, "application/json", "application/json")
    response = json.loads(answer.body)
    assert [list(r) for r in response] == [["word", "vector"]] * 2
    assert [r["word"] for r in response] == ["philosophy", "zzqxword"]
    assert len(response[0]["vector"]) == 50 and response[1]["vector"] == [0.0] * 50
    np.testing.assert_allclose(response[0]["vector"], est.predict(["philosophy"])[0])
    loaded = sagelocal.load(est.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict(["philosophy", "zzqxword"]), est.predict(["philosophy", "zzqxword"]))
    native = fasttext.load_model(str(tmp_path / "m" / "vectors.bin"))
    np.testing.assert_array_equal(native.get_word_vector("philosophy"), est.predict(["philosophy"])[0])


def test_batch_skipgram_learns_which_words_share_contexts(tmp_path):
    rng = np.random.default_rng(0)
    topics = [[f"a{i}" for i in range(8)], [f"b{i}" for i in range(8)]]
    lines = [" ".join(rng.choice(topics[i % 2], 12)) for i in range(1500)]
    est = BlazingText(mode="batch_skipgram", vector_dim=16, window_size=3, epochs=3, min_count=1,
                      sampling_threshold=1.0, device="cpu").fit(lines)
    vectors = est.predict(topics[0] + topics[1])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    within = (similarity[:8, :8].sum() - 8 + similarity[8:, 8:].sum() - 8) / (2 * 56)
    across = similarity[:8, 8:].mean()
    assert within > 0.8 and across < within - 0.4
    est.save(tmp_path / "bsg")
    assert gensim_models.fasttext.load_facebook_model(str(tmp_path / "bsg" / "vectors.bin")).wv["a1"].shape == (16,)


def test_training_container_writes_sagemakers_word2vec_artifacts(tmp_path, wiki):
    from sagelocal.container import train

    (tmp_path / "input" / "config").mkdir(parents=True)
    (tmp_path / "input" / "data" / "train").mkdir(parents=True)
    (tmp_path / "input" / "data" / "train" / "corpus.txt").write_bytes(wiki.read_bytes())
    (tmp_path / "input" / "config" / "hyperparameters.json").write_text(json.dumps(
        {"mode": "cbow", "epochs": "1", "vector_dim": "20", "evaluation": "True"}))
    (tmp_path / "input" / "config" / "inputdataconfig.json").write_text(json.dumps(
        {"train": {"ContentType": "text/plain", "TrainingInputMode": "File"}}))
    assert train(tmp_path, "blazingtext") == 0, (tmp_path / "output" / "failure").read_text()
    model = tmp_path / "model"
    assert {"vectors.txt", "vectors.bin", "eval.json"} <= {p.name for p in model.iterdir()}
    assert (model / "vectors.txt").read_text().split("\n", 1)[0].split()[1] == "20"


def test_missing_gensim_names_the_extra(monkeypatch, wiki):
    monkeypatch.setitem(sys.modules, "gensim.models", None)
    with pytest.raises(MissingBackendError, match=r"sagelocal\[blazingtext\]"):
        BlazingText(mode="cbow").fit(wiki)


def test_gensim_reads_this_hosts_share_of_the_channel_and_a_single_plain_file_in_place(tmp_path):
    """cbow/skipgram hand gensim a file: the channel's only object for this host (after sharding), else a copy
    of the objects in the channel's order (shuffle), gzip decompressed."""
    import gzip

    from sagelocal.algorithms.blazingtext.data import Corpus
    from sagelocal.base.runtime import Runtime
    from sagelocal.io import Channel

    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "a.txt").write_text("alpha one\n")
    (tmp_path / "two" / "b.txt").write_text("beta two\n")
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "a.txt").write_bytes(gzip.compress(b"alpha one\n"))
    hosts = ["algo-1", "algo-2"]

    def corpus_file(channel):
        path = Corpus(channel, "train").corpus_file(str(tmp_path))
        return path, open(path).read()

    shares = [corpus_file(Channel(tmp_path / "two", "text/plain", distribution="ShardedByS3Key",
                                  runtime=Runtime(host=host, hosts=hosts))) for host in hosts]
    assert shares == [(str(tmp_path / "two" / "a.txt"), "alpha one\n"), (str(tmp_path / "two" / "b.txt"), "beta two\n")]
    orders = {corpus_file(Channel(tmp_path / "two", "text/plain", shuffle_seed=seed))[1] for seed in range(4)}
    assert orders == {"alpha one\nbeta two\n", "beta two\nalpha one\n"}
    path, text = corpus_file(Channel(tmp_path / "gz", "text/plain"))
    assert path != str(tmp_path / "gz" / "a.txt") and text == "alpha one\n"
