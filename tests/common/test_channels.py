"""Every channel setting reaches every algorithm (issue "one door to data").

For each registered algorithm and each of its training content types, the example data is written as six
objects, and the algorithm is trained from a :class:`sagelocal.io.Channel`:

- ``ShardedByS3Key`` on two hosts: each host reads a disjoint share of the objects, together all of them;
- ``ShuffleConfig``: the objects are read in another order, the same for the same seed;
- Pipe mode (FIFOs fed by :class:`PipeFeeder`), gzip-compressed objects, RecordIO-wrapped Pipe input and a
  ``ManifestFile`` give the same model as File mode over the same objects in the same order;
- an ``AugmentedManifestFile`` where the algorithm's spec lists it (BlazingText).

What an algorithm read is seen where io opens objects (``sagelocal.io._streams.opened``), so a test fails
when an algorithm goes round the channel to the files.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

import sagelocal
from sagelocal.base.registry import get_class
from sagelocal.base.runtime import Runtime
from sagelocal.io import Channel, PipeFeeder, _streams, readers, write_recordio_protobuf
from tests.common.examples import EXAMPLES

OBJECTS = 6
HOSTS = ["algo-1", "algo-2"]


# ------------------------------------------------------------------------------------ data as objects
def _tabular_parts(name):
    X, y = EXAMPLES[name].make_data()
    order = np.random.default_rng(0).permutation(len(X))  # mixed classes in every object
    return [(X[idx], None if y is None else y[idx]) for idx in np.array_split(order, OBJECTS)]


def _csv_bytes(X, y) -> bytes:
    table = X if y is None else np.column_stack([y, X])
    out = io.StringIO()
    np.savetxt(out, table, delimiter=",", fmt="%.9g")
    return out.getvalue().encode()


def _libsvm_bytes(X, y) -> bytes:
    from sklearn.datasets import dump_svmlight_file

    out = io.BytesIO()
    dump_svmlight_file(X, y, out, zero_based=True)
    return out.getvalue()


def _parquet_bytes(X, y) -> bytes:
    import pandas as pd

    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    if y is not None:
        frame.insert(0, "label", y)
    out = io.BytesIO()
    frame.to_parquet(out)
    return out.getvalue()


def _protobuf_bytes(X, y) -> bytes:
    out = io.BytesIO()
    write_recordio_protobuf(out, X, y)
    return out.getvalue()


TABULAR = {"application/x-recordio-protobuf": (_protobuf_bytes, "pbr"), "text/csv": (_csv_bytes, "csv"),
           "text/libsvm": (_libsvm_bytes, "libsvm"), "application/x-parquet": (_parquet_bytes, "parquet")}


def _deepar_objects(content_type):
    # two series per object, so that each host's share of a sharded channel holds DeepAR's 300 observations
    records = EXAMPLES["forecasting-deepar"].make_data()[0] + EXAMPLES["forecasting-deepar"].make_data(seed=1)[0]
    parts = [records[i::OBJECTS] for i in range(OBJECTS)]
    if content_type == "parquet":
        import pandas as pd

        out = []
        for part in parts:
            buffer = io.BytesIO()
            frame = pd.DataFrame([{**r, "target": [float(v) for v in r["target"]]} for r in part])
            frame.to_parquet(buffer)
            out.append(("parquet", buffer.getvalue()))
        return out
    return [("json", "".join(json.dumps(r) + "\n" for r in part).encode()) for part in parts]


def _blazingtext_objects(content_type):
    lines, _ = EXAMPLES["blazingtext"].make_data()
    order = np.random.default_rng(0).permutation(len(lines))
    parts = [[lines[i] for i in idx] for idx in np.array_split(order, OBJECTS)]
    if content_type == "application/jsonlines":
        def record(line):
            label, text = line.split(" ", 1)
            return json.dumps({"source": text, "label": 1 if label.endswith("pos") else 0})
        return [("jsonl", "".join(record(x) + "\n" for x in part).encode()) for part in parts]
    return [("txt", "".join(x + "\n" for x in part).encode()) for part in parts]


def _seq2seq_objects(content_type, folder: Path):
    from sagelocal.algorithms.seq2seq.data import build_vocab, encode_sentences, write_pairs, write_vocab

    sources, targets = EXAMPLES["seq2seq"].make_data()
    vocab = build_vocab(list(sources) + list(targets))
    (folder / "vocab").mkdir(parents=True, exist_ok=True)
    write_vocab(vocab, folder / "vocab" / "vocab.src.json")
    write_vocab(vocab, folder / "vocab" / "vocab.trg.json")
    out = []
    for i in range(OBJECTS):
        buffer = io.BytesIO()
        write_pairs(buffer, encode_sentences(sources[i::OBJECTS], vocab), encode_sentences(targets[i::OBJECTS], vocab))
        out.append(("rec", buffer.getvalue()))
    return out


def objects_for(name, content_type, folder: Path):
    """``[(extension, bytes)]``: the algorithm's example data as six objects of ``content_type``."""
    if name == "forecasting-deepar":
        return _deepar_objects(content_type)
    if name == "blazingtext":
        return _blazingtext_objects(content_type)
    if name == "seq2seq":
        return _seq2seq_objects(content_type, folder)
    write, extension = TABULAR[content_type]
    return [(extension, write(X, y)) for X, y in _tabular_parts(name)]


