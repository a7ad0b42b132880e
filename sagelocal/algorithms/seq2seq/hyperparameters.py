"""Seq2Seq's declarations: SageMaker's 49 hyperparameters, sagelocal's options and the rules between them.

The estimator's docstring parameter list is generated from these tables (their ``doc=``).
"""

from __future__ import annotations

from typing import Any

from ...base.device import DEVICE_OPTION
from ...base.hyperparameters import Hyperparameter, HyperparameterTable
from ...base.torch_layer import THREADS_OPTION

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

#: sagelocal's own options (never written to hyperparameters.json).
OPTIONS = (
    DEVICE_OPTION,
    Hyperparameter("length_penalty_alpha", "float", 1.0, range=(0, None),
                   doc="Beam-search length penalty exponent: Sockeye's ((beta + L) / (beta + 1)) ** alpha, "
                       "its default 1.0 (SageMaker exposes none)."),
    Hyperparameter("length_penalty_beta", "float", 0.0, range=(0, None),
                   doc="Beam-search length penalty constant (Sockeye's default 0.0)."),
    THREADS_OPTION,
)

#: Categorical tuning ranges over integers (SageMaker tunes these as CategoricalParameterRange).
_CATEGORICAL_INT_TUNING = ("batch_size", "cnn_num_hidden", "rnn_num_hidden")


def check_hyperparameters(values: dict) -> list[tuple[str, str]]:
    """The rules between hyperparameters: an even ``rnn_num_hidden`` for the bidirectional encoder,
    ``momentum`` with sgd only, ``min_num_epochs <= max_num_epochs``."""
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


def search_space() -> dict[str, dict[str, Any]]:
    """Tuning ranges; integer lists are categorical and ``weight_init_scale`` takes the xavier range."""
    space = {}
    for hp in HYPERPARAMETERS:
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
