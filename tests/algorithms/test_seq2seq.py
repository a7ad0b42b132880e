"""Seq2Seq: Sockeye's digit copy/sort system tasks, beam search, the data tool, BLEU and the formats.

The acceptance numbers (dev perplexity <= 1.03, test BLEU >= 0.95 on a 0-1 scale) are Sockeye's own
system-test bounds for these tasks; BLEU is checked with sacrebleu, the SageMaker SDK's protobuf
classes read and write the RecordIO records, and hand computations give the other expected values.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import math
import random

import numpy as np
import pytest
import torch

import sagelocal
from sagelocal import ChannelError, DataFormatError, HyperparameterError
from sagelocal.algorithms.seq2seq import Seq2Seq, build_vocab, corpus_bleu, prepare, read_pairs, read_vocab
from sagelocal.algorithms.seq2seq.beam import beam_search, length_penalty
from sagelocal.algorithms.seq2seq.data import define_parallel_buckets, encode_pair
from sagelocal.algorithms.seq2seq.network import Seq2SeqNet, initialize
from sagelocal.algorithms.seq2seq.trainer import LearningRate
from sagelocal.io import Channel

sacrebleu = pytest.importorskip("sacrebleu")

DIGITS = "0123456789"
# Sockeye's small system-test model (64 hidden, 32 embedding, mlp attention of 32), with a larger
# batch and learning rate so that a few hundred updates fit the test budget on a shared CPU.
SMALL = {"rnn_num_hidden": 64, "num_embed_source": 32, "num_embed_target": 32, "rnn_attention_num_hidden": 32,
         "batch_size": 64, "learning_rate": 0.003, "max_seq_len_source": 10, "max_seq_len_target": 10,
         "num_threads": 1}


def digits(count, seed, *, sort=False, max_length=9, empty=0):
    """Sockeye's ``generate_digits_file``: random digit strings of length 1-9 (plus empty lines)."""
    rng = random.Random(seed)
    lines = [[rng.choice(DIGITS) for _ in range(rng.randint(1, max_length))] for _ in range(count - empty)]
    lines += [[] for _ in range(empty)]
    rng.shuffle(lines)
    return [" ".join(d) for d in lines], [" ".join(sorted(d) if sort else d) for d in lines]


def bleu(hypotheses, references):
    """sacrebleu's raw corpus BLEU (no tokenisation, floor smoothing 0.01, as Sockeye uses), 0-1 scale."""
    return sacrebleu.raw_corpus_bleu(list(hypotheses), [list(references)], 0.01).score / 100


# ------------------------------------------------------------------------- acceptance: copy
@pytest.fixture(scope="module")
def copy_task(tmp_path_factory):
    """The copy task trained through the three channels written by the data tool."""
    root = tmp_path_factory.mktemp("copy")
    train, dev = digits(5000, 13), digits(100, 17)
    report = prepare(root, *train, *dev)
    est = Seq2Seq(**SMALL, checkpoint_frequency_num_batches=100, max_num_batches=400)
    est.fit(Channel(root / "train", name="train"), validation=Channel(root / "validation", name="validation"),
            vocab=Channel(root / "vocab", name="vocab"))
    return est, report


@pytest.mark.timeout(600)
def test_copy_reaches_sockeyes_bounds(copy_task):
    est, _ = copy_task
    assert est.metrics_["validation:perplexity"] <= 1.03
    sources, references = digits(110, 42, empty=10)  # Sockeye's test set: 10 of 110 lines empty
    hypotheses = est.predict(sources)
    assert bleu(hypotheses, references) >= 0.95
    assert all(h == "" for s, h in zip(sources, hypotheses) if not s)  # empty in, empty out


