"""BlazingText: SageMaker's Word2Vec and fastText-style text classifier (``blazingtext`` image).

One estimator, two model families chosen by ``mode``:

- ``cbow`` / ``skipgram``: Word2Vec on gensim's CPU kernels (gensim's FastText when ``subwords=true``,
  so that out-of-vocabulary words get vectors from their character n-grams);
- ``batch_skipgram``: skip-gram with negative sample sharing, a torch kernel on CUDA or the CPU;
- ``supervised``: the fastText classifier (bag of word and hashed word n-gram embeddings, softmax).

Artifacts are SageMaker's: ``vectors.txt`` (word2vec text), ``vectors.bin`` and ``eval.json`` for
Word2Vec, ``model.bin`` for supervised; the ``.bin`` files are fastText's own format, so fastText and
gensim open them, and a fastText ``.bin`` can be served (:meth:`BlazingText.from_fasttext`, or a model
folder holding only ``model.bin`` / ``vectors.bin`` passed to :func:`sagelocal.load`).

Inference follows the spec: ``{"instances": [...], "configuration": {"k": K}}`` answers a top-level
list of ``{"label": [...], "prob": [...]}`` (supervised) or ``{"word": w, "vector": [...]}`` (Word2Vec);
JSON lines take ``{"source": ..., "k": K}`` per line.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...base.artifacts import register_foreign_loader
from ...base.device import DEVICE_OPTION, resolve_device
from ...base.errors import ArtifactError, ChannelError, DataFormatError
from ...base.estimator import Estimator
from ...base.hyperparameters import REQUIRED, Hyperparameter, HyperparameterTable
from ...base.registry import register
from ...base.training import Metric, MetricReporter
from ...io.codecs import JSONLinesResponse, JSONResponse
from . import corpus, supervised, word2vec
from .fasttext_format import MODELS, FastTextModel, bin_bytes, parse_bin, read_bin, write_word2vec_text
from .network import mean_rows

_SUBWORD_MODES = ("cbow", "skipgram")

HYPERPARAMETERS = HyperparameterTable("blazingtext", [
    Hyperparameter("mode", "categorical", REQUIRED, choices=("cbow", "skipgram", "batch_skipgram", "supervised"),
                   tunable=True, tuning_range=("batch_skipgram", "skipgram", "cbow"),
                   doc="Word2Vec architecture (cbow, skipgram, batch_skipgram) or the supervised classifier."),
    Hyperparameter("batch_size", "int", 11, range=(1, None), tunable=True, tuning_range=(8, 32),
                   doc="batch_skipgram: context words sharing one set of negative samples."),
    Hyperparameter("buckets", "int", 2000000, range=(1, None), tunable=True, tuning_range=(1000000, 10000000),
                   doc="Hash buckets of character n-grams (subwords) or word n-grams (supervised)."),
    Hyperparameter("epochs", "int", 5, range=(1, None), tunable=True, tuning_range=(5, 15),
                   doc="Passes over the corpus (supervised: the maximum with early stopping)."),
    Hyperparameter("evaluation", "bool", True, doc="Word2Vec: score the vectors on WordSimilarity-353."),
    Hyperparameter("learning_rate", "float", 0.05, range=(0, None), closed=(False, True), tunable=True,
                   tuning_range=(0.005, 0.01), doc="Initial step size, decayed linearly."),
    Hyperparameter("min_char", "int", 3, range=(1, None), doc="Shortest character n-gram (subwords)."),
    Hyperparameter("max_char", "int", 6, range=(1, None), doc="Longest character n-gram (subwords)."),
    Hyperparameter("min_count", "int", 5, range=(0, None), tunable=True, tuning_range=(0, 100),
                   doc="Words seen fewer times are dropped from the vocabulary."),
    Hyperparameter("negative_samples", "int", 5, range=(1, None), tunable=True, tuning_range=(5, 25),
                   doc="Negative samples per positive (Word2Vec)."),
    # the notes call it a positive fraction: 0 is refused, 1 allowed
    Hyperparameter("sampling_threshold", "float", 0.0001, range=(0, 1), closed=(False, True), tunable=True,
                   tuning_range=(0.0001, 0.001), doc="Down-sampling threshold of frequent words."),
    Hyperparameter("subwords", "bool", False, doc="cbow/skipgram: learn character n-gram vectors."),
    Hyperparameter("vector_dim", "int", 100, range=(1, None), tunable=True, tuning_range=(32, 300),
                   doc="Size of the word vectors (supervised: of the embedding layer)."),
    Hyperparameter("window_size", "int", 5, range=(1, None), tunable=True, tuning_range=(1, 10),
                   doc="Context words on each side of the target (Word2Vec)."),
    Hyperparameter("early_stopping", "bool", False,
                   doc="supervised: stop when validation accuracy stalls for `patience` epochs."),
    Hyperparameter("min_epochs", "int", 5, range=(1, None), doc="supervised: epochs before early stopping applies."),
    Hyperparameter("patience", "int", 4, range=(1, None), doc="supervised: epochs without gain before stopping."),
    Hyperparameter("word_ngrams", "int", 2, range=(1, None), tunable=True, tuning_range=(1, 3),
                   doc="supervised: longest word n-gram feature (1 = words only)."),
])

#: Hyperparameters that apply to each mode (spec ``mode_matrix``).
MODE_KEYS = {
    "cbow": {"mode", "buckets", "epochs", "evaluation", "learning_rate", "min_char", "max_char", "min_count",
             "negative_samples", "sampling_threshold", "subwords", "vector_dim", "window_size"},
    "batch_skipgram": {"mode", "batch_size", "epochs", "evaluation", "learning_rate", "min_count",
                       "negative_samples", "sampling_threshold", "vector_dim", "window_size"},
    "supervised": {"mode", "buckets", "early_stopping", "epochs", "learning_rate", "min_count", "min_epochs",
                   "patience", "vector_dim", "word_ngrams"},
}
MODE_KEYS["skipgram"] = MODE_KEYS["cbow"]


class _ListJSON(JSONResponse):
    """BlazingText's JSON answer: a top-level array, one object per instance."""

    def encode(self, records, model) -> bytes:
        return json.dumps(records).encode()


