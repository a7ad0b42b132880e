"""BlazingText's declarations: SageMaker's hyperparameters, sagelocal's options and the rules between them.

The estimator's docstring parameter list is generated from these tables (their ``doc=``).
"""

from __future__ import annotations

from ...base.device import DEVICE_OPTION
from ...base.hyperparameters import REQUIRED, Hyperparameter, HyperparameterTable

#: The modes trained by gensim, and the only ones with character n-grams (``subwords``).
GENSIM_MODES = ("cbow", "skipgram")

HYPERPARAMETERS = HyperparameterTable("blazingtext", [
    Hyperparameter("mode", "categorical", REQUIRED, choices=("cbow", "skipgram", "batch_skipgram", "supervised"),
                   tunable=True, tuning_range=("batch_skipgram", "skipgram", "cbow"),
                   doc="Word2Vec architecture (cbow, skipgram, batch_skipgram) or the supervised classifier."),
    Hyperparameter("batch_size", "int", 11, range=(1, None), tunable=True, tuning_range=(8, 32),
                   doc="batch_skipgram: context words of one target that share its negative samples."),
    Hyperparameter("buckets", "int", 2000000, range=(1, None), tunable=True, tuning_range=(1000000, 10000000),
                   doc="Hash buckets of character n-grams (cbow/skipgram with subwords) or word n-grams "
                       "(supervised)."),
    Hyperparameter("epochs", "int", 5, range=(1, None), tunable=True, tuning_range=(5, 15),
                   doc="Passes over the corpus (supervised: the maximum with early stopping)."),
    Hyperparameter("evaluation", "bool", True,
                   doc="Word2Vec: score the vectors on WordSimilarity-353, write ``eval.json`` and report "
                       "``train:mean_rho``."),
    Hyperparameter("learning_rate", "float", 0.05, range=(0, None), closed=(False, True), tunable=True,
                   tuning_range=(0.005, 0.01), doc="Initial step size, decayed linearly."),
    Hyperparameter("min_char", "int", 3, range=(1, None), doc="Shortest character n-gram (subwords=true)."),
    Hyperparameter("max_char", "int", 6, range=(1, None), doc="Longest character n-gram (subwords=true)."),
    Hyperparameter("min_count", "int", 5, range=(0, None), tunable=True, tuning_range=(0, 100),
                   doc="Words seen fewer times are dropped from the vocabulary."),
    Hyperparameter("negative_samples", "int", 5, range=(1, None), tunable=True, tuning_range=(5, 25),
                   doc="Negative samples per positive (Word2Vec)."),
    # the notes call it a positive fraction: 0 is refused, 1 allowed
    Hyperparameter("sampling_threshold", "float", 0.0001, range=(0, 1), closed=(False, True), tunable=True,
                   tuning_range=(0.0001, 0.001), doc="Down-sampling threshold of frequent words."),
    Hyperparameter("subwords", "bool", False,
                   doc="cbow/skipgram: learn character n-gram vectors (out-of-vocabulary words get vectors)."),
    Hyperparameter("vector_dim", "int", 100, range=(1, None), tunable=True, tuning_range=(32, 300),
                   doc="Size of the word vectors (supervised: of the embedding layer)."),
    Hyperparameter("window_size", "int", 5, range=(1, None), tunable=True, tuning_range=(1, 10),
                   doc="Context words on each side of the target (Word2Vec)."),
    Hyperparameter("early_stopping", "bool", False,
                   doc="supervised: stop when validation accuracy stalls for `patience` epochs (needs the "
                       "validation channel; the last epoch's model is kept)."),
    Hyperparameter("min_epochs", "int", 5, range=(1, None), doc="supervised: epochs before early stopping applies."),
    Hyperparameter("patience", "int", 4, range=(1, None), doc="supervised: epochs without gain before stopping."),
    Hyperparameter("word_ngrams", "int", 2, range=(1, None), tunable=True, tuning_range=(1, 3),
                   doc="supervised: longest word n-gram feature (1 = words only)."),
])

#: sagelocal's own options (never written to hyperparameters.json).
OPTIONS = (
    DEVICE_OPTION,
    Hyperparameter("threads", "int", "auto", range=(1, None), auto=True,
                   doc="cbow/skipgram: gensim worker threads ('auto': every core; the models repeat exactly "
                       "for a random_state only with 1)."),
    Hyperparameter("lines_per_step", "int", "auto", range=(1, None), auto=True,
                   doc="supervised: lines per SGD step (fastText takes one at a time; 'auto': n_lines // 256 "
                       "clipped to 1..128)."),
    Hyperparameter("targets_per_step", "int", "auto", range=(1, None), auto=True,
                   doc="batch_skipgram: target words per step ('auto': 32 on the CPU, 1024 on CUDA)."),
)

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


def check_hyperparameters(values: dict) -> list[tuple[str, str]]:
    """The rules between hyperparameters: keys of other modes left at their defaults, min_char <= max_char."""
    problems = []
    mode = values["mode"]
    # the notes ask to validate keys per mode: a non-default value of a key the mode ignores is refused
    for hp in HYPERPARAMETERS:
        if hp.name not in MODE_KEYS[mode] and values[hp.name] != hp.default:
            modes = ", ".join(m for m in MODE_KEYS if hp.name in MODE_KEYS[m])
            problems.append((hp.name, f"hyperparameter '{hp.name}' does not apply to mode '{mode}'; "
                                      f"it applies to {modes}"))
    if mode in GENSIM_MODES and values["subwords"] and values["min_char"] > values["max_char"]:
        problems.append(("max_char", f"hyperparameter 'max_char' must be >= min_char ({values['min_char']}); "
                                     f"got {values['max_char']}"))
    return problems