def test_copy_attends_to_the_aligned_source_word(copy_task):
    est, _ = copy_task
    [record] = est.predict_records([{"data": "3 1 4 1 5 9 2", "configuration": {"attention_matrix": "true"}}])
    matrix = np.asarray(record["matrix"])
    assert record["target"] == "3 1 4 1 5 9 2"
    assert matrix.shape == (7, 7)  # one row per output token, one column per source token
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-5)
    assert (matrix.argmax(axis=1) == np.arange(7)).all()


# ------------------------------------------------------------------------- acceptance: sort
@pytest.fixture(scope="module")
def sort_task():
    train, dev = digits(5000, 13, sort=True), digits(100, 17, sort=True)
    return Seq2Seq(**SMALL, checkpoint_frequency_num_batches=200, max_num_batches=800).fit(
        *train, validation=dev)


@pytest.mark.timeout(600)
def test_sort_reaches_sockeyes_bounds_and_beam_is_no_worse_than_greedy(sort_task):
    assert sort_task.metrics_["validation:perplexity"] <= 1.03
    sources, references = digits(110, 42, sort=True, empty=10)
    beam = sort_task.predict(sources)
    assert bleu(beam, references) >= 0.95
    greedy = sort_task.translate(sources, beam_size=1)
    inverse = sort_task._inverse_target()
    greedy_text = [" ".join(inverse[i] for i in t) for t in greedy.tokens]
    assert bleu(beam, references) >= bleu(greedy_text, references)


def test_beam_beats_greedy_on_an_undertrained_model():
    train, test = digits(2000, 13, sort=True), digits(200, 42, sort=True)
    est = Seq2Seq(**SMALL, max_num_batches=60, checkpoint_frequency_num_batches=60).fit(*train)
    inverse = est._inverse_target()
    found = {k: est.translate(test[0], beam_size=k) for k in (1, 5)}
    text = {k: [" ".join(inverse[i] for i in t) for t in h.tokens] for k, h in found.items()}
    assert bleu(text[5], test[1]) >= bleu(text[1], test[1])
    assert found[5].scores.mean() < found[1].scores.mean()  # better (lower) length-normalised cost


# ------------------------------------------------------------------------------ beam search
def _exhaustive_best(net, source, max_len, alpha):
    """The best target by scoring every word sequence up to ``max_len`` plus </s> (teacher-forced)."""
    words = [1] + list(range(4, net.decoder.output.out_features))  # <unk> and the real words
    best = (math.inf, None)
    with torch.no_grad():
        for n in range(max_len + 1):
            seqs = torch.tensor(list(itertools.product(words, repeat=n)), dtype=torch.long).reshape(len(words) ** n, n)
            trg_in = torch.cat([torch.full((len(seqs), 1), 2), seqs], dim=1)
            labels = torch.cat([seqs, torch.full((len(seqs), 1), 3)], dim=1)
            src = torch.tensor([source] * len(seqs))
            logp = torch.log_softmax(net(src, torch.full((len(seqs),), len(source)), trg_in), dim=-1)
            cost = -logp.gather(2, labels[..., None]).squeeze(-1).sum(1) / length_penalty(torch.tensor(n + 1), alpha, 0)
            i = int(cost.argmin())
            best = min(best, (float(cost[i]), seqs[i].tolist()), key=lambda b: b[0])
    return best


@pytest.mark.parametrize("decoder_type", ["rnn", "cnn"])
def test_wide_beam_search_finds_the_exhaustive_optimum(decoder_type):
    hp = Seq2Seq.hyperparameters.parse({"rnn_num_hidden": 8, "num_embed_source": 6, "num_embed_target": 6,
                                        "cnn_num_hidden": 8, "decoder_type": decoder_type, "max_seq_len_target": 3})
    torch.manual_seed(0)
    net = Seq2SeqNet(hp, 7, 7).eval()
    initialize(net, "uniform", 1.5, "in", torch.Generator().manual_seed(3))  # peaky, so lengths vary
    for source in ([4, 5, 6], [6], [5, 4]):
        cost, tokens = _exhaustive_best(net, source, 3, alpha=1.0)
        found = beam_search(net, torch.tensor([source]), torch.tensor([len(source)]), beam_size=64, max_len=3,
                            bos=2, alpha=1.0)
        assert found.tokens[0].tolist() == tokens
        assert found.scores[0] == pytest.approx(cost, rel=1e-5)