def write_objects(name, content_type, folder: Path, *, compress=False) -> Path:
    train = folder / "train"
    train.mkdir(parents=True, exist_ok=True)
    for i, (extension, data) in enumerate(objects_for(name, content_type, folder)):
        path = train / f"part-{i:02d}.{extension}"
        if compress:
            data, path = gzip.compress(data), path.with_name(path.name + ".gz")
        path.write_bytes(data)
    return train


# ------------------------------------------------------------------------------------------ training
CASES = [(name, content_type) for name in sagelocal.algorithms()
         for content_type in get_class(name).training_content_types]


def _content_type(name, content_type):
    """As the container names it: CSV without ``label_size`` gets the algorithm's default."""
    if content_type == "text/csv":
        return f"text/csv;label_size={get_class(name).default_label_size}"
    return content_type


def _estimator(name):
    cls = get_class(name)
    hp = dict(EXAMPLES[name].hyperparameters)
    if "feature_dim" in cls.hyperparameters.names:  # Pipe mode cannot peek at the width
        X = EXAMPLES[name].make_data()[0]
        hp["feature_dim"] = int(np.asarray(X).shape[1])
    if name == "xgboost":
        hp.pop("subsample", None)  # row sampling depends on row order; keep the model a function of the data
    return cls(**hp)


def fit(name, folder: Path, channel: Channel):
    est = _estimator(name)
    extra = {}
    if name == "seq2seq":
        extra["vocab"] = folder / "vocab"  # a raw channel: vocab.src.json and vocab.trg.json
    return est.fit(channel, **extra)


def probe(name, est):
    """What the model answers for the example's first rows: equal answers mean the same model."""
    X, _ = EXAMPLES[name].make_data()
    return est.predict_records(X[:5] if name != "forecasting-deepar" else X[:2])


class Opened:
    """Records the objects io opens under a folder, in order."""

    def __init__(self, monkeypatch, folder: Path):
        self.folder, self.paths = str(folder), []
        original = _streams.opened

        def spy(source, **kwargs):
            if isinstance(source, (str, os.PathLike)) and os.fspath(source).startswith(self.folder):
                self.paths.append(Path(source).name)
            return original(source, **kwargs)

        monkeypatch.setattr(_streams, "opened", spy)
        monkeypatch.setattr(readers, "opened", spy)

    def order(self) -> list[str]:
        seen = []
        for path in self.paths:
            if path not in seen:
                seen.append(path)
        return seen

    def clear(self):
        self.paths = []