class _JSONLines(JSONLinesResponse):
    """JSON lines in the guide's key order (``prob`` before ``label``)."""

    def encode(self, records, model) -> bytes:
        ordered = [{"prob": r["prob"], "label": r["label"]} if "prob" in r else r for r in records]
        return super().encode(ordered, model)


@register
class BlazingText(Estimator):
    """SageMaker BlazingText: Word2Vec (cbow, skipgram, batch_skipgram) and text classification.

    Parameters
    ----------
    mode : {"cbow", "skipgram", "batch_skipgram", "supervised"}
        Required.
    batch_size : int, default 11
        batch_skipgram: context words of one target that share its negative samples.
    buckets : int, default 2000000
        Hash buckets of character n-grams (cbow/skipgram with subwords) or word n-grams (supervised).
    epochs : int, default 5
    evaluation : bool, default True
        Word2Vec: score on WordSimilarity-353, write ``eval.json`` and report ``train:mean_rho``.
    learning_rate : float, default 0.05
    min_char, max_char : int, default 3 and 6
        Character n-gram lengths when ``subwords=True``.
    min_count : int, default 5
    negative_samples : int, default 5
    sampling_threshold : float, default 0.0001
    subwords : bool, default False
        cbow/skipgram: learn character n-gram vectors (out-of-vocabulary words get vectors).
    vector_dim : int, default 100
    window_size : int, default 5
    early_stopping : bool, default False
        supervised: needs the validation channel.
    min_epochs : int, default 5
    patience : int, default 4
    word_ngrams : int, default 2
    random_state : int, default 0
        sagelocal option: seed of every random draw (cbow/skipgram repeat exactly only with threads=1).
    device : {"auto", "cpu", "cuda"}, default "auto"
        sagelocal option: where the torch modes (supervised, batch_skipgram) run.
    threads : int or "auto", default "auto"
        sagelocal option: gensim worker threads for cbow/skipgram ("auto": every core).
    lines_per_step : int or "auto", default "auto"
        sagelocal option: lines per SGD step of the supervised model (fastText takes one at a time;
        "auto": n_lines // 256 clipped to 1..128).
    targets_per_step : int or "auto", default "auto"
        sagelocal option: batch_skipgram target words per step ("auto": 32 on the CPU, 1024 on CUDA).

    Attributes
    ----------
    model_ : FastTextModel
        Dictionary, arguments and matrices (what ``vectors.bin`` / ``model.bin`` hold).
    classes_ : list of str
        supervised: the labels (with their ``__label__`` prefix), most frequent first.
    eval_ : dict or None
        Word2Vec with evaluation: the content of ``eval.json``.
    """

    algorithm = "blazingtext"
    sdk_class = None
    hyperparameters = HYPERPARAMETERS
    channels = {"train": True, "validation": False}
    training_content_types = ("text/plain", "application/jsonlines")
    default_label_size = 0
    metrics = (Metric("train:mean_rho", "Maximize"), Metric("validation:accuracy", "Maximize"))
    # The JSON answer is a top-level array (no key); records hold label/prob or word/vector.
    response_key = "predictions"
    request_content_types = ("application/json", "application/jsonlines")
    response_content_types = ("application/json", "application/jsonlines")
    response_codecs = {"application/json": _ListJSON, "application/jsonlines": _JSONLines}
    default_accept = "same-as-request"  # codecs.SAME_AS_REQUEST: no Accept -> the request's content type
    options = (
        DEVICE_OPTION,
        Hyperparameter("threads", "int", "auto", range=(1, None), auto=True, doc="gensim worker threads."),
        Hyperparameter("lines_per_step", "int", "auto", range=(1, None), auto=True,
                       doc="supervised: lines per SGD step."),
        Hyperparameter("targets_per_step", "int", "auto", range=(1, None), auto=True,
                       doc="batch_skipgram: target words per step."),
    )

    @classmethod
    def _check_hyperparameters(cls, values):
        problems = []
        mode = values["mode"]
        # the notes ask to validate keys per mode: a non-default value of a key the mode ignores is refused
        for hp in cls.hyperparameters:
            if hp.name not in MODE_KEYS[mode] and values[hp.name] != hp.default:
                modes = ", ".join(m for m in MODE_KEYS if hp.name in MODE_KEYS[m])
                problems.append((hp.name, f"hyperparameter '{hp.name}' does not apply to mode '{mode}'; "
                                          f"it applies to {modes}"))
        if mode in _SUBWORD_MODES and values["subwords"] and values["min_char"] > values["max_char"]:
            problems.append(("max_char", f"hyperparameter 'max_char' must be >= min_char ({values['min_char']}); "
                                         f"got {values['max_char']}"))
        return problems

    # ----------------------------------------------------------------------------------- fit
    def fit(self, X, y=None, *, validation=None, test=None):
        """Train on ``X``: a list of sentences, a ``pathlib.Path`` or a :class:`sagelocal.io.Channel`.

        Supervised lines carry their labels as ``__label__`` tokens (or an augmented manifest's
        ``label``); ``validation`` (supervised only) takes the same forms. Returns ``self``.
        """
        if y is not None:
            raise DataFormatError("blazingtext: labels are __label__ tokens in the text; do not pass y",
                                  channel="train")
        if test is not None:
            raise DataFormatError("blazingtext takes no 'test' channel; channels: train, validation",
                                  channel="test")
        hp = self._resolve_hyperparameters(None)
        self._options = self.option_table().parse({k: getattr(self, k) for k in self.option_defaults()})
        if validation is not None and hp["mode"] != "supervised":
            raise ChannelError(f"blazingtext: mode '{hp['mode']}' takes only the train channel; got 'validation'")
        if hp["mode"] == "supervised" and hp["early_stopping"] and validation is None:
            raise ChannelError("blazingtext: early_stopping=true needs the 'validation' channel")
        self._reset()
        self._reporter = MetricReporter(host=self.runtime.host)
        self._hp = hp
        if hp["mode"] == "supervised":
            self._fit_supervised(X, validation, hp)
        else:
            self._fit_word2vec(X, hp)
        self.hyperparameters_ = hp
        self.metrics_ = dict(self._reporter.metrics)
        return self

    def _device(self) -> torch.device:
        return resolve_device(self.algorithm, self._options["device"])

    def _fit_word2vec(self, X, hp) -> None:
        seed = self._options["random_state"]
        if hp["mode"] == "batch_skipgram":
            lines = corpus.split_lines(corpus.iter_lines(X, name="train", supervised=False))
            device = self._device()
            block = self._options["targets_per_step"]
            if block == "auto":  # few targets per step keep quality on the CPU; a GPU needs wide steps
                block = 1024 if device.type == "cuda" else 32
            model = word2vec.train_batch_skipgram(lines, hp, device=device, seed=seed, block=block,
                                                  reporter=self._reporter)
        else:
            threads = self._options["threads"]
            threads = len(os.sched_getaffinity(0)) if threads == "auto" else threads
            with tempfile.TemporaryDirectory(prefix="sagelocal-blazingtext-") as tmp:
                path = corpus.plain_corpus_file(X, name="train", directory=tmp)
                model, _ = word2vec.train_gensim(path, hp, threads=threads, seed=seed)
        self._set_model(model)
        self.eval_ = None
        if hp["evaluation"]:
            self.eval_ = word2vec.evaluate(model.words, self.word_vectors_)
            if self.eval_["mean_rho"] is not None:
                self._reporter.report("train:mean_rho", self.eval_["mean_rho"], "Maximize")

    def _fit_supervised(self, X, validation, hp) -> None:
        train_lines = corpus.split_lines(corpus.iter_lines(X, name="train", supervised=True))
        dictionary = corpus.build_dictionary(train_lines, hp["min_count"])
        if dictionary.nlabels == 0:
            raise DataFormatError("supervised mode needs __label__ tokens; the training data has none",
                                  channel="train")
        args = supervised.classifier_args(hp)
        index = dictionary.index()
        encoded = corpus.encode(train_lines, index, dictionary.nwords, hp["word_ngrams"], args.bucket)
        supervised.check_labelled(encoded, "train")
        valid = None
        if validation is not None:
            valid_lines = corpus.split_lines(corpus.iter_lines(validation, name="validation", supervised=True))
            if not valid_lines:
                raise DataFormatError("the validation channel holds no lines", channel="validation")
            valid = corpus.encode(valid_lines, index, dictionary.nwords, hp["word_ngrams"], args.bucket)
        device = self._device()
        generator = torch.Generator(device=device).manual_seed(self._options["random_state"])
        trainer = supervised.SupervisedTrainer(
            encoded, valid, rows=dictionary.nwords + args.bucket, n_labels=dictionary.nlabels, hp=hp,
            device=device, generator=generator, reporter=self._reporter,
            lines_per_step=_lines_per_step(self._options["lines_per_step"], encoded.n_lines))
        self.epochs_run_ = trainer.run()
        self._set_model(supervised.to_fasttext(trainer, dictionary.entries, dictionary.counts,
                                               dictionary.nwords, dictionary.ntokens, hp))
        self.eval_ = None

    def _set_model(self, model: FastTextModel) -> None:
        self.model_ = model
        self._torch_input = torch.from_numpy(model.input)
        if model.supervised:
            self.classes_ = [label.decode("utf-8", "replace") for label in model.labels]
            self.word_vectors_ = None
        else:
            args = model.args
            ids, offsets = corpus.vocabulary_rows(model.entries, model.nwords, args.bucket, args.minn, args.maxn)
            self.word_vectors_ = mean_rows(model.input, ids, offsets)

    # ------------------------------------------------------------------------------- predict
    def predict(self, X) -> np.ndarray:
        """supervised: the most probable label of each sentence (``""`` when a sentence has no known
        token); Word2Vec: the vector of each word, as an array (n, vector_dim)."""
        self._check_fitted()
        records = self._records(X)
        if self.model_.supervised:
            return np.asarray([r["label"][0] if r["label"] else "" for r in records], dtype=object)
        return np.asarray([r["vector"] for r in records], dtype=np.float32).reshape(len(records), self.model_.args.dim)

    def predict_records(self, X, **options) -> list[dict[str, Any]]:
        """SageMaker's response records for a list of instances.

        Instances are strings (a sentence, or a word for Word2Vec models) or JSON-lines objects
        ``{"source": ..., "k": K}``. ``k`` (supervised) is how many labels each answer lists (default 1).
        """
        self._check_fitted()
        return self._records(X, **options)

    def _serving_input(self, request):
        configuration = request.configuration or {}
        extra = {"k": configuration["k"]} if "k" in configuration else {}
        return request.instances, extra

    def _records(self, instances, k=1) -> list[dict[str, Any]]:
        texts, ks = _parse_instances(instances, k)
        if self.model_.supervised:
            return self._classify(texts, ks)
        vectors = self.word_vectors(texts)
        return [{"word": word, "vector": vector} for word, vector in zip(texts, vectors.tolist())]

    def word_vectors(self, words: list[str]) -> np.ndarray:
        """Vectors of ``words`` as fastText computes them: a known word's vector (its row, averaged with
        its character n-gram rows for subword models); an unknown word's n-grams, or zeros."""
        self._check_fitted()
        model, args = self.model_, self.model_.args
        index = model.index()
        out = np.zeros((len(words), args.dim), dtype=np.float32)
        for i, word in enumerate(words):
            token = word.encode()
            wid = index.get(token, -1)
            if 0 <= wid < model.nwords and self.word_vectors_ is not None:
                out[i] = self.word_vectors_[wid]
                continue
            rows = corpus.subword_rows(token, -1, model.nwords, args.bucket, args.minn, args.maxn)
            if rows:
                out[i] = model.input[rows].mean(axis=0)
        return out

    def _classify(self, texts: list[str], ks: list[int]) -> list[dict[str, Any]]:
        model, args = self.model_, self.model_.args
        if not texts:
            return []
        lines = corpus.split_lines(text.encode() for text in texts)
        encoded = corpus.encode(lines, model.index(), model.nwords, args.word_ngrams, args.bucket, args.minn,
                                args.maxn)
        ids, offsets = torch.from_numpy(encoded.ids), torch.from_numpy(encoded.offsets[:-1])
        hidden = torch.nn.functional.embedding_bag(ids, self._torch_input, offsets, mode="mean")
        probs = torch.softmax(hidden @ torch.from_numpy(model.output).T, dim=1).numpy()
        order = np.argsort(-probs, axis=1, kind="stable")
        empty = np.diff(encoded.offsets) == 0  # fastText answers nothing for a line without known rows
        return [{"label": [] if empty[i] else [self.classes_[j] for j in order[i, :k]],
                 "prob": [] if empty[i] else probs[i, order[i, :k]].tolist()} for i, k in enumerate(ks)]

    # ------------------------------------------------------------------------------ artifacts
    def _get_state(self):
        return {}, {"metrics": self.metrics_, "eval": self.eval_}

    def _set_state(self, arrays, meta):
        self.eval_ = meta.get("eval")

    def _get_native_files(self) -> dict[str, bytes]:
        """SageMaker's artifact files: model.bin (supervised) or vectors.bin, vectors.txt, eval.json."""
        if self.model_.supervised:
            return {"model.bin": bin_bytes(self.model_)}
        with tempfile.TemporaryDirectory(prefix="sagelocal-blazingtext-") as tmp:
            text = Path(tmp) / "vectors.txt"
            write_word2vec_text(text, self.model_.words, self.word_vectors_)
            files = {"vectors.bin": bin_bytes(self.model_), "vectors.txt": text.read_bytes()}
        if self.eval_ is not None:
            files["eval.json"] = json.dumps(self.eval_, indent=4).encode()
        return files

    def _set_native_files(self, files: dict[str, bytes]) -> None:
        name = "model.bin" if "model.bin" in files else "vectors.bin"
        if name not in files:
            raise ArtifactError("blazingtext model holds neither model.bin nor vectors.bin")
        self._set_model(parse_bin(files[name], name))

    @classmethod
    def from_fasttext(cls, path) -> BlazingText:
        """A fitted estimator serving a fastText ``.bin`` model (fastText's, BlazingText's or ours)."""
        model = read_bin(path)
        args = model.args
        mode = {MODELS["sup"]: "supervised", MODELS["cbow"]: "cbow"}.get(args.model, "skipgram")
        hp = {"mode": mode, "vector_dim": args.dim, "epochs": max(args.epoch, 1), "min_count": max(args.min_count, 0)}
        if mode == "supervised":
            hp.update(word_ngrams=max(args.word_ngrams, 1),
                      buckets=args.bucket or cls.hyperparameters["buckets"].default)
        else:
            hp.update(window_size=max(args.ws, 1), negative_samples=max(args.neg, 1), evaluation=False,
                      sampling_threshold=args.t if 0 < args.t <= 1 else 1e-4)
            if args.maxn > 0:
                hp.update(subwords=True, min_char=max(args.minn, 1), max_char=max(args.maxn, 1),
                          buckets=args.bucket)
        estimator = cls(**hp)
        estimator._options = estimator.option_table().parse({k: getattr(estimator, k)
                                                             for k in estimator.option_defaults()})
        estimator._hp = estimator.hyperparameters_ = cls.hyperparameters.parse(hp, require=True)
        estimator._set_model(model)
        estimator.eval_, estimator.metrics_ = None, {}
        return estimator