def test_length_penalty_is_sockeyes():
    assert float(length_penalty(torch.tensor(4), 1.0, 0.0)) == pytest.approx(4.0)
    assert float(length_penalty(torch.tensor(3), 0.5, 5.0)) == pytest.approx(math.sqrt(8 / 6))
    assert float(length_penalty(torch.tensor(7), 0.0, 0.0)) == 1.0


# ------------------------------------------------------------------------------ data tool
def test_vocab_follows_the_sample_script_rules():
    vocab = build_vocab(["x y y z", "z z w w w <unk>"])
    # z and w 3 times (equal counts: reverse alphabetical), y twice, x once; special symbols not counted
    assert vocab == {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, "z": 4, "w": 5, "y": 6, "x": 7}
    assert build_vocab(["x y y z", "z z w w w"], num_words=2) == {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3,
                                                                  "z": 4, "w": 5}
    assert "x" not in build_vocab(["x y y z", "z z w w w"], min_count=2)


def test_tool_files_round_trip_through_the_sdks_protobuf(tmp_path):
    from sagemaker.amazon.record_pb2 import Record

    from sagelocal.io.recordio import iter_recordio

    source = ["a b c", "b b", "", "c a q"]
    target = ["x y", "y", "z", ""]
    (tmp_path / "src.txt").write_text("\n".join(source) + "\n")
    report = prepare(tmp_path / "out", tmp_path / "src.txt", target, source[:2], target[:2])
    assert report["records"] == {"train": 2, "validation": 2}  # pairs with an empty side are skipped
    vocab_src, vocab_trg = read_vocab(report["vocab_source"]), read_vocab(report["vocab_target"])
    assert vocab_src == {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, "b": 4, "c": 5, "a": 6}
    with open(report["train"], "rb") as stream:
        parsed = []
        for payload in iter_recordio(stream):
            record = Record()
            record.ParseFromString(payload)
            parsed.append((list(record.features["source"].int32_tensor.values),
                           list(record.features["target"].int32_tensor.values)))
    assert parsed == [([6, 4, 5], [vocab_trg["x"], vocab_trg["y"]]), ([4, 4], [vocab_trg["y"]])]
    # and records written by the SDK's own classes read back
    record = Record()
    record.features["source"].int32_tensor.values.extend([7, 300, 2**20])
    record.features["target"].int32_tensor.values.extend([5])
    payload = record.SerializeToString()
    framed = b"\x0a\x23\xd7\xce" + len(payload).to_bytes(4, "little") + payload + b"\0" * (-len(payload) % 4)
    sources, targets = read_pairs(io.BytesIO(framed + encode_pair([9], [8, 7])))
    assert [s.tolist() for s in sources] == [[7, 300, 2**20], [9]]
    assert [t.tolist() for t in targets] == [[5], [8, 7]]