@pytest.fixture(autouse=True)
def _quiet_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.mark.parametrize("name, content_type", CASES)
def test_sharding_splits_the_objects_between_hosts(name, content_type, tmp_path, monkeypatch):
    train = write_objects(name, content_type, tmp_path)
    spy = Opened(monkeypatch, train)
    shares = []
    for host in HOSTS:
        spy.clear()
        channel = Channel(train, _content_type(name, content_type), distribution="ShardedByS3Key",
                          runtime=Runtime(host=host, hosts=HOSTS))
        fit(name, tmp_path, channel)
        shares.append(set(spy.order()))
    assert shares[0] and shares[1] and not shares[0] & shares[1]
    assert shares[0] | shares[1] == {p.name for p in train.iterdir()}


@pytest.mark.parametrize("name, content_type", CASES)
def test_shuffle_config_changes_the_order_reproducibly(name, content_type, tmp_path, monkeypatch):
    train = write_objects(name, content_type, tmp_path)
    spy = Opened(monkeypatch, train)
    orders = []
    for seed in (None, 3, 3):
        spy.clear()
        fit(name, tmp_path, Channel(train, _content_type(name, content_type), shuffle_seed=seed))
        orders.append(spy.order())
    assert orders[0] == sorted(orders[0])
    assert orders[1] == orders[2] and orders[1] != orders[0] and sorted(orders[1]) == orders[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
@pytest.mark.parametrize("name, content_type", CASES)
def test_pipe_gzip_recordio_wrapper_and_manifest_give_the_file_mode_model(name, content_type, tmp_path):
    ctype = _content_type(name, content_type)
    train = write_objects(name, content_type, tmp_path / "plain")
    expected = probe(name, fit(name, tmp_path / "plain", Channel(train, ctype)))

    zipped = write_objects(name, content_type, tmp_path / "gzip", compress=True)
    assert probe(name, fit(name, tmp_path / "gzip", Channel(zipped, ctype, compression="Gzip"))) == expected

    for wrapper in (None, "RecordIO"):
        if wrapper is None and content_type in ("application/x-parquet", "parquet"):
            continue  # Parquet objects cannot be concatenated into one stream; SageMaker wraps them
        if (name, content_type) == ("xgboost", "text/libsvm"):
            continue  # the XGBoost container refuses Pipe mode for libsvm (tested in test_xgboost)
        pipe = Channel(train, ctype, input_mode="Pipe", record_wrapper=wrapper)
        pipe.timeout = 30
        with PipeFeeder(pipe):
            assert probe(name, fit(name, tmp_path / "plain", pipe)) == expected, f"Pipe, wrapper {wrapper}"

    s3_root = tmp_path / "s3"
    (s3_root / "bucket").mkdir(parents=True)
    (s3_root / "bucket" / "data").symlink_to(train)
    manifest = tmp_path / "manifest"
    manifest.mkdir()
    entries = [{"prefix": "s3://bucket/data/"}] + sorted(p.name for p in train.iterdir())
    (manifest / "train.manifest").write_text(json.dumps(entries))
    channel = Channel(manifest, ctype, data_type="ManifestFile", s3_root=s3_root)
    assert probe(name, fit(name, tmp_path / "plain", channel)) == expected


def test_augmented_manifest_reaches_blazingtext(tmp_path):
    lines, _ = EXAMPLES["blazingtext"].make_data()
    s3 = tmp_path / "s3" / "bucket"
    s3.mkdir(parents=True)
    with open(tmp_path / "train.manifest", "w") as out:
        for line in lines:
            label, text = line.split(" ", 1)
            out.write(json.dumps({"source": text, "label": 1 if label.endswith("pos") else 0}) + "\n")
    channel = Channel(tmp_path / "train.manifest", "application/jsonlines", data_type="AugmentedManifestFile",
                      attribute_names=["source", "label"], s3_root=tmp_path / "s3")
    est = fit("blazingtext", tmp_path, channel)
    plain = [("__label__1 " if line.startswith("__label__pos") else "__label__0 ") + line.split(" ", 1)[1]
             for line in lines]
    expected = _estimator("blazingtext").fit(plain)
    assert probe("blazingtext", est) == probe("blazingtext", expected)
