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
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from ...base.device import DEVICE_OPTION, resolve_device
from ...base.errors import ChannelError, DataFormatError
from ...base.estimator import Estimator
from ...base.hyperparameters import Hyperparameter, HyperparameterTable
from ...base.registry import register
from ...base.training import Metric, MetricReporter
from ...io.codecs import RecordIOProtobufResponse, UnsupportedAcceptError
from .data import (
    PairData,
    Ragged,
    build_vocab,
    check_vocab,
    encode_ids,
    encode_sentences,
    find_vocab_files,
    inverse_vocab,
    read_pair_files,
    read_vocab,
)
from .network import Seq2SeqNet, initialize
from .trainer import Trainer, translate

logger = logging.getLogger("sagelocal")

_H = Hyperparameter
HYPERPARAMETERS = HyperparameterTable("seq2seq", [
    _H("batch_size", "int", 64, range=(1, None), tunable=True,
       tuning_range=(16, 32, 64, 128, 256, 512, 1024, 2048), doc="Sentence pairs per mini-batch."),
    _H("beam_size", "int", 5, range=(1, None), doc="Beam width for BLEU during training and for inference."),
    _H("bleu_sample_size", "int", 0, range=(-1, None),
       doc="Validation sentences decoded for BLEU at each checkpoint; -1 = all, 0 = none."),
    _H("bucket_width", "int", 10, range=(1, None), doc="Step between (source, target) length buckets."),
    _H("bucketing_enabled", "bool", True, doc="false pads every batch to the maximum lengths."),
    _H("checkpoint_frequency_num_batches", "int", 1000, range=(1, None),
       doc="Evaluate on validation and checkpoint every N updates."),
    _H("checkpoint_threshold", "int", 3, range=(1, None),
       doc="Stop after this many checkpoints without improvement of optimized_metric."),
    _H("clip_gradient", "float", 1.0, tunable=True, tuning_range=(1.0, 5.0),
       doc="Clip gradient elements to [-c, c]; negative turns clipping off."),
    _H("cnn_activation_type", "categorical", "glu", choices=("glu", "relu", "softrelu", "sigmoid", "tanh"),
       doc="Activation of the cnn layers."),
    _H("cnn_hidden_dropout", "float", 0.0, range=(0, 1), tunable=True, tuning_range=(0.0, 0.5),
       doc="Dropout before each convolution."),
    _H("cnn_kernel_width_decoder", "int", 5, range=(1, None), doc="Kernel width of the cnn decoder."),
    _H("cnn_kernel_width_encoder", "int", 3, range=(1, None), doc="Kernel width of the cnn encoder."),
    _H("cnn_num_hidden", "int", 512, range=(1, None), tunable=True, tuning_range=(128, 256, 512, 1024, 2048),
       doc="Channels of the cnn encoder and decoder."),
    _H("decoder_type", "categorical", "rnn", choices=("rnn", "cnn"), doc="Decoder architecture."),
    _H("embed_dropout_source", "float", 0.0, range=(0, 1), tunable=True, tuning_range=(0.0, 0.5),
       doc="Dropout on source embeddings."),
    _H("embed_dropout_target", "float", 0.0, range=(0, 1), tunable=True, tuning_range=(0.0, 0.5),
       doc="Dropout on target embeddings."),
    _H("encoder_type", "categorical", "rnn", choices=("rnn", "cnn"), doc="Encoder architecture."),
    _H("fixed_rate_lr_half_life", "int", 10, range=(1, None), tunable=True, tuning_range=(10, 30),
       doc="Half life of the fixed_rate_* schedules, in checkpoints."),
    _H("learning_rate", "float", 0.0003, range=(0, None), tunable=True, tuning_range=(0.00005, 0.2),
       doc="Initial learning rate."),
    _H("loss_type", "categorical", "cross-entropy", choices=("cross-entropy",), doc="Training loss."),
    _H("lr_scheduler_type", "categorical", "plateau_reduce",
       choices=("plateau_reduce", "fixed_rate_inv_t", "fixed_rate_inv_sqrt_t"), tunable=True,
       tuning_range=("plateau_reduce", "fixed_rate_inv_t", "fixed_rate_inv_sqrt_t"), doc="Learning-rate schedule."),
    _H("max_num_batches", "int", -1, range=(-1, None), doc="Maximum updates; -1 = no limit."),
    _H("max_num_epochs", "int", None, range=(1, None),
       doc="When given, train exactly this many epochs (early stopping does not end training)."),
    _H("max_seq_len_source", "int", 100, range=(1, None), doc="Source sequences are cut to this length."),
    _H("max_seq_len_target", "int", 100, range=(1, None), doc="Target sequences are cut to this length."),
    _H("min_num_epochs", "int", 0, range=(0, None), doc="Epochs before early stopping may end training."),
    _H("momentum", "float", None, tunable=True, tuning_range=(0.5, 0.9),
       required_when=("optimizer_type == sgd", lambda v: v["optimizer_type"] == "sgd"),
       doc="Momentum of sgd; not allowed with adam or rmsprop."),
    _H("num_embed_source", "int", 512, range=(1, None), tunable=True, tuning_range=(256, 512),
       doc="Source embedding size."),
    _H("num_embed_target", "int", 512, range=(1, None), tunable=True, tuning_range=(256, 512),
       doc="Target embedding size."),
    _H("num_layers_decoder", "int", 1, range=(1, None), tunable=True, tuning_range=(1, 10), doc="Decoder layers."),
    _H("num_layers_encoder", "int", 1, range=(1, None), tunable=True, tuning_range=(1, 10), doc="Encoder layers."),
    _H("optimized_metric", "categorical", "perplexity", choices=("perplexity", "accuracy", "bleu"),
       doc="Validation metric for early stopping, the best checkpoint and plateau_reduce."),
    _H("optimizer_type", "categorical", "adam", choices=("adam", "sgd", "rmsprop"), tunable=True,
       tuning_range=("adam", "sgd", "rmsprop"), doc="Optimizer."),
    _H("plateau_reduce_lr_factor", "float", 0.5, tunable=True, tuning_range=(0.1, 0.5),
       doc="Learning-rate multiplier of plateau_reduce."),
    _H("plateau_reduce_lr_threshold", "int", 3, range=(1, None), tunable=True, tuning_range=(1, 5),
       doc="Checkpoints without improvement before plateau_reduce lowers the rate."),
    _H("rnn_attention_in_upper_layers", "bool", True, doc="Feed the attention context to upper decoder layers."),
    _H("rnn_attention_num_hidden", "int", None, range=(1, None),
       doc="Attention hidden units; rnn_num_hidden when unset."),
    _H("rnn_attention_type", "categorical", "mlp", choices=("dot", "fixed", "mlp", "bilinear"),
       doc="Attention scoring function."),
    _H("rnn_cell_type", "categorical", "lstm", choices=("lstm", "gru"), doc="Recurrent cell."),
    _H("rnn_decoder_state_init", "categorical", "last", choices=("last", "avg", "zero"),
       doc="Decoder initial state from the encoder: last state, average, or zeros."),
    _H("rnn_first_residual_layer", "int", 2, range=(1, None), doc="First layer (1-based) with a residual."),
    _H("rnn_num_hidden", "int", 1024, range=(2, None), tunable=True, tuning_range=(128, 256, 512, 1024, 2048),
       doc="Hidden units of the rnn encoder and decoder; even (bidirectional encoder)."),
    _H("rnn_residual_connections", "bool", False, doc="Residual connections in stacked rnn layers."),
    _H("rnn_decoder_hidden_dropout", "float", 0.0, range=(0, 1), tunable=True, tuning_range=(0.0, 0.5),
       doc="Dropout on the decoder's attentional hidden state."),
    _H("training_metric", "categorical", "perplexity", choices=("perplexity", "accuracy"),
       doc="Metric reported on the training batches at each checkpoint."),
    _H("weight_decay", "float", 0.0, range=(0, None), tunable=True, tuning_range=(0.0, 0.1),
       doc="L2 weight decay."),
    _H("weight_init_scale", "float", 2.34, tunable=True,
       tuning_range={"xavier": (2.0, 3.0), "uniform": (-1.0, 1.0)},  # the range depends on weight_init_type
       doc="Scale of the xavier or uniform initializer."),
    _H("weight_init_type", "categorical", "xavier", choices=("uniform", "xavier"), tunable=True,
       tuning_range=("xavier", "uniform"), doc="Weight initializer."),
    _H("xavier_factor_type", "categorical", "in", choices=("in", "out", "avg"), doc="Fan of the xavier initializer."),
])