def test_command_line_tool_takes_the_sample_scripts_options(tmp_path, capsys):
    from sagelocal.algorithms.seq2seq.data import main

    (tmp_path / "s.txt").write_text("a b\nb c\n")
    (tmp_path / "t.txt").write_text("x\ny y\n")
    assert main(["-ts", str(tmp_path / "s.txt"), "-tt", str(tmp_path / "t.txt"), "-o", str(tmp_path / "out"),
                 "--single-vocab"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == {"train": 2}
    shared = read_vocab(tmp_path / "out" / "vocab" / "vocab.src.json")
    assert shared == read_vocab(tmp_path / "out" / "vocab" / "vocab.trg.json")
    assert set(shared) == {"<pad>", "<unk>", "<s>", "</s>", "a", "b", "c", "x", "y"}


def test_buckets_follow_sockeyes_definition():
    assert define_parallel_buckets(10, 10, 3, 1.0) == [(3, 3), (6, 6), (9, 9), (10, 10)]
    # target twice as long: the source steps by round(10 / 2) = 5, stays at its maximum once reached
    assert define_parallel_buckets(20, 40, 10, 2.0) == [(5, 10), (10, 20), (15, 30), (20, 40)]
    assert define_parallel_buckets(12, 30, 10, 2.0) == [(5, 10), (10, 20), (12, 30)]
    assert define_parallel_buckets(40, 20, 10, 0.5) == [(10, 5), (20, 10), (30, 15), (40, 20)]


def test_bleu_matches_sacrebleu():
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 12)
        refs = [" ".join(rng.choice("abcd") for _ in range(rng.randint(0, 8))) for _ in range(n)]
        hyps = [" ".join(rng.choice("abcd") for _ in range(rng.randint(0, 8))) for _ in range(n)]
        assert corpus_bleu(hyps, refs) == pytest.approx(bleu(hyps, refs), abs=1e-12)


# ------------------------------------------------------------------ hyperparameters at work
def test_mxnet_xavier_and_uniform_initializers():
    linear = torch.nn.Linear(50, 200)
    for factor, fan in (("in", 50), ("out", 200), ("avg", 125)):
        initialize(linear, "xavier", 2.34, factor, torch.Generator().manual_seed(0))
        bound = math.sqrt(2.34 / fan)
        largest = float(linear.weight.detach().abs().max())
        assert 0.98 * bound < largest <= bound
        assert float(linear.bias.detach().abs().max()) == 0.0
    conv = torch.nn.Conv1d(8, 16, 3)  # fans count the kernel width: fan-in 8 * 3
    initialize(conv, "xavier", 3.0, "in", torch.Generator().manual_seed(0))
    assert float(conv.weight.abs().max()) == pytest.approx(math.sqrt(3.0 / 24), rel=0.05)
    initialize(linear, "uniform", 0.1, "in", torch.Generator().manual_seed(0))
    assert 0.098 < float(linear.weight.abs().max()) <= 0.1


def test_learning_rate_schedules_count_checkpoints():
    hp = Seq2Seq.hyperparameters.parse({"learning_rate": 0.1, "checkpoint_frequency_num_batches": 10,
                                        "fixed_rate_lr_half_life": 5})
    for kind in ("fixed_rate_inv_t", "fixed_rate_inv_sqrt_t"):
        schedule = LearningRate({**hp, "lr_scheduler_type": kind})
        assert schedule.after_update(50) == pytest.approx(0.05)  # halved after 5 checkpoints of 10 updates
    plateau = LearningRate({**hp, "plateau_reduce_lr_factor": 0.5, "plateau_reduce_lr_threshold": 2})
    rates = [plateau.after_checkpoint(improved) for improved in (False, True, False, False, False, False)]
    assert rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025])


def test_search_space_uses_the_spec_ranges():
    space = Seq2Seq.search_space()
    assert space["batch_size"] == {"type": "Categorical", "values": [16, 32, 64, 128, 256, 512, 1024, 2048]}
    assert space["rnn_num_hidden"]["values"] == [128, 256, 512, 1024, 2048]
    assert (space["weight_init_scale"]["min"], space["weight_init_scale"]["max"]) == (2.0, 3.0)  # xavier's
    assert (space["learning_rate"]["min"], space["learning_rate"]["max"]) == (0.00005, 0.2)
    assert "beam_size" not in space


