"""DeepAR: SageMaker's probabilistic forecaster (``forecasting-deepar`` image; the SDK has no class).

One global autoregressive LSTM is trained on random windows from many related series (see
:mod:`.network`) and forecasts by ancestral sampling; predictions are sample paths summarised into
the mean and quantiles, in SageMaker's request and response formats (see :mod:`.inference`).

Training data are series records (``start``, ``target`` with ``null``/``"NaN"`` for gaps, optional
``cat`` and ``dynamic_feat``): a list of dicts, a JSON lines / Parquet file or folder, or a channel.
An *epoch* draws, uniformly over every (series, forecast start) pair with a full prediction range
ahead, as many windows as it takes to cover the training observations once
(``sum(len(target)) / (context_length + prediction_length)``, at least one per series), in
mini-batches of ``mini_batch_size``; the guide only says "passes over the training data".
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from ...base.device import DEVICE_OPTION, resolve_device
from ...base.errors import DataFormatError
from ...base.estimator import Estimator
from ...base.hyperparameters import Hyperparameter
from ...base.registry import register
from ...base.torch_layer import KeepBest, load_module_arrays, module_arrays, seeded
from ...base.training import EarlyStopping, Metric
from ...io import is_channel
from .data import FlatPanel, SeriesPanel, SeriesSource, mean_abs_scale, parse_series, records_of, series_channel
from .features import Frequency
from .hyperparameters import HYPERPARAMETERS
from .inference import CONFIG_VARIABLE, Configuration, forecast_records, rmse, weighted_quantile_loss
from .likelihoods import LIKELIHOODS
from .network import DeepARNetwork
from .trainer import Trainer

logger = logging.getLogger("sagelocal")

#: SageMaker's guard: "Total observations across training series must be at least 300."
MIN_OBSERVATIONS = 300
#: How ``lags_`` is chosen, recorded in the artifact (see :func:`reachable_lags`); artifacts without it
#: list every lag of ``time_freq``.
LAG_RULE = "reachable"
#: Sample paths forecast together (series x samples) to bound memory.
SAMPLE_CHUNK = 32768


@register
class DeepAR(Estimator):
    """DeepAR forecasting with SageMaker's hyperparameters and inference formats.

    Parameters
    ----------
    context_length, epochs, prediction_length : int
        Required; see SageMaker's guide.
    time_freq : str
        Required: ``"M"``, ``"W"``, ``"D"``, ``"H"``, ``"min"`` with an optional multiple (``"5min"``).
    cardinality : "auto", "ignore", "" or list of int, default "auto"
    dropout_rate : float, default 0.1
    early_stopping_patience : int, optional
    embedding_dimension : int, default 10
    learning_rate : float, default 0.001
    likelihood : {"student-T", "gaussian", "beta", "negative-binomial", "deterministic-L1"}
    mini_batch_size : int, default 128
    num_cells : int, default 40
    num_dynamic_feat : "auto", "ignore", "" or int, default "auto"
    num_eval_samples : int, default 100
    num_layers : int, default 2
    test_quantiles : list of float, default [0.1, ..., 0.9]
    random_state : int, default 0
        sagelocal option: seed of initialisation, window sampling, zoneout and forecast sampling.
    device : {"auto", "cpu", "cuda"}, default "auto"
        sagelocal option: where the network runs ("auto": CUDA when available).
    num_batches_per_epoch : int or "auto", default "auto"
        sagelocal option: mini-batches per epoch; "auto" covers the observations once (module docstring).

    Attributes
    ----------
    network_ : the trained :class:`~.network.DeepARNetwork`
    cardinality_ : list of int, categories per cat feature used (empty: none)
    num_dynamic_feat_ : int, dynamic features used
    lags_ : list of int, the lags used: those of ``time_freq`` that the training data reach
        (see :func:`reachable_lags`)
    metrics_ : dict, ``train:final_loss``, ``test:RMSE``, ``test:mean_wQuantileLoss``, ...
    """

    algorithm = "forecasting-deepar"
    sdk_class = None
    hyperparameters = HYPERPARAMETERS
    channels = {"train": True, "test": False}
    # The guide's short names; ``json`` / ``json.gz`` are chosen by file extension (see data.file_format).
    training_content_types = ("application/jsonlines", "parquet")
    default_label_size = 0
    metrics = (Metric("test:RMSE"), Metric("test:mean_wQuantileLoss"), Metric("train:final_loss"))
    response_key = "predictions"
    request_content_types = ("application/json", "application/jsonlines")
    response_content_types = ("application/json", "application/jsonlines")
    options = (
        DEVICE_OPTION,
        Hyperparameter("num_batches_per_epoch", "int", "auto", range=(1, None), auto=True,
                       doc="Mini-batches per epoch; 'auto' covers the training observations once."),
    )

    serving_variables = (CONFIG_VARIABLE,)

    # ----------------------------------------------------------------------------------- fit
    def _as_source(self, data, y, name: str):
        """Series records for channel ``name``; ``test`` series are scored on their last ``prediction_length``
        steps. ``fit``'s ``X`` and ``test`` take a list of record dicts, a DataFrame of records, a path to a
        JSON lines / Parquet file or folder, or a :class:`sagelocal.io.Channel`."""
        if y is not None:
            raise DataFormatError("DeepAR learns from the target series themselves; do not pass y", channel="train")
        return _as_series_source(data, name)

    def _fit(self, train, validation, test, hp):
        self.frequency_ = Frequency.parse(hp["time_freq"])
        self.likelihood_ = LIKELIHOODS[hp["likelihood"]]()
        panel = parse_series(records_of(train, "train"), channel="train")
        self._check_training_panel(panel, hp)
        self.lags_ = reachable_lags(self.frequency_.lags(), panel, hp["prediction_length"])
        self.cardinality_, self.num_dynamic_feat_ = self._resolve_features(panel, hp)
        self.default_scale_ = mean_abs_scale(panel) if self.likelihood_.scaled else 1.0
        self._device = resolve_device(self.algorithm, self._options["device"])
        with seeded(self._options["random_state"], self._device):
            self.network_ = self._build_network().to(self._device)
            trainer = Trainer(self, panel, hp)
            patience = hp["early_stopping_patience"]
            # with early stopping the model of the lowest training loss is kept (SageMaker's rule)
            keep = None if patience is None else KeepBest(self.network_, "train:loss")
            loop = self._training_loop(epochs=hp["epochs"], batch_size=hp["mini_batch_size"], keep_best=keep,
                                       early_stopping=None if patience is None else EarlyStopping("train:loss",
                                                                                                  patience))
            self.epochs_run_ = loop.run(trainer, trainer)
        self.network_.eval()
        # the training loss of the epoch whose model is kept: the lowest with early stopping, else the last
        kept = keep is not None and keep.weights is not None
        self._reporter.report("train:final_loss", keep.value if kept else trainer.last_loss)
        if test is not None:
            self._evaluate(test, hp)

    def _check_training_panel(self, panel: SeriesPanel, hp) -> None:
        observed = panel.observed_count()
        if observed < MIN_OBSERVATIONS:
            raise DataFormatError(f"DeepAR needs at least {MIN_OBSERVATIONS} observed target values across the "
                                  f"training series; got {observed} in {len(panel)} series", channel="train")
        if not (panel.lengths >= hp["prediction_length"]).any():
            raise DataFormatError(f"every training series is shorter than prediction_length "
                                  f"({hp['prediction_length']}), so none can be trained on", channel="train")
        values = np.concatenate(panel.targets)
        problem = self.likelihood_.check_targets(values[~np.isnan(values)])
        if problem:
            raise DataFormatError(f"likelihood '{hp['likelihood']}' needs {problem}", channel="train")

    def _resolve_features(self, panel: SeriesPanel, hp) -> tuple[list[int], int]:
        """Cardinalities and dynamic-feature count from the switches and the data (checked)."""
        cardinality, wanted_dyn = hp["cardinality"], hp["num_dynamic_feat"]
        found_cat = 0 if panel.cats is None else panel.cats.shape[1]
        if cardinality in ("ignore", ""):
            cards: list[int] = []
        else:
            inferred = [] if panel.cats is None else (panel.cats.max(axis=0) + 1).tolist()
            cards = inferred if cardinality == "auto" else list(cardinality)
            if len(cards) != found_cat:
                raise DataFormatError(f"hyperparameter 'cardinality' lists {len(cards)} cat features but the "
                                      f"series have {found_cat}", channel="train")
            too_big = [k for k in range(found_cat) if inferred[k] > cards[k]]
            if too_big:
                k = too_big[0]
                raise DataFormatError(f"cat feature {k} has code {inferred[k] - 1} but hyperparameter 'cardinality' "
                                      f"allows 0..{cards[k] - 1}", channel="train")
        found_dyn = 0 if panel.dynamic is None else len(panel.dynamic[0])
        if wanted_dyn in ("ignore", ""):
            return cards, 0
        if wanted_dyn != "auto" and wanted_dyn != found_dyn:
            raise DataFormatError(f"hyperparameter 'num_dynamic_feat' is {wanted_dyn} but the series have "
                                  f"{found_dyn} dynamic_feat", channel="train")
        short = [i for i, (d, t) in enumerate(zip(panel.dynamic or [], panel.targets)) if d.shape[1] < len(t)]
        if found_dyn and short:
            i = short[0]
            raise DataFormatError(f"record {i}: each dynamic_feat must be at least as long as target "
                                  f"({len(panel.targets[i])}); got {panel.dynamic[i].shape[1]}", channel="train")
        return cards, found_dyn

    def _build_network(self) -> DeepARNetwork:
        hp = self._hp
        return DeepARNetwork(lags=self.lags_, num_features=len(self.frequency_.feature_names) + self.num_dynamic_feat_,
                             cardinality=self.cardinality_, embedding_dimension=hp["embedding_dimension"],
                             num_cells=hp["num_cells"], num_layers=hp["num_layers"],
                             dropout_rate=hp["dropout_rate"], likelihood=self.likelihood_)

    def _flat(self, panel: SeriesPanel, future: int) -> FlatPanel:
        return FlatPanel(panel, self.frequency_, pad=max(self.lags_) + self._hp["context_length"], future=future,
                         num_dynamic=self.num_dynamic_feat_, use_cat=bool(self.cardinality_), device=self._device)

    # ------------------------------------------------------------------------------ evaluation
    def _evaluate(self, test, hp) -> None:
        """Hide the last prediction_length points of every test series and score their forecast."""
        horizon = hp["prediction_length"]
        panel = parse_series(records_of(test, "test"), channel="test")
        keep = panel.lengths >= horizon
        if not keep.any():
            raise DataFormatError(f"every test series is shorter than prediction_length ({horizon})", channel="test")
        if not keep.all():
            logger.warning("test: %d series shorter than prediction_length are not scored", int((~keep).sum()))
        panel = panel.subset(keep)
        truth = np.stack([t[len(t) - horizon:] for t in panel.targets]).astype(np.float64)
        history = SeriesPanel([t[:len(t) - horizon] for t in panel.targets], panel.starts, panel.cats,
                              None if panel.dynamic is None else [d[:, :len(t)] for d, t in
                                                                  zip(panel.dynamic, panel.targets)])
        samples = self._sample(self._inference_panel(history, "test"), hp["num_eval_samples"])
        self._reporter.report("test:RMSE", rmse(truth, samples.mean(axis=1)))
        levels = hp["test_quantiles"]
        quantiles = np.quantile(samples, levels, axis=1)
        losses = [weighted_quantile_loss(truth, quantiles[k], level) for k, level in enumerate(levels)]
        for level, loss in zip(levels, losses):
            self._reporter.report(f"test:wQuantileLoss[{level}]", loss)
        self._reporter.report("test:mean_wQuantileLoss", float(np.mean(losses)))

    # ------------------------------------------------------------------------------- predict
    def _inference_panel(self, panel: SeriesPanel, what: str = "instance") -> SeriesPanel:
        """Check requests against what the model was trained with; drop ignored features."""
        n_cat = len(self.cardinality_)
        if n_cat:
            if panel.cats is None or panel.cats.shape[1] != n_cat:
                found = 0 if panel.cats is None else panel.cats.shape[1]
                raise DataFormatError(f"the model was trained with {n_cat} cat features; every {what} must send "
                                      f"'cat' with {n_cat} codes (got {found})")
            bad = np.argwhere(panel.cats >= np.asarray(self.cardinality_))
            if len(bad):
                i, k = bad[0]
                raise DataFormatError(f"{what} {i}: cat feature {k} is {panel.cats[i, k]}, a category not seen in "
                                      f"training (0..{self.cardinality_[k] - 1})")
        elif panel.cats is not None and self._hp["cardinality"] not in ("ignore", ""):
            raise DataFormatError(f"the model was trained without cat features; remove 'cat' from the {what}s")
        n_dyn = self.num_dynamic_feat_
        if n_dyn:
            self._check_dynamic(panel, what)
        elif panel.dynamic is not None and self._hp["num_dynamic_feat"] not in ("ignore", ""):
            raise DataFormatError(f"the model was trained without dynamic_feat; remove it from the {what}s")
        return SeriesPanel(panel.targets, panel.starts, panel.cats if n_cat else None,
                           panel.dynamic if n_dyn else None)

    def _check_dynamic(self, panel: SeriesPanel, what: str) -> None:
        n_dyn, horizon = self.num_dynamic_feat_, self._hp["prediction_length"]
        if panel.dynamic is None or panel.dynamic[0].shape[0] != n_dyn:
            found = 0 if panel.dynamic is None else panel.dynamic[0].shape[0]
            raise DataFormatError(f"the model was trained with {n_dyn} dynamic_feat; every {what} must send "
                                  f"{n_dyn} (got {found})")
        for i, (dyn, target) in enumerate(zip(panel.dynamic, panel.targets)):
            if dyn.shape[1] < len(target) + horizon:
                raise DataFormatError(f"{what} {i}: each dynamic_feat must cover the target and the forecast, "
                                      f"len(target) + prediction_length = {len(target) + horizon} values; "
                                      f"got {dyn.shape[1]}")

    def _sample(self, panel: SeriesPanel, num_samples: int) -> np.ndarray:
        """Sample paths (series, num_samples, prediction_length) as float64, reproducible per seed."""
        hp = self._hp
        context, horizon = hp["context_length"], hp["prediction_length"]
        if len(panel) == 0:
            return np.zeros((0, num_samples, horizon))
        flat = self._flat(panel, future=horizon)
        chunk = max(1, SAMPLE_CHUNK // num_samples)
        self.network_.eval()
        parts = []
        # the current random_state, so that set_params(random_state=...) applies to a fitted model
        seed = self.option_table().parse({"random_state": self.random_state})["random_state"]
        with seeded(seed, self._device):
            for start in range(0, len(panel), chunk):
                series = np.arange(start, min(start + chunk, len(panel)))
                windows = flat.windows(series, flat.lengths[series], before=max(self.lags_) + context, after=horizon)
                paths = self.network_.sample(windows, context, horizon, num_samples, self.default_scale_)
                parts.append(paths.double().cpu().numpy())
        return np.concatenate(parts)

    def _series(self, X, what: str = "instance") -> SeriesPanel:
        self._check_fitted()
        if isinstance(X, dict):
            X = [X]
        source = _as_series_source(X, "inference")
        return self._inference_panel(parse_series(records_of(source, "inference"), what=what), what)

    def sample_paths(self, X, num_samples: int = 100) -> np.ndarray:
        """Forecast sample paths, shape (series, num_samples, prediction_length), for series records ``X``."""
        return self._sample(self._series(X), Configuration.parse({"num_samples": num_samples}).num_samples)

    def predict(self, X) -> np.ndarray:
        """Mean forecasts (series, prediction_length) over 100 sample paths, as the endpoint's ``mean``."""
        return self.sample_paths(X, 100).mean(axis=1)

    def predict_records(self, X, configuration: dict[str, Any] | Configuration | None = None,
                        **options) -> list[dict[str, Any]]:
        """SageMaker's predictions for series records ``X`` (the request's ``instances``).

        ``configuration`` is the request's object (num_samples, output_types, quantiles); absent keys
        take the defaults (100 samples, mean and quantiles 0.1..0.9). Returns one dict per series with
        the requested keys, e.g. ``{"quantiles": {"0.5": [...]}, "mean": [...]}``.
        """
        if options:
            raise DataFormatError(f"unknown request option(s) {', '.join(sorted(options))}; DeepAR takes "
                                  f"'configuration' (num_samples, output_types, quantiles)")
        config = Configuration.parse(configuration)
        return forecast_records(self._sample(self._series(X), config.num_samples), config)

    def _records(self, samples: np.ndarray) -> list[dict[str, Any]]:
        """Predictions of sample paths under the default configuration (no Accept options apply)."""
        return forecast_records(samples, Configuration.parse(None))

    def _serving_input(self, request):
        """Instances and configuration of a JSON / JSON lines request (serving's hook).

        A request without a ``configuration`` object (JSON lines, batch transform) takes the one in
        ``DEEPAR_INFERENCE_CONFIG`` (read once, see :meth:`configure_serving`), or the defaults when that is
        unset.
        """
        configuration = getattr(request, "configuration", None)
        if configuration is None:
            configuration = Configuration.from_environment(self.serving_environment)
        return request.instances, {"configuration": configuration}

    def predict_request(self, body: dict[str, Any]) -> dict[str, Any]:
        """The JSON response to a parsed JSON request ``{"instances": [...], "configuration": {...}}``."""
        if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
            raise DataFormatError("a DeepAR request must be a JSON object with an 'instances' list of series")
        return {self.response_key: self.predict_records(body["instances"], body.get("configuration"))}

    # ------------------------------------------------------------------------------ artifacts
    def _get_state(self):
        arrays = module_arrays(self.network_)
        meta = {"lags": self.lags_, "lag_rule": LAG_RULE, "frequency_lags": self.frequency_.lags(),
                "cardinality": self.cardinality_, "num_dynamic_feat": self.num_dynamic_feat_,
                "default_scale": self.default_scale_, "features": list(self.frequency_.feature_names),
                "epochs_run": self.epochs_run_, "metrics": self.metrics_}
        return arrays, meta

    def _set_state(self, arrays, meta):
        self.frequency_ = Frequency.parse(self._hp["time_freq"])
        # the lags the network was built with; artifacts from before the lag rule list every lag of time_freq
        self.lags_ = [int(lag) for lag in meta["lags"]]
        self.likelihood_ = LIKELIHOODS[self._hp["likelihood"]]()
        self.cardinality_ = [int(c) for c in meta["cardinality"]]
        self.num_dynamic_feat_ = int(meta["num_dynamic_feat"])
        self.default_scale_ = float(meta["default_scale"])
        self.epochs_run_ = int(meta.get("epochs_run", 0))
        self._options = self.option_table().parse({k: getattr(self, k) for k in self.option_defaults()})
        self._device = resolve_device(self.algorithm, self._options["device"])
        network = self._build_network()
        load_module_arrays(network, arrays)
        self.network_ = network.to(self._device)


