"""Seq2Seq: SageMaker's sequence-to-sequence algorithm (``seq2seq`` image; the SDK has no class).

An attentional encoder-decoder after Sockeye, which SageMaker's Seq2Seq is built on: see
:mod:`.network` for the architectures, :mod:`.trainer` for the checkpoint-driven training loop,
:mod:`.beam` for batched beam search and :mod:`.data` for the vocabulary and RecordIO layout.

Training data: the ``train`` and ``validation`` channels hold RecordIO-protobuf records of int32
``source`` / ``target`` token ids, the ``vocab`` channel ``vocab.src.json`` and ``vocab.trg.json``
(:func:`sagelocal.algorithms.seq2seq.prepare` writes all three from parallel text). In memory,
``fit`` also takes sentences (vocabularies are then built from the training sentences unless given)
or sequences of token ids.

Inference (the spec's shapes): JSON ``{"instances": [{"data": "tok tok", "configuration":
{"attention_matrix": "true"}}]}`` -> ``{"predictions": [{"target": "tok tok", "matrix": [[...]]}]}``;
JSON lines ``{"source": "tok tok"}`` -> ``{"target": "tok tok"}`` (batch transform); RecordIO-protobuf
records with ``features["source"]`` ids -> records with ``features["target"]`` ids.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ...base.device import resolve_device
from ...base.errors import ChannelError, DataFormatError, UnsupportedAcceptError
from ...base.estimator import Estimator
from ...base.registry import register
from ...base.torch_layer import load_module_arrays, module_arrays, seeded, thread_count, threads
from ...base.training import Metric
from ...io import Channel, is_channel
from ...io.codecs import RecordIOProtobufResponse
from . import hyperparameters as declarations
from .data import (
    PairData,
    PairRows,
    Ragged,
    build_vocab,
    check_vocab,
    decode_ids,
    encode_ids,
    encode_sentences,
    inverse_vocab,
    read_pair_channel,
    read_vocab_channel,
)
from .network import Seq2SeqNet, initialize
from .trainer import CHECKPOINT_FILE, Trainer, translate

logger = logging.getLogger("sagelocal")


def _is_text(rows) -> bool:
    return len(rows) > 0 and isinstance(rows[0], str)


class Seq2SeqRecordIOResponse(RecordIOProtobufResponse):
    """RecordIO-protobuf answers as SageMaker's Seq2Seq gives them: ``features["target"]`` int32 ids."""

    def encode(self, records, model) -> bytes:
        targets = [r["target"] for r in records]
        if any(isinstance(t, str) for t in targets):
            raise UnsupportedAcceptError("seq2seq answers application/x-recordio-protobuf only to "
                                         "application/x-recordio-protobuf requests (content type and accept "
                                         "must be identical)")
        return encode_ids("target", targets)


