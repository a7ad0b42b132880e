"""The estimator base every algorithm shares.

An algorithm subclass declares, as class attributes, its SageMaker name, its
:class:`~sagelocal.base.hyperparameters.HyperparameterTable`, its channels, metrics and response
key, and implements a few private hooks (``_fit``, ``_predict``, ``_records``, ``_get_state``,
``_set_state``). The base derives from the declarations the scikit-learn constructor contract
(keyword arguments = SageMaker's hyperparameter names, ``get_params``/``set_params``/``clone``),
validation, ``fit``/``predict``/``predict_records``, metrics and ``save``/``load``.
"""

from __future__ import annotations

import copy
import inspect
import keyword
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from .batch import Batch, _as_features, as_source
from .errors import DataFormatError, HyperparameterError, NotFittedError
from .hyperparameters import Hyperparameter, HyperparameterTable
from .runtime import Runtime
from .training import Metric, MetricReporter, TrainingLoop, metric_regex


class _BeforeData:
    """The ``train`` that :meth:`Estimator._resolve_hyperparameters` gets before any data is there."""

    def __repr__(self) -> str:
        return "BEFORE_DATA"


#: Passed as ``train`` by :meth:`Estimator.validate_hyperparameters` (the factory, ``from_sagemaker``).
BEFORE_DATA = _BeforeData()


class _DataProbe:
    """A stand-in training source showing which values ``_fill_from_data`` takes from the data."""

    feature_dim = 1
    n_rows = 1

    def __getattr__(self, name):
        return None


#: Keyword options every estimator takes besides SageMaker's hyperparameters. They are sagelocal's
#: own, never written to hyperparameters.json, and declared like hyperparameters.
COMMON_OPTIONS: tuple[Hyperparameter, ...] = (
    Hyperparameter("random_state", "int", 0, range=(0, None),
                   doc="Seed of every random choice; fixed by default so that local runs repeat."),
    Hyperparameter("progress", "bool", "auto", auto=True,
                   doc="Show a training progress bar: 'auto' when standard error is a terminal."),
)