def reachable_lags(lags: list[int], panel: SeriesPanel, prediction_length: int) -> list[int]:
    """The lags of ``lags`` that training windows read real history through (rule :data:`LAG_RULE`).

    Windows are padded with zeros before a series' first observed value, so a lag that reaches back
    further than any training series never carries a value in training: its input weights keep their
    initial values, and at forecast time, reading real history for the first time, it shifts the
    forecast. A lag is kept when at least one training window reads an observed-or-filled value
    through it at every step of its prediction range: ``lag <= n - prediction_length`` for the longest
    trainable series, ``n`` counted from its first observed value. Lag 1 is always kept.
    """
    reach = 0
    for target in panel.targets:
        if len(target) < prediction_length:
            continue  # skipped in training
        observed = np.flatnonzero(~np.isnan(target))
        if observed.size:
            reach = max(reach, len(target) - int(observed[0]) - prediction_length)
    return [lag for lag in lags if lag <= reach or lag == 1]


def _as_series_source(X, name: str):
    """What ``fit`` / ``predict`` were given, as a source of series records."""
    if X is None or is_channel(X) or isinstance(X, SeriesSource):
        return X
    if isinstance(X, (str, bytes)) or hasattr(X, "__fspath__"):
        return series_channel(os.fsdecode(X), name)
    if hasattr(X, "to_dict") and hasattr(X, "columns"):  # a pandas DataFrame of records
        return SeriesSource(X.to_dict(orient="records"), name)
    if isinstance(X, (list, tuple)):
        return SeriesSource(list(X), name)
    raise DataFormatError(f"{name}: DeepAR takes series records (a list of dicts with 'start' and 'target'), a "
                          f"JSON lines / Parquet path or a channel; got {type(X).__name__}", channel=name)