CONFIGURATIONS = [
    {"rnn_attention_type": "dot"}, {"rnn_attention_type": "bilinear"},
    {"rnn_cell_type": "gru", "rnn_decoder_state_init": "avg"},
    {"num_layers_encoder": 2, "num_layers_decoder": 2, "rnn_residual_connections": True,
     "rnn_decoder_state_init": "zero", "rnn_decoder_hidden_dropout": 0.1},
    {"num_layers_decoder": 2, "rnn_attention_in_upper_layers": False, "embed_dropout_source": 0.1},
    {"encoder_type": "cnn", "cnn_num_hidden": 32, "num_layers_encoder": 2},
    {"encoder_type": "cnn", "decoder_type": "cnn", "cnn_num_hidden": 32, "cnn_activation_type": "relu"},
    {"optimizer_type": "sgd", "momentum": 0.9, "learning_rate": 0.5, "lr_scheduler_type": "fixed_rate_inv_t"},
    {"optimizer_type": "rmsprop", "learning_rate": 0.005, "weight_init_type": "uniform", "weight_init_scale": 0.1,
     "weight_decay": 1e-4},
]


@pytest.mark.parametrize("config", CONFIGURATIONS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_every_architecture_and_optimizer_learns(config):
    train, dev = digits(600, 1, max_length=5), digits(50, 2, max_length=5)
    est = Seq2Seq(**{**SMALL, "max_seq_len_source": 6, "max_seq_len_target": 6, "batch_size": 32, **config},
                  max_num_batches=80, checkpoint_frequency_num_batches=40).fit(*train, validation=dev)
    # untrained, perplexity is about the vocabulary size (14); these learn most of the copy in 80 updates
    assert est.metrics_["validation:perplexity"] < 4.0
    assert est.training_progress_["updates"] == 80


def test_fixed_attention_is_the_last_source_state():
    train, dev = digits(300, 1, max_length=4), digits(20, 2, max_length=4)
    est = Seq2Seq(**SMALL, rnn_attention_type="fixed", max_num_batches=30).fit(*train, validation=dev)
    [record] = est.predict_records(["1 2 3"], attention_matrix=True)
    matrix = np.asarray(record["matrix"])
    assert matrix.shape == (len(record["target"].split()), 3) and matrix.shape[0] > 0
    assert (matrix[:, -1] == 1.0).all() and (matrix[:, :-1] == 0.0).all()


def test_stopping_rules_and_checkpoint_frequency(caplog):
    train, dev = digits(640, 1, max_length=4), digits(20, 2, max_length=4)
    common = {**SMALL, "bucketing_enabled": False, "batch_size": 64}  # 10 batches per epoch
    with caplog.at_level(logging.INFO, logger="sagelocal"):
        est = Seq2Seq(**common, max_num_epochs=2, checkpoint_frequency_num_batches=3).fit(*train, validation=dev)
    assert est.training_progress_ == {**est.training_progress_, "updates": 20, "epochs": 2, "checkpoints": 7}
    lines = [r.getMessage() for r in caplog.records if "validation perplexity" in r.getMessage()]
    assert [line.split("batch=")[1].split(" ")[0] for line in lines[:7]] == ["3", "6", "9", "12", "15", "18", "20"]
    # a metric that can only get worse stops after checkpoint_threshold checkpoints without improvement
    est = Seq2Seq(**{**common, "learning_rate": 0.0}, checkpoint_frequency_num_batches=2, checkpoint_threshold=2,
                  min_num_epochs=1).fit(*train, validation=dev)
    # stalled from checkpoint 3 (update 6) on, but min_num_epochs=1 holds it until the first checkpoint of
    # epoch 1 (update 12)
    assert est.training_progress_ == {"updates": 12, "epochs": 1, "checkpoints": 6, "best_checkpoint": 1}


def test_best_checkpoint_is_kept_and_bleu_is_reported():
    train, dev = digits(640, 1, max_length=4), digits(30, 2, max_length=4)
    est = Seq2Seq(**SMALL, optimized_metric="bleu", bleu_sample_size=-1, checkpoint_frequency_num_batches=20,
                  max_num_batches=60).fit(*train, validation=dev)
    assert set(est.metrics_) >= {"validation:bleu", "validation:perplexity", "validation:accuracy"}
    assert est.metrics_["validation:bleu"] == pytest.approx(bleu(est.predict(dev[0]), dev[1]), abs=1e-9)


def test_an_interrupted_job_resumes_to_the_uninterrupted_model(tmp_path, monkeypatch):
    from sagelocal.algorithms.seq2seq.trainer import Trainer
    from sagelocal.base.runtime import Runtime

    train, dev = digits(320, 1, max_length=4), digits(20, 2, max_length=4)
    hp = {**SMALL, "max_num_batches": 30, "checkpoint_frequency_num_batches": 10}
    reference = Seq2Seq(**hp).fit(*train, validation=dev)
    update = Trainer.train_batch

    def reclaimed(self, batch):  # the job dies between the checkpoints at updates 20 and 30
        if self.progress.updates == 25:
            raise RuntimeError("spot instance reclaimed")
        update(self, batch)

    monkeypatch.setattr(Trainer, "train_batch", reclaimed)
    crashed = Seq2Seq(**hp)
    crashed.runtime = Runtime(checkpoint_dir=str(tmp_path))
    with pytest.raises(RuntimeError, match="reclaimed"):
        crashed.fit(*train, validation=dev)
    monkeypatch.undo()
    resumed = Seq2Seq(**hp)
    resumed.runtime = Runtime(checkpoint_dir=str(tmp_path))
    resumed.fit(*train, validation=dev)
    assert resumed.training_progress_ == reference.training_progress_
    assert resumed.metrics_ == reference.metrics_
    for (name, a), b in zip(reference.network_.state_dict().items(), resumed.network_.state_dict().values()):
        assert torch.equal(a, b), name


# -------------------------------------------------------------------------- formats & serving
def test_json_jsonlines_and_recordio_requests_and_responses(copy_task):
    from sagemaker.amazon.record_pb2 import Record

    from sagelocal.io.recordio import iter_recordio
    from sagelocal.serving.invocation import Invoker

    est, report = copy_task
    invoker = Invoker(est)
    body = {"instances": [{"data": "5 6 7", "configuration": {"attention_matrix": "true"}}, {"data": "8 8"}]}
    answer = invoker.invoke(json.dumps(body).encode(), "application/json", "application/json")
    doc = json.loads(answer.body)
    assert answer.status == 200 and set(doc) == {"predictions"}
    assert doc["predictions"][0]["target"] == "5 6 7" and np.shape(doc["predictions"][0]["matrix"]) == (3, 3)
    assert doc["predictions"][1] == {"target": "8 8"}
    lines = b'{"source": "1 2"}\n{"source": "9 0 9"}\n'
    answer = invoker.invoke(lines, "application/jsonlines", "application/jsonlines")
    assert [json.loads(line) for line in answer.body.splitlines()] == [{"target": "1 2"}, {"target": "9 0 9"}]
    vocab = read_vocab(report["vocab_source"])
    ids = [[vocab[d] for d in "4 2 4".split()], [vocab["7"]]]
    request = b"".join(encode_pair(i) for i in ids)  # empty target, as a client sends
    answer = invoker.invoke(request, "application/x-recordio-protobuf", "application/x-recordio-protobuf")
    targets = []
    for payload in iter_recordio(io.BytesIO(answer.body)):
        record = Record()
        record.ParseFromString(payload)
        targets.append(list(record.features["target"].int32_tensor.values))
    trg = read_vocab(report["vocab_target"])
    assert targets == [[trg[d] for d in "4 2 4".split()], [trg["7"]]]
    mixed = invoker.invoke(json.dumps(body).encode(), "application/json", "application/x-recordio-protobuf")
    assert mixed.status == 406


def test_batch_transform_over_json_lines(copy_task, tmp_path):
    from sagelocal.serving.transform import transform

    est, _ = copy_task
    est.save(tmp_path / "model")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part.jsonl").write_text('{"source": "2 7"}\n{"source": "6 6 1"}\n{"source": "4"}\n')
    result = transform(tmp_path / "model" / "model.tar.gz", tmp_path / "in", tmp_path / "out",
                       content_type="application/jsonlines", accept="application/jsonlines", split_type="Line",
                       assemble_with="Line")
    assert result.ok
    lines = (tmp_path / "out" / "part.jsonl.out").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"target": "2 7"}, {"target": "6 6 1"}, {"target": "4"}]