#: Networks with fewer parameters run on one CPU thread under num_threads="auto".
SMALL_NETWORK = 1_000_000
#: Categorical tuning ranges over integers (SageMaker tunes these as CategoricalParameterRange).
_CATEGORICAL_INT_TUNING = ("batch_size", "cnn_num_hidden", "rnn_num_hidden")


def _is_channel(value) -> bool:
    return hasattr(value, "files") and hasattr(value, "path")


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

    Parameters
    ----------
    batch_size, beam_size, bleu_sample_size, bucket_width, bucketing_enabled, ... : SageMaker's 49
        hyperparameters under their exact names and defaults (see ``Seq2Seq.hyperparameters``; each
        entry's ``doc`` says what it does). ``rnn_num_hidden`` must be even for the rnn encoder;
        ``momentum`` goes with ``optimizer_type="sgd"`` only.
    random_state : int, default 0
        sagelocal option: seed of the initial weights, dropout and batch order.
    device : {"auto", "cpu", "cuda"}, default "auto"
        sagelocal option: where the network runs ("auto": CUDA when present). SageMaker's Seq2Seq
        needs a GPU; the CPU is a local extension.
    length_penalty_alpha, length_penalty_beta : float, default 1.0 and 0.0
        sagelocal options: Sockeye's beam-search length penalty ``((beta + L) / (beta + 1)) ** alpha``
        (its defaults; SageMaker exposes none).
    num_threads : int or "auto", default "auto"
        sagelocal option: torch's CPU threads while fitting and predicting, restored afterwards.
        "auto" runs networks under 1M parameters on one thread: their matrices are too small for
        intra-op threads to pay, and on a busy machine spinning threads slow them down many times.

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
    hyperparameters = HYPERPARAMETERS
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
    options = (
        DEVICE_OPTION,
        Hyperparameter("length_penalty_alpha", "float", 1.0, range=(0, None),
                       doc="Beam-search length penalty exponent (Sockeye's default 1.0)."),
        Hyperparameter("length_penalty_beta", "float", 0.0, range=(0, None),
                       doc="Beam-search length penalty constant (Sockeye's default 0.0)."),
        Hyperparameter("num_threads", "int", "auto", range=(1, None), auto=True,
                       doc="CPU threads of torch during fit and predict; auto: 1 for networks under "
                           "1M parameters, torch's setting above."),
    )

    @classmethod
    def _check_hyperparameters(cls, values):
        problems = []
        if values["encoder_type"] == "rnn" and values["rnn_num_hidden"] % 2:
            problems.append(("rnn_num_hidden", f"hyperparameter 'rnn_num_hidden' must be even with the "
                                               f"bidirectional rnn encoder; got {values['rnn_num_hidden']}"))
        if values["momentum"] is not None and values["optimizer_type"] != "sgd":
            problems.append(("momentum", f"hyperparameter 'momentum' applies to optimizer_type 'sgd' only; "
                                         f"got momentum with '{values['optimizer_type']}'"))
        low, high = values["min_num_epochs"], values["max_num_epochs"]
        if high is not None and low > high:
            problems.append(("max_num_epochs", f"hyperparameter 'max_num_epochs' must be >= min_num_epochs "
                                               f"({low}); got {high}"))
        return problems

    @classmethod
    def search_space(cls) -> dict[str, dict[str, Any]]:
        """Tuning ranges; integer lists are categorical and ``weight_init_scale`` takes the xavier range."""
        space = {}
        for hp in cls.hyperparameters:
            if not hp.tunable or hp.tuning_range is None:
                continue
            if hp.kind in ("categorical", "bool") or hp.name in _CATEGORICAL_INT_TUNING:
                space[hp.name] = {"type": "Categorical", "values": list(hp.tuning_range)}
            else:
                # weight_init_scale: the range for the default initializer (uniform's is (-1, 1))
                low, high = hp.tuning_range["xavier"] if isinstance(hp.tuning_range, dict) else hp.tuning_range
                space[hp.name] = {"type": "Integer" if hp.kind == "int" else "Continuous",
                                  "min": low, "max": high, "scaling": hp.tuning_scale}
        return space

    # ----------------------------------------------------------------------------------- fit
    def fit(self, X, y=None, *, validation=None, test=None, vocab=None):
        """Train on pairs of source and target sequences.

        Parameters
        ----------
        X : channel, path, or sequence
            The ``train`` channel (a :class:`sagelocal.io.Channel`, or a RecordIO file or folder), or
            in memory the source sentences (strings of whitespace-separated tokens) or token-id
            sequences.
        y : sequence, optional
            The target sentences or id sequences when ``X`` is in memory.
        validation : channel, path or (sources, targets), optional
            The ``validation`` channel. SageMaker requires it; without it sagelocal evaluates the
            checkpoints on the training pairs and names those metrics ``train:*``.
        test : None
            Seq2Seq has no test channel.
        vocab : channel, path or (source_vocab, target_vocab), optional
            The ``vocab`` channel (a folder holding ``vocab.src.json`` and ``vocab.trg.json``) or two
            token -> id mappings. With sentences and no vocab, vocabularies are built from the
            training sentences as SageMaker's preprocessing script does.

        Returns
        -------
        self
        """
        if test is not None:
            raise ChannelError("seq2seq takes no 'test' channel; channels: train, validation, vocab")
        hp = self._resolve_hyperparameters(None)
        self._options = self.option_table().parse({k: getattr(self, k) for k in self.option_defaults()})
        self._reset()
        self._reporter = MetricReporter(host=self.runtime.host)
        self._hp, self._inverse = hp, None
        self.vocab_source_, self.vocab_target_ = self._vocabularies(vocab, X, y)
        train = self._pairs(X, y, "train", hp)
        if len(train) == 0:
            raise DataFormatError("no training pair has a non-empty source", channel="train")
        held_out = None if validation is None else self._pairs(validation, None, "validation", hp)
        self._train(train, held_out, hp)
        self.hyperparameters_ = hp
        self.metrics_ = dict(self._reporter.metrics)
        return self

    def _train(self, train: PairData, validation: PairData | None, hp: dict) -> None:
        device = self._device()
        seed = self._options["random_state"]
        devices = [device.index or 0] if device.type == "cuda" else []
        net = Seq2SeqNet(hp, len(self.vocab_source_), len(self.vocab_target_))
        initialize(net, hp["weight_init_type"], hp["weight_init_scale"], hp["xavier_factor_type"],
                   torch.Generator().manual_seed(seed))
        net.to(device)
        # fork_rng: dropout draws from torch's global generator; the caller's state is left as it was
        with torch.random.fork_rng(devices=devices), _threads(self._thread_count(net)):
            torch.manual_seed(seed)
            trainer = Trainer(net, hp, device=device, reporter=self._reporter, seed=seed,
                              checkpoint_dir=self.runtime.checkpoint_dir, decode_options=self._decode_options(),
                              split="validation" if validation is not None else "train")
            if validation is None:
                logger.warning("seq2seq: no validation data; checkpoints are evaluated on the training pairs")
            trainer.run(train, validation if validation is not None else train)
        progress = trainer.progress
        self.training_progress_ = {"updates": progress.updates, "epochs": progress.epoch,
                                   "checkpoints": progress.checkpoints, "best_checkpoint": progress.best_checkpoint}
        net.eval()
        self.network_ = net
        self.length_ratio_ = train.length_ratio

    def _device(self) -> torch.device:
        return resolve_device(self.algorithm, self._options["device"])

    def _thread_count(self, net) -> int | None:
        """torch CPU threads for ``net`` (None: leave torch's setting)."""
        chosen = self._options["num_threads"]
        if chosen == "auto":
            small = sum(p.numel() for p in net.parameters()) < SMALL_NETWORK
            return 1 if small and next(net.parameters()).device.type == "cpu" else None
        return chosen

    def _decode_options(self) -> dict[str, float]:
        return {"alpha": self._options["length_penalty_alpha"], "beta": self._options["length_penalty_beta"]}

    # ------------------------------------------------------------------------------- data in
    def _vocabularies(self, vocab, X, y) -> tuple[dict[str, int], dict[str, int]]:
        if vocab is None:
            if _is_channel(X) or isinstance(X, (str, os.PathLike)) or not _is_text(X):
                raise ChannelError("seq2seq needs the 'vocab' channel (vocab.src.json and vocab.trg.json) "
                                   "unless it trains on sentences")
            if y is None or not _is_text(y):
                raise DataFormatError("with source sentences, y must hold the target sentences", channel="train")
            return build_vocab(X), build_vocab(y)
        if _is_channel(vocab) or isinstance(vocab, (str, os.PathLike)):
            src, trg = find_vocab_files(vocab.path if _is_channel(vocab) else vocab)
            return read_vocab(src), read_vocab(trg)
        if isinstance(vocab, Sequence) and len(vocab) == 2:
            return check_vocab(vocab[0], "vocab[0] (source)"), check_vocab(vocab[1], "vocab[1] (target)")
        raise DataFormatError(f"vocab must be a channel, a folder or a (source, target) pair of mappings; got "
                              f"{type(vocab).__name__}", channel="vocab")

    def _pairs(self, X, y, name: str, hp: dict) -> PairData:
        if _is_channel(X):
            if getattr(X, "input_mode", "File") == "Pipe":
                raise ChannelError(f"channel '{name}': seq2seq reads File mode only (SageMaker's Seq2Seq "
                                   f"supports no Pipe mode)")
            sources, targets = read_pair_files(X.files(), name)
        elif isinstance(X, (str, os.PathLike)):
            from ...io.channel import Channel

            sources, targets = read_pair_files(Channel(X, name=name).files(), name)
        else:
            if y is None and isinstance(X, tuple) and len(X) == 2:
                X, y = X
            if y is None or len(X) != len(y):
                raise DataFormatError(f"in-memory {name} data needs as many targets as sources; got "
                                      f"{len(X)} sources and {'no' if y is None else len(y)} targets", channel=name)
            sources = self._ids(X, self.vocab_source_, name, "source")
            targets = self._ids(y, self.vocab_target_, name, "target")
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
        with _threads(self._thread_count(self.network_)):
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
            out[:] = [" ".join(inverse[i] for i in t) for t in hyps.tokens]
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
                record = {"target": " ".join(inverse[t] for t in hyps.tokens[i])}
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
        arrays = {f"network.{name}": tensor.detach().cpu().numpy()
                  for name, tensor in self.network_.state_dict().items()}
        meta = {"vocab_source": self.vocab_source_, "vocab_target": self.vocab_target_,
                "length_ratio": list(self.length_ratio_), "metrics": self.metrics_}
        return arrays, meta

    def _set_state(self, arrays, meta):
        self.vocab_source_ = check_vocab(meta["vocab_source"], "model vocab_source")
        self.vocab_target_ = check_vocab(meta["vocab_target"], "model vocab_target")
        self.length_ratio_ = tuple(meta.get("length_ratio", (1.0, 0.0)))
        self._inverse = None
        self._options = self.option_table().parse({k: getattr(self, k) for k in self.option_defaults()})
        net = Seq2SeqNet(self._hp, len(self.vocab_source_), len(self.vocab_target_))
        state = {name[len("network."):]: torch.from_numpy(np.ascontiguousarray(value))
                 for name, value in arrays.items() if name.startswith("network.")}
        net.load_state_dict(state)
        self.network_ = net.to(self._device()).eval()


@contextmanager
def _threads(count: int | None):
    """torch's intra-op CPU threads set to ``count`` inside the block (None: unchanged), then restored."""
    if count is None or count == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