class Estimator(BaseEstimator):
    """Base class of the sagelocal algorithms (see the module docstring)."""

    #: SageMaker's image name of the algorithm, e.g. ``"pca"``.
    algorithm: ClassVar[str] = ""
    #: The SageMaker Python SDK v2 class name, e.g. ``"PCA"`` (registered as an alias).
    sdk_class: ClassVar[str | None] = None
    #: The hyperparameter declarations.
    hyperparameters: ClassVar[HyperparameterTable]
    #: Channel name -> required.
    channels: ClassVar[dict[str, bool]] = {"train": True}
    #: Training content types accepted, the first being the default when a channel names none.
    training_content_types: ClassVar[tuple[str, ...]] = ("application/x-recordio-protobuf", "text/csv")
    #: Channels the algorithm reads itself as plain folders (e.g. Seq2Seq's ``vocab`` JSON files): the
    #: container checks no content type for them.
    raw_channels: ClassVar[tuple[str, ...]] = ()
    #: CSV ``label_size`` when the content type does not give one (0 for unsupervised algorithms).
    default_label_size: ClassVar[int] = 1
    #: Metrics the algorithm can report.
    metrics: ClassVar[tuple[Metric, ...]] = ()
    #: Top-level key of the JSON inference response (``predictions``, ``projections``, ...).
    response_key: ClassVar[str] = "predictions"
    #: Inference request content types the endpoint accepts (spec ``request_content_types``).
    request_content_types: ClassVar[tuple[str, ...]] = (
        "text/csv", "application/json", "application/x-recordio-protobuf")
    #: Inference response content types the endpoint answers in (spec ``response_accept_types``).
    response_content_types: ClassVar[tuple[str, ...]] = (
        "application/json", "application/jsonlines", "application/x-recordio-protobuf")
    #: Serving: the Accept used when a request names none or ``*/*`` (the container's default).
    default_accept: ClassVar[str] = "application/json"
    #: Serving: the Content-Type assumed when a request names none (None: refused with HTTP 415).
    default_content_type: ClassVar[str | None] = None
    #: Serving: media type -> request codec class replacing the standard one (sagelocal.io.codecs).
    request_codecs: ClassVar[dict[str, type]] = {}
    #: Serving: media type -> response codec class replacing the standard one (sagelocal.io.codecs).
    response_codecs: ClassVar[dict[str, type]] = {}
    #: Serving: the environment variables the algorithm reads (once, in :meth:`configure_serving`).
    serving_variables: ClassVar[tuple[str, ...]] = ()
    #: Version of this algorithm's artifact payload layout.
    artifact_format: ClassVar[int] = 1
    #: sagelocal-only keyword options of this algorithm (added to COMMON_OPTIONS).
    options: ClassVar[tuple[Hyperparameter, ...]] = ()

    #: Where the job runs (host name, checkpoint folder); the container sets it per instance.
    runtime: Runtime = Runtime()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "hyperparameters" in cls.__dict__:
            cls.__init__ = _make_init(cls)
            cls.__doc__ = with_parameter_section(cls.__doc__, [*cls.hyperparameters, *cls.option_table()])

    # --------------------------------------------------------------------------- construction
    @classmethod
    def option_table(cls) -> HyperparameterTable:
        """The sagelocal-only options, validated like hyperparameters."""
        return HyperparameterTable(cls.algorithm, [*COMMON_OPTIONS, *cls.options])

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        return cls.option_table().defaults()

    @classmethod
    def from_sagemaker(cls, hyperparameters: Mapping[str, Any], **options) -> Estimator:
        """Build from a ``hyperparameters.json`` dict, strictly, as the algorithm container does.

        Every value is parsed by its declared kind, unknown names and missing required ones are
        reported together in one :class:`HyperparameterError`; then every rule ``fit`` runs before it
        reads data (those combining parameters, the options') runs too
        (:meth:`validate_hyperparameters`).
        """
        hyperparameters = cls.hyperparameters.canonical(hyperparameters)
        parsed = cls.hyperparameters.parse(hyperparameters, require=True,
                                           check=cls._check_hyperparameters)
        given = {name: parsed[name] for name in cls.hyperparameters.names if name in hyperparameters}
        estimator = cls(**given, **options)
        estimator.validate_hyperparameters()
        return estimator

    def validate_hyperparameters(self) -> None:
        """Run now every hyperparameter rule ``fit`` runs (the constructor only stores values).

        Each value, the required ones, the rules combining parameters and the sagelocal options are
        checked; all problems are raised together in one :class:`HyperparameterError`. Values that
        ``fit`` takes from the data (``feature_dim``, ...) may be left out, and the rules that need them
        wait for ``fit``. ``sagelocal.estimator`` and ``from_sagemaker`` call this.
        """
        problems = []
        try:
            self._resolve_hyperparameters(BEFORE_DATA)
        except HyperparameterError as error:
            problems += error.problems
        try:
            self.option_table().parse(self._option_values())
        except HyperparameterError as error:
            problems += error.problems
        if problems:
            raise HyperparameterError(self.algorithm, problems)

    def to_sagemaker(self) -> dict[str, str]:
        """The ``hyperparameters.json`` dict of strings for this estimator's set values."""
        values = self.hyperparameters.parse(self._hyperparameter_values())
        return self.hyperparameters.to_sagemaker(values)

    @classmethod
    def search_space(cls) -> dict[str, dict[str, Any]]:
        """Tuning ranges of the tunable hyperparameters."""
        return cls.hyperparameters.search_space()

    @classmethod
    def metric_definitions(cls) -> list[dict[str, str]]:
        """``[{"Name": ..., "Regex": ...}]`` matching the metric lines this algorithm prints."""
        return [{"Name": m.name, "Regex": metric_regex(m.name)} for m in cls.metrics]

    def _hyperparameter_values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.hyperparameters.names}

    # ----------------------------------------------------------------------------------- fit
    def fit(self, X, y=None, *, validation=None, test=None, **channels):
        """Train on ``X`` (array, DataFrame, CSR matrix, ``(X, y)`` tuple or channel).

        ``validation`` and ``test`` take the same forms and produce ``validation:*`` and
        ``test:*`` entries in :attr:`metrics_`; ``channels`` are the algorithm's other channels by
        name (Seq2Seq's ``vocab``). Each is turned into a data source by :meth:`_as_source`.
        Returns ``self``.
        """
        given = {"validation": validation, "test": test, **channels}
        for name, value in given.items():
            if value is not None and (name not in self.channels or name == "train"):
                raise DataFormatError(f"{self.algorithm} takes no '{name}' channel; channels: "
                                      f"{', '.join(self.channels)}", channel=name)
        train = self._as_source(X, y, "train")
        sources = {name: self._as_source(value, None, name) for name, value in given.items()}
        hp = self._resolve_hyperparameters(train)
        self._options = self.option_table().parse(self._option_values())
        self._reset()
        self._reporter = MetricReporter(host=self.runtime.host)
        self._hp, self._sources = hp, sources
        self._fit(train, sources["validation"], sources["test"], hp)
        self.hyperparameters_ = hp
        self.metrics_ = dict(self._reporter.metrics)
        return self

    def _as_source(self, data, y, name: str):
        """Hook: the data source for what ``fit`` was given as channel ``name`` (None when not given).

        The default takes arrays, DataFrames, CSR matrices, ``(X, y)`` tuples and channels; algorithms
        that learn from records (series, sentences) accept their own in-memory forms here.
        """
        return as_source(data, y, name=name)

    def _training_loop(self, *, epochs: int | None, batch_size: int, **settings) -> TrainingLoop:
        """The shared :class:`TrainingLoop` with this fit's reporter, checkpoint folder and progress option."""
        settings.setdefault("checkpoint_dir", self.runtime.checkpoint_dir)
        return TrainingLoop(epochs=epochs, batch_size=batch_size, reporter=self._reporter,
                            progress=self._options["progress"], **settings)

    def _option_values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.option_defaults()}

    def _resolve_hyperparameters(self, train) -> dict[str, Any]:
        """Validate the constructor's values, fill data-derived ones, check required ones.

        With ``train`` :data:`BEFORE_DATA` (no data yet), the values ``_fill_from_data`` would take from
        the data are not demanded, and they are ``None`` for ``_check_hyperparameters``.
        """
        values = self._hyperparameter_values()
        table = self.hyperparameters
        table.parse(values)  # report bad values before looking at the data
        if train is BEFORE_DATA:
            return self._resolve_before_data(values)
        values = self._fill_from_data(dict(values), train)
        return table.parse(values, require=True, check=self._check_hyperparameters)

    def _resolve_before_data(self, values: dict[str, Any]) -> dict[str, Any]:
        filled = self._fill_from_data(dict(values), _DataProbe())
        from_data = {name for name in self.hyperparameters.names
                     if values.get(name) is None and filled.get(name) is not None}
        return self.hyperparameters.parse(values, require=True, check=self._check_hyperparameters,
                                          excused=from_data)

    def _reset(self) -> None:
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, name)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "hyperparameters_")

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(f"{self.algorithm}: this estimator is not fitted yet; call fit() "
                                 f"or sagelocal.load() first")

    def _check_batch(self, batch: Batch, source_name: str = "train") -> None:
        """Reject a batch whose width differs from ``feature_dim``."""
        expected = self._hp.get("feature_dim")
        if expected is not None and batch.feature_dim != expected:
            raise DataFormatError(f"{self.algorithm}: rows have {batch.feature_dim} features but "
                                  f"hyperparameter feature_dim is {expected}", channel=source_name)

    # ------------------------------------------------------------------------------- predict
    def _features(self, X) -> np.ndarray | sp.csr_matrix:
        """Inference features as float32 (dense or CSR), checked against the fitted width."""
        self._check_fitted()
        if isinstance(X, Batch):
            features = X.features
        elif hasattr(X, "batches"):
            features = Batch.concat(list(X.batches(65536))).features
        else:
            features = _as_features(X)
        expected = getattr(self, "n_features_in_", None)
        if expected is not None and features.shape[1] != expected:
            raise DataFormatError(f"{self.algorithm}: rows have {features.shape[1]} features; the "
                                  f"model was trained on {expected}")
        return features

    def predict(self, X) -> np.ndarray:
        """Predictions as a numpy array (the values SageMaker's endpoint would answer)."""
        return self._predict(self._features(X))

    def predict_records(self, X, **options) -> list[dict[str, Any]]:
        """SageMaker's response records, one dict per row, e.g. ``{"projection": [...]}``.

        ``options`` are request-time settings (Accept parameters such as ``verbose=True``) that the
        algorithm declares in its ``_records`` signature.
        """
        return self._records(self._features(X), **options)

    # ------------------------------------------------------------------------------ artifacts
    def save(self, path) -> str:
        """Write the model directory ``path`` and ``path/model.tar.gz``; returns the tarball path."""
        from .artifacts import save_estimator

        self._check_fitted()
        return save_estimator(self, path)

    @classmethod
    def load(cls, path, *, allow_pickle: bool = False) -> Estimator:
        """Load a model saved by :meth:`save` (a directory or a ``model.tar.gz``)."""
        from .artifacts import load_estimator

        model = load_estimator(path, allow_pickle=allow_pickle)
        if not isinstance(model, cls):
            from .errors import ArtifactError

            raise ArtifactError(f"{path}: holds a '{model.algorithm}' model, not '{cls.algorithm}'")
        return model

    def configure_serving(self, environ: Mapping[str, str]) -> None:
        """Take this algorithm's serving variables (:attr:`serving_variables`) from ``environ``, once.

        The server and batch transform call it when they load the model; predict code reads
        :attr:`serving_environment`, never ``os.environ``.
        """
        self._serving_environment = {name: environ[name] for name in self.serving_variables if name in environ}

    @property
    def serving_environment(self) -> dict[str, str]:
        """The serving variables given to :meth:`configure_serving` (empty outside a server)."""
        return getattr(self, "_serving_environment", {})

    # -------------------------------------------------------------------- hooks to implement
    @classmethod
    def _check_hyperparameters(cls, values: dict[str, Any]) -> list[tuple[str, str]]:
        """Cross-parameter problems as ``(name, message)`` pairs; individual values are valid.

        Also called before any data (:meth:`validate_hyperparameters`): values ``fit`` takes from the data
        (``_fill_from_data``) are then ``None``, and rules needing them should skip (fit runs them again).
        """
        return []

    def _fill_from_data(self, values: dict[str, Any], train) -> dict[str, Any]:
        """Fill unset values the SDK derives from the data: by default a declared ``feature_dim`` (unset or
        ``"auto"``) becomes the data's width when the source knows it. Override to add others, calling this."""
        if "feature_dim" in values and values["feature_dim"] in (None, "auto"):
            width = getattr(train, "feature_dim", None)
            if width is not None:
                values["feature_dim"] = width
        return values

    def _fit(self, train, validation, test, hp: dict[str, Any]) -> None:
        raise NotImplementedError

    def _predict(self, features) -> np.ndarray:
        raise NotImplementedError

    def _records(self, features, **options) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _serving_input(self, request) -> tuple[Any, dict[str, Any]]:
        """``(input of predict_records, extra request options)`` for a decoded inference request.

        ``request`` is a :class:`sagelocal.io.codecs.RequestCodec`. The default passes its feature
        rows; algorithms whose requests are not feature rows (DeepAR, BlazingText, Object2Vec, IP
        Insights, Seq2Seq) return what their ``predict_records`` takes from ``request.instances``,
        ``request.configuration``, ``request.rows`` (CSV cells) or ``request.params``.
        """
        return request.features, {}

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Learned state as (numpy arrays, JSON-serialisable metadata)."""
        raise NotImplementedError

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        raise NotImplementedError


def parameter_section(declarations) -> str:
    """The numpydoc ``Parameters`` section for ``declarations``, from their kinds, defaults and ``doc``."""
    kinds = {"int": "int", "float": "float", "bool": "bool", "categorical": "str", "string": "str",
             "int_list": "list of int", "float_list": "list of float", "json": "JSON value"}
    lines = ["Parameters", "----------"]
    for hp in declarations:
        kind = kinds[hp.kind] + (' or "auto"' if hp.auto else "")
        if hp.kind == "categorical":
            kind = "{" + ", ".join(repr(c) for c in hp.choices or ()) + "}"
        default = "required" if hp.required else "optional" if hp.default is None else f"default {hp.default!r}"
        lines.append(f"{hp.name} : {kind}, {default}")
        text = hp.doc.strip() or "See SageMaker's documentation of this hyperparameter."
        lines.append(f"    {text}" + ("" if hp.kind == "categorical" else f" Allowed: {hp.allowed()}."))
    return "\n".join(lines)


def with_parameter_section(doc: str | None, declarations) -> str:
    """``doc`` with its ``Parameters`` section replaced by (or, without one, given) the generated one.

    The section goes before ``Attributes`` / ``Notes`` / ``Examples`` when there is one, else at the end;
    the class docstring's other sections are kept as written.
    """
    doc = inspect.cleandoc(doc or "")
    section = parameter_section(declarations)
    lines = doc.splitlines()
    headers = [i for i in range(len(lines) - 1)
               if lines[i].strip() and set(lines[i + 1].strip()) == {"-"} and len(lines[i + 1].strip()) >= 3]
    start = next((i for i in headers if lines[i].strip() == "Parameters"), None)
    if start is not None:
        end = next((i for i in headers if i > start), len(lines))
        lines[start:end] = [*section.splitlines(), ""]
    else:
        later = next((i for i in headers if lines[i].strip() in ("Attributes", "Notes", "Examples")), None)
        at = len(lines) if later is None else later
        lines[at:at] = ["", *section.splitlines(), ""] if later is None else [*section.splitlines(), ""]
    return "\n".join(lines).rstrip() + "\n"


def _make_init(cls):
    """An ``__init__`` storing SageMaker's hyperparameters and the options as keyword arguments.

    Its signature is built from the declarations, so scikit-learn's ``get_params`` and ``clone``
    see every hyperparameter; it only stores values (validation happens in ``fit``).
    """
    defaults = {**cls.hyperparameters.defaults(), **cls.option_defaults()}
    algorithm = cls.algorithm

    def __init__(self, **kwargs):
        kwargs = cls.hyperparameters.canonical(kwargs)  # declared aliases store under the declared name
        unknown = [name for name in kwargs if name not in defaults]
        if unknown:
            raise HyperparameterError(algorithm, [
                (name, f"unknown hyperparameter '{name}'; known: {', '.join(sorted(defaults))}")
                for name in unknown])
        for name, default in defaults.items():
            setattr(self, name, kwargs[name] if name in kwargs else copy.copy(default))

    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    # A name that is a Python keyword (XGBoost's ``lambda``) cannot be in a signature: it stays a **kwargs
    # key, and the class lists it through ``_get_param_names``.
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
               for name, default in defaults.items() if name.isidentifier() and not keyword.iskeyword(name)]
    __init__.__signature__ = inspect.Signature(params)
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__doc__ = f"Store the {algorithm} hyperparameters; see the class docstring."
    return __init__