@register
class Seq2Seq(Estimator):
    """Sequence-to-sequence translation with SageMaker's Seq2Seq hyperparameters.

    ``fit(X, y=None, *, validation=None, vocab=None)`` takes:

    - ``X``: the ``train`` channel (a :class:`sagelocal.io.Channel`, or a RecordIO file or folder), or in
      memory the source sentences (strings of whitespace-separated tokens) or token-id sequences, with the
      targets as ``y`` (or ``X`` a ``(sources, targets)`` pair).
    - ``validation``: the ``validation`` channel, a path or ``(sources, targets)``. SageMaker requires it;
      without it sagelocal evaluates the checkpoints on the training pairs and names those metrics
      ``train:*``.
    - ``vocab``: the ``vocab`` channel or folder (holding ``vocab.src.json`` and ``vocab.trg.json``) or two
      token -> id mappings. With sentences and no vocab, vocabularies are built from the training
      sentences as SageMaker's preprocessing script does.

    Channels are read as their settings say (sharding, shuffle, gzip, manifests; Pipe mode too, which
    SageMaker's Seq2Seq does not offer). SageMaker's Seq2Seq needs a GPU; the CPU is a local extension.
    ``num_threads="auto"`` runs networks under 1M parameters on one CPU thread: their matrices are too small
    for intra-op threads to pay, and on a busy machine spinning threads slow them down many times.

    Attributes
    ----------
    vocab_source_, vocab_target_ : dict of str to int
        The vocabularies (shipped inside the model, so that text requests work without them).
    network_ : torch.nn.Module
        The trained encoder-decoder (the best checkpoint).
    training_progress_ : dict
        ``updates``, completed ``epochs``, ``checkpoints`` and the ``best_checkpoint`` (1-based) kept.
    metrics_ : dict
        ``validation:perplexity``, ``validation:accuracy`` (and ``validation:bleu`` when decoded) of
        the best checkpoint.
    """

    algorithm = "seq2seq"
    sdk_class = None
    hyperparameters = declarations.HYPERPARAMETERS
    channels = {"train": True, "validation": True, "vocab": True}
    raw_channels = ("vocab",)  # vocab.src.json / vocab.trg.json, read by fit itself
    training_content_types = ("application/x-recordio-protobuf",)
    default_label_size = 0
    metrics = (Metric("validation:accuracy", "Maximize"), Metric("validation:bleu", "Maximize"),
               Metric("validation:perplexity", "Minimize"))
    response_key = "predictions"
    request_content_types = ("application/json", "application/x-recordio-protobuf", "application/jsonlines")
    response_content_types = ("application/json", "application/x-recordio-protobuf", "application/jsonlines")
    response_codecs = {"application/x-recordio-protobuf": Seq2SeqRecordIOResponse}
    default_accept = "same-as-request"  # codecs.SAME_AS_REQUEST: no Accept -> the request's content type
    options = declarations.OPTIONS

    @classmethod
    def _check_hyperparameters(cls, values):
        return declarations.check_hyperparameters(values)

    @classmethod
    def search_space(cls) -> dict[str, dict[str, Any]]:
        """Tuning ranges; integer lists are categorical and ``weight_init_scale`` takes the xavier range."""
        return declarations.search_space()

    # ----------------------------------------------------------------------------------- fit
    def _as_source(self, data, y, name: str):
        """Channels and paths as channels; in-memory sentences or ids as :class:`PairRows`; ``vocab`` mappings
        as given (checked by :meth:`_fit`, after the hyperparameters)."""
        if data is None or is_channel(data):
            return data
        if isinstance(data, (str, os.PathLike)):
            return Channel(data, name=name)
        if name == "vocab":
            return data
        if y is None and isinstance(data, tuple) and len(data) == 2:
            data, y = data
        return PairRows(data, y)

    def _fit(self, train, validation, test, hp: dict) -> None:
        self._inverse = None
        self.vocab_source_, self.vocab_target_ = self._vocabularies(self._sources.get("vocab"), train)
        pairs = self._pairs(train, "train", hp)
        if len(pairs) == 0:
            raise DataFormatError("no training pair has a non-empty source", channel="train")
        held_out = None if validation is None else self._pairs(validation, "validation", hp)
        self._train(pairs, held_out, hp)

    def _train(self, train: PairData, validation: PairData | None, hp: dict) -> None:
        device = self._device()
        seed = self._options["random_state"]
        net = Seq2SeqNet(hp, len(self.vocab_source_), len(self.vocab_target_))
        initialize(net, hp["weight_init_type"], hp["weight_init_scale"], hp["xavier_factor_type"],
                   torch.Generator().manual_seed(seed))
        net.to(device)
        if validation is None:
            logger.warning("seq2seq: no validation data; checkpoints are evaluated on the training pairs")
        # seeded: dropout draws from torch's global generator; the caller's state is left as it was
        with seeded(seed, device), threads(thread_count(self._options["num_threads"], net)):
            trainer = Trainer(net, hp, train, validation if validation is not None else train, device=device,
                              reporter=self._reporter, seed=seed, decode_options=self._decode_options(),
                              split="validation" if validation is not None else "train")
            loop = self._training_loop(epochs=trainer.checkpoints, batch_size=hp["batch_size"],
                                       early_stopping=trainer.early_stopping(), keep_best=trainer.keep_best,
                                       checkpoint_name=CHECKPOINT_FILE, config=trainer.config(), unit="checkpoint")
            loop.run(trainer, trainer)
        trainer.report_best()
        self.training_progress_ = trainer.summary()
        self.network_ = net.eval()
        self.length_ratio_ = train.length_ratio

    def _device(self) -> torch.device:
        return resolve_device(self.algorithm, self._options["device"])

    def _decode_options(self) -> dict[str, float]:
        return {"alpha": self._options["length_penalty_alpha"], "beta": self._options["length_penalty_beta"]}

    # ------------------------------------------------------------------------------- data in
    def _vocabularies(self, vocab, train) -> tuple[dict[str, int], dict[str, int]]:
        if vocab is None:
            if not isinstance(train, PairRows) or not _is_text(train.sources):
                raise ChannelError("seq2seq needs the 'vocab' channel (vocab.src.json and vocab.trg.json) "
                                   "unless it trains on sentences")
            if train.targets is None or not _is_text(train.targets):
                raise DataFormatError("with source sentences, y must hold the target sentences", channel="train")
            return build_vocab(train.sources), build_vocab(train.targets)
        if is_channel(vocab):
            return read_vocab_channel(vocab)
        if isinstance(vocab, Sequence) and len(vocab) == 2:
            return check_vocab(vocab[0], "vocab[0] (source)"), check_vocab(vocab[1], "vocab[1] (target)")
        raise DataFormatError(f"vocab must be a channel, a folder or a (source, target) pair of mappings; got "
                              f"{type(vocab).__name__}", channel="vocab")

    def _pairs(self, data, name: str, hp: dict) -> PairData:
        if is_channel(data):
            sources, targets = read_pair_channel(data)
        else:
            if data.targets is None or len(data.sources) != len(data.targets):
                raise DataFormatError(f"in-memory {name} data needs as many targets as sources; got "
                                      f"{len(data.sources)} sources and "
                                      f"{'no' if data.targets is None else len(data.targets)} targets", channel=name)
            sources = self._ids(data.sources, self.vocab_source_, name, "source")
            targets = self._ids(data.targets, self.vocab_target_, name, "target")
        self._check_ids(sources, len(self.vocab_source_), name, "source")
        self._check_ids(targets, len(self.vocab_target_), name, "target")
        data = PairData(sources, targets, hp["max_seq_len_source"], hp["max_seq_len_target"])
        if data.dropped:
            logger.info("seq2seq: %s: skipped %d pairs with an empty source", name, data.dropped)
        return data

    @staticmethod
    def _ids(rows, vocab: Mapping[str, int], name: str, side: str) -> list[np.ndarray]:
        if _is_text(rows):
            return encode_sentences(rows, vocab)
        out = []
        for number, row in enumerate(rows, 1):
            ids = np.asarray(row)
            if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
                raise DataFormatError(f"{side} {number} must be a sentence or a sequence of integer token ids; got "
                                      f"{type(row).__name__}", channel=name, record=number)
            out.append(ids.astype(np.int64))
        return out

    @staticmethod
    def _check_ids(rows: list[np.ndarray], size: int, name: str, side: str) -> None:
        if not rows:
            return
        ragged = Ragged.from_rows(rows)
        bad = np.flatnonzero((ragged.flat < 0) | (ragged.flat >= size))
        if bad.size:
            record = int(np.searchsorted(ragged.offsets, bad[0], side="right"))
            raise DataFormatError(f"{side} token id {ragged.flat[bad[0]]} is outside the {side} vocabulary "
                                  f"(ids 0..{size - 1})", channel=name, record=record)

    # ------------------------------------------------------------------------------- predict
    def translate(self, X, *, beam_size: int | None = None, attention: bool = False):
        """Beam-search the sources ``X`` (sentences or token-id sequences).

        Returns a :class:`~sagelocal.algorithms.seq2seq.beam.Hypotheses`: target ids (without
        ``</s>``), length-normalised scores and, with ``attention``, one (target x source) matrix per
        sentence. ``beam_size`` overrides the trained ``beam_size`` (1 = greedy). Empty sources give
        empty targets.
        """
        from .beam import Hypotheses

        self._check_fitted()
        if isinstance(X, (str, bytes)) or not isinstance(X, Sequence | np.ndarray):
            raise DataFormatError(f"seq2seq predicts on a sequence of sentences or of token-id sequences; got "
                                  f"{type(X).__name__}")
        ids = self._ids(X, self.vocab_source_, "request", "source")
        self._check_ids(ids, len(self.vocab_source_), "request", "source")
        sources = Ragged.from_rows(ids, self._hp["max_seq_len_source"])
        rows = np.flatnonzero(sources.lengths > 0)
        with threads(thread_count(self._options["num_threads"], self.network_)):
            found = translate(self.network_, sources, rows, self._hp, self._network_device(), beam_size=beam_size,
                              attention=attention, **self._decode_options())
        tokens = [np.zeros(0, np.int32)] * len(sources)
        scores = np.zeros(len(sources))
        matrices = [np.zeros((0, 0), np.float32)] * len(sources) if attention else None
        for j, i in enumerate(rows):
            tokens[i], scores[i] = found.tokens[j], found.scores[j]
            if attention:
                matrices[i] = found.attention[j]
        return Hypotheses(tokens, scores, matrices)

    def predict(self, X) -> np.ndarray:
        """Translations as an object array: target sentences for sentences, int32 id arrays for ids."""
        hyps = self.translate(X)
        out = np.empty(len(hyps.tokens), dtype=object)
        if _is_text(X):
            inverse = self._inverse_target()
            out[:] = [decode_ids(t, inverse) for t in hyps.tokens]
        else:
            out[:] = hyps.tokens
        return out

    def predict_records(self, X, **options) -> list[dict[str, Any]]:
        """SageMaker's response records, one per input.

        ``X`` holds sentences, token-id sequences or request instances: ``{"data": "...",
        "configuration": {"attention_matrix": "true"}}`` (JSON; answers ``{"target": "...", "matrix":
        [[...]]}``) and ``{"source": ...}`` (JSON lines). Sentences answer ``{"target": sentence}``, ids
        ``{"target": [ids]}``. ``attention_matrix=True`` adds the matrix for every text input.
        """
        self._check_fitted()
        return self._records(X, **options)

    def _records(self, inputs, *, attention_matrix=False) -> list[dict[str, Any]]:
        default = _flag(attention_matrix, "attention_matrix")
        items = [_request_item(item, number, default) for number, item in enumerate(inputs, 1)]
        ids = [encode_sentences([source], self.vocab_source_)[0] if isinstance(source, str) else source
               for source, _, _ in items]
        wants = any(item[1] for item in items)
        hyps = self.translate(ids, attention=wants)
        inverse = self._inverse_target()
        records = []
        for i, (source, matrix, _) in enumerate(items):
            if isinstance(source, str):
                record = {"target": decode_ids(hyps.tokens[i], inverse)}
                if matrix:
                    record["matrix"] = hyps.attention[i].tolist()
            else:
                record = {"target": hyps.tokens[i].tolist()}
            records.append(record)
        return records

    def _serving_input(self, request) -> tuple[Any, dict[str, Any]]:
        """JSON / JSON lines instances as they are; RecordIO-protobuf records as their ``source`` ids."""
        if request.media_type == "application/x-recordio-protobuf":
            out = []
            for number, record in enumerate(request.records, 1):
                tensor = record["features"].get("source")
                if tensor is None or tensor["dtype"] == "bytes":
                    raise DataFormatError("record has no int32 features['source'] token ids", record=number)
                out.append(np.asarray(tensor["values"]).astype(np.int64))
            return out, {}
        config = request.configuration if request.media_type == "application/json" else None
        extra = {"attention_matrix": config["attention_matrix"]} if config and "attention_matrix" in config else {}
        return request.instances, extra

    def _inverse_target(self) -> list[str]:
        if getattr(self, "_inverse", None) is None:
            self._inverse = inverse_vocab(self.vocab_target_)
        return self._inverse

    def _network_device(self) -> torch.device:
        return next(self.network_.parameters()).device

    # ------------------------------------------------------------------------------ artifacts
    def _get_state(self):
        meta = {"vocab_source": self.vocab_source_, "vocab_target": self.vocab_target_,
                "length_ratio": list(self.length_ratio_), "metrics": self.metrics_}
        return module_arrays(self.network_, "network."), meta

    def _set_state(self, arrays, meta):
        self.vocab_source_ = check_vocab(meta["vocab_source"], "model vocab_source")
        self.vocab_target_ = check_vocab(meta["vocab_target"], "model vocab_target")
        self.length_ratio_ = tuple(meta.get("length_ratio", (1.0, 0.0)))
        self._inverse = None
        self._options = self.option_table().parse(self._option_values())
        net = Seq2SeqNet(self._hp, len(self.vocab_source_), len(self.vocab_target_))
        load_module_arrays(net, arrays, "network.")
        self.network_ = net.to(self._device()).eval()


def _flag(value, name: str) -> bool:
    """A request flag given as a boolean or the strings "true" / "false" (the sample sends "true")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise DataFormatError(f"'{name}' must be true or false (or the strings \"true\"/\"false\"); got {value!r}")


def _request_item(item, number: int, default: bool) -> tuple[Any, bool, str]:
    """(source sentence or ids, whether the attention matrix is wanted, the instance key) of one input."""
    if isinstance(item, Mapping):
        key = "data" if "data" in item else "source" if "source" in item else None
        if key is None:
            raise DataFormatError(f"instance must hold 'data' (JSON) or 'source' (JSON lines); got keys "
                                  f"{sorted(item)[:5]}", record=number)
        source, config = item[key], item.get("configuration") or {}
        if not isinstance(config, Mapping):
            raise DataFormatError("'configuration' must be a JSON object", record=number)
        wants = _flag(config["attention_matrix"], "attention_matrix") if "attention_matrix" in config else default
        if not isinstance(source, (str, list, np.ndarray)):
            raise DataFormatError(f"'{key}' must be a string of tokens or a list of token ids; got "
                                  f"{type(source).__name__}", record=number)
        return source, wants and isinstance(source, str), key
    if isinstance(item, str):
        return item, default, ""
    return item, False, ""
