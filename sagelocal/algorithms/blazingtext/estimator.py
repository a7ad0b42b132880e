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
from ...base.device import resolve_device
from ...base.errors import ArtifactError, ChannelError, DataFormatError
from ...base.estimator import Estimator
from ...base.registry import register
from ...base.training import Metric
from ...io.codecs import JSONLinesResponse, JSONResponse
from .data import Corpus, build_dictionary, encode, split_lines, subword_rows, vocabulary_rows
from .fasttext_format import MODELS, FastTextModel, bin_bytes, parse_bin, read_bin, write_word2vec_text
from .hyperparameters import HYPERPARAMETERS, OPTIONS, check_hyperparameters
from .network import mean_rows
from .trainer import BatchSkipgramTrainer, SupervisedTrainer, check_labelled, classifier_args, evaluate, train_gensim


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

    The parameter list below is generated from the declarations (:mod:`.hyperparameters`).

    Attributes
    ----------
    model_ : FastTextModel
        Dictionary, arguments and matrices (what ``vectors.bin`` / ``model.bin`` hold).
    classes_ : list of str
        supervised: the labels (with their ``__label__`` prefix), most frequent first.
    eval_ : dict or None
        Word2Vec with evaluation: the content of ``eval.json``.
    epochs_run_ : int
        supervised: the epochs trained (fewer than ``epochs`` when early stopping stopped).
    """

    algorithm = "blazingtext"
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
    options = OPTIONS

    @classmethod
    def _check_hyperparameters(cls, values):
        return check_hyperparameters(values)

    # ----------------------------------------------------------------------------------- fit
    def _as_source(self, data, y, name: str) -> Corpus | None:
        """A list of sentences, a ``pathlib.Path`` to a text file or a :class:`sagelocal.io.Channel`.

        Supervised lines carry their labels as ``__label__`` tokens (or an augmented manifest's ``label``);
        ``validation`` (supervised only) takes the same forms.
        """
        if y is not None:
            raise DataFormatError("blazingtext: labels are __label__ tokens in the text; do not pass y",
                                  channel="train")
        return None if data is None else Corpus(data, name)

    def _fit(self, train: Corpus, validation: Corpus | None, test, hp) -> None:
        if validation is not None and hp["mode"] != "supervised":
            raise ChannelError(f"blazingtext: mode '{hp['mode']}' takes only the train channel; got 'validation'")
        if hp["mode"] == "supervised" and hp["early_stopping"] and validation is None:
            raise ChannelError("blazingtext: early_stopping=true needs the 'validation' channel")
        if hp["mode"] == "supervised":
            self._fit_supervised(train, validation, hp)
        else:
            self._fit_word2vec(train, hp)

    def _fit_word2vec(self, train: Corpus, hp) -> None:
        seed = self._options["random_state"]
        if hp["mode"] == "batch_skipgram":
            device = resolve_device(self.algorithm, self._options["device"])
            block = self._options["targets_per_step"]
            if block == "auto":  # few targets per step keep quality on the CPU; a GPU needs wide steps
                block = 1024 if device.type == "cuda" else 32
            trainer = BatchSkipgramTrainer(split_lines(train.lines(supervised=False)), hp, device=device, seed=seed)
            # no checkpoints: BlazingText has none, and a resumed epoch would not repeat the draws
            model = trainer.run(self._training_loop(epochs=hp["epochs"], batch_size=block, checkpoint_dir=None))
        else:
            threads = self._options["threads"]
            threads = len(os.sched_getaffinity(0)) if threads == "auto" else threads
            with tempfile.TemporaryDirectory(prefix="sagelocal-blazingtext-") as tmp:
                model = train_gensim(train.corpus_file(tmp), hp, threads=threads, seed=seed,
                                     reporter=self._reporter, progress=self._options["progress"])
        self._set_model(model)
        self.eval_ = None
        if hp["evaluation"]:
            self.eval_ = evaluate(model.words, self.word_vectors_)
            if self.eval_["mean_rho"] is not None:
                self._reporter.report("train:mean_rho", self.eval_["mean_rho"], "Maximize")

    def _fit_supervised(self, train: Corpus, validation: Corpus | None, hp) -> None:
        train_lines = split_lines(train.lines(supervised=True))
        dictionary = build_dictionary(train_lines, hp["min_count"])
        if dictionary.nlabels == 0:
            raise DataFormatError("supervised mode needs __label__ tokens; the training data has none",
                                  channel="train")
        args = classifier_args(hp)
        index = dictionary.index()
        encoded = encode(train_lines, index, dictionary.nwords, hp["word_ngrams"], args.bucket)
        check_labelled(encoded, "train")
        valid = None
        if validation is not None:
            valid_lines = split_lines(validation.lines(supervised=True))
            if not valid_lines:
                raise DataFormatError("the validation channel holds no lines", channel="validation")
            valid = encode(valid_lines, index, dictionary.nwords, hp["word_ngrams"], args.bucket)
        trainer = SupervisedTrainer(encoded, valid, rows=dictionary.nwords + args.bucket, n_labels=dictionary.nlabels,
                                    hp=hp, device=resolve_device(self.algorithm, self._options["device"]),
                                    seed=self._options["random_state"], reporter=self._reporter)
        # no checkpoints: BlazingText has none, and a resumed epoch would not repeat the shuffles
        loop = self._training_loop(epochs=hp["epochs"], early_stopping=trainer.early_stopping(), checkpoint_dir=None,
                                   batch_size=_lines_per_step(self._options["lines_per_step"], encoded.n_lines))
        self.epochs_run_ = trainer.run(loop)
        self._set_model(trainer.to_fasttext(dictionary.entries, dictionary.counts, dictionary.nwords,
                                            dictionary.ntokens))
        self.eval_ = None

    def _set_model(self, model: FastTextModel) -> None:
        self.model_ = model
        self._torch_input = torch.from_numpy(model.input)
        if model.supervised:
            self.classes_ = [label.decode("utf-8", "replace") for label in model.labels]
            self.word_vectors_ = None
        else:
            args = model.args
            ids, offsets = vocabulary_rows(model.entries, model.nwords, args.bucket, args.minn, args.maxn)
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
            rows = subword_rows(token, -1, model.nwords, args.bucket, args.minn, args.maxn)
            if rows:
                out[i] = model.input[rows].mean(axis=0)
        return out

    def _classify(self, texts: list[str], ks: list[int]) -> list[dict[str, Any]]:
        model, args = self.model_, self.model_.args
        if not texts:
            return []
        lines = split_lines(text.encode() for text in texts)
        encoded = encode(lines, model.index(), model.nwords, args.word_ngrams, args.bucket, args.minn,
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
        estimator._options = estimator.option_table().parse(estimator._option_values())
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