def test_saved_model_carries_its_vocabularies(copy_task, tmp_path):
    est, _ = copy_task
    tarball = est.save(tmp_path / "model")
    loaded = sagelocal.load(tarball)
    sentences = ["1 2 3", "9 9 8 7 6", "0"]
    assert list(loaded.predict(sentences)) == list(est.predict(sentences))
    assert loaded.predict_records([{"data": "4 5"}]) == [{"target": "4 5"}]


def test_container_trains_from_the_three_channels(tmp_path):
    from sagelocal.container import train

    train_text, dev_text = digits(300, 1, max_length=4), digits(20, 2, max_length=4)
    data = tmp_path / "input" / "data"
    prepare(data, *train_text, *dev_text)
    (tmp_path / "input" / "config").mkdir(parents=True)
    hp = {k: str(v) for k, v in {**SMALL, "max_num_batches": 6, "checkpoint_frequency_num_batches": 3}.items()
          if k != "num_threads"}
    (tmp_path / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hp))
    assert train(tmp_path, algorithm="seq2seq") == 0, (tmp_path / "output" / "failure").read_text()
    assert (tmp_path / "checkpoints" / "seq2seq-checkpoint.pt").exists()
    model = sagelocal.load(tmp_path / "model" / "model.tar.gz")
    assert model.predict_records(["1 2"])[0].keys() == {"target"}
    # a restarted job finds the checkpoint and resumes instead of starting over
    assert train(tmp_path, algorithm="seq2seq") == 0
    again = sagelocal.load(tmp_path / "model" / "model.tar.gz")
    assert list(again.predict(["1 2", "3"])) == list(model.predict(["1 2", "3"]))