def _lines_per_step(option, n_lines: int) -> int:
    """``auto``: at least ~256 steps per epoch (small sets train line by line, as fastText does), and at
    most 128 lines per step (beyond, the summed updates of a step drift from sequential SGD)."""
    return option if option != "auto" else max(1, min(128, n_lines // 256))


def _parse_instances(instances, k) -> tuple[list[str], list[int]]:
    """(texts, k per instance) from strings or ``{"source": ..., "k": ...}`` objects."""
    if isinstance(instances, str) or not hasattr(instances, "__iter__"):
        raise DataFormatError(f"blazingtext: instances must be a list of strings; got {type(instances).__name__}")
    default_k = _check_k(k, "configuration.k")
    texts, ks = [], []
    for number, instance in enumerate(instances, 1):
        item_k = default_k
        if isinstance(instance, dict):
            if "k" in instance:
                item_k = _check_k(instance["k"], f"instance {number}: k")
            instance = instance.get("source")
        if not isinstance(instance, str):
            raise DataFormatError(f"blazingtext: instance {number} must be a string or an object with a string "
                                  f"'source'; got {type(instance).__name__}", record=number)
        texts.append(instance)
        ks.append(item_k)
    return texts, ks


def _check_k(value, what: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataFormatError(f"blazingtext: {what} must be an integer >= 1; got {value!r}")
    return value


def _is_fasttext_folder(directory: Path) -> bool:
    return (directory / "model.bin").is_file() or (directory / "vectors.bin").is_file()


def _load_fasttext_folder(directory: Path, allow_pickle: bool, shown: str) -> BlazingText:
    name = "model.bin" if (directory / "model.bin").is_file() else "vectors.bin"
    return BlazingText.from_fasttext(directory / name)


register_foreign_loader(_is_fasttext_folder, _load_fasttext_folder)