# -------------------------------------------------------------------------------- bad input
def test_bad_input_is_named(tmp_path):
    train = digits(50, 1, max_length=3)
    with pytest.raises(HyperparameterError, match="rnn_num_hidden"):
        Seq2Seq(rnn_num_hidden=63).fit(*train)
    with pytest.raises(HyperparameterError, match="momentum"):
        Seq2Seq(momentum=0.9).fit(*train)
    with pytest.raises(HyperparameterError, match="momentum"):  # required with sgd
        Seq2Seq.from_sagemaker({"optimizer_type": "sgd"})
    bad_vocab = {"<unk>": 0, "<pad>": 1, "<s>": 2, "</s>": 3, "1": 4}
    with pytest.raises(DataFormatError, match="special symbols"):
        Seq2Seq(**SMALL).fit([[4]], [[4]], vocab=(bad_vocab, bad_vocab))
    good = build_vocab(["1 2"])
    with pytest.raises(DataFormatError, match="record 2"):
        Seq2Seq(**SMALL).fit([[4], [4, 99]], [[4], [5]], vocab=(good, good))
    prepare(tmp_path, *train)
    with pytest.raises(ChannelError, match="vocab"):
        Seq2Seq(**SMALL).fit(Channel(tmp_path / "train"))
    unfed = Channel(tmp_path / "train", input_mode="Pipe")  # Pipe mode is read (a local extension) when fed
    unfed.timeout = 0.2
    with pytest.raises(ChannelError, match="train_0.*did not appear"):
        Seq2Seq(**SMALL).fit(unfed, vocab=tmp_path / "vocab")
    fitted = Seq2Seq(**SMALL, max_num_batches=1).fit(*train)
    with pytest.raises(DataFormatError, match="attention_matrix"):
        fitted.predict_records([{"data": "1", "configuration": {"attention_matrix": "maybe"}}])
