"""The contract every registered algorithm keeps, generated from the registry and the declarations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError

import sagelocal
from sagelocal import HyperparameterError, NotFittedError
from sagelocal.base.registry import get_class
from tests.common.examples import EXAMPLES, fit_example
from tests.conftest import spec_dir, spec_of

ALGORITHMS = sagelocal.algorithms()


def invalid_values(hp):
    """Values that violate the declaration of ``hp`` (each must be rejected naming it)."""
    kind, values = hp.kind, []
    if kind in ("int", "float"):
        values += ["not-a-number", True]
        if kind == "int":
            values.append("1.5")
        else:
            values.append("nan")
        if hp.range is not None:
            low, high = hp.range
            if low is not None:
                values.append(low - 1 if kind == "int" else (low if not hp.closed[0] else low - 1.0))
            if high is not None:
                values.append(high + 1 if kind == "int" else (high if not hp.closed[1] else high + 1.0))
    elif kind == "bool":
        values += ["maybe", "yes", 2]
    elif kind == "categorical":
        values += ["no-such-choice", 7]
    elif kind in ("int_list", "float_list"):
        values += ['["a"]', "[]"]
    elif kind == "json":
        values.append("{not json")
    elif kind == "string" and hp.choices:  # e.g. DeepAR's time_freq
        values.append("no-such-choice")
    if hp.auto is False and kind != "string" and "auto" not in (hp.choices or ()):  # e.g. loss="auto"
        values.append("auto")
    return values


def declared(name):
    return list(get_class(name).hyperparameters)


CASES = [(name, hp.name, value) for name in ALGORITHMS for hp in declared(name) for value in invalid_values(hp)]


def test_every_algorithm_has_an_example():
    assert set(ALGORITHMS) <= set(EXAMPLES), "add an entry to tests/common/examples.py"


@pytest.mark.parametrize("name", ALGORITHMS)
def test_get_params_set_params_and_clone(name):
    cls = get_class(name)
    est = cls(**EXAMPLES[name].hyperparameters)
    params = est.get_params()
    assert set(params) == set(cls.hyperparameters.names) | set(cls.option_defaults())
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    assert cls().set_params(**params).get_params() == params


@pytest.mark.parametrize("name", ALGORITHMS)
def test_constructor_only_stores(name):
    cls = get_class(name)
    bad = {hp.name: "clearly-invalid" for hp in declared(name) if hp.kind != "string"}
    est = cls(**bad)  # no validation at construction (scikit-learn contract)
    assert all(getattr(est, key) == "clearly-invalid" for key in bad)
    with pytest.raises(HyperparameterError):
        est.fit(*EXAMPLES[name].make_data())


@pytest.mark.parametrize("name", ALGORITHMS)
def test_strings_build_the_same_estimator_as_typed_values(name):
    cls = get_class(name)
    typed = cls(**EXAMPLES[name].hyperparameters)
    strings = typed.to_sagemaker()
    assert all(isinstance(v, str) for v in strings.values())
    from_strings = sagelocal.estimator(name, **strings)
    assert type(from_strings) is cls and from_strings.get_params() == typed.get_params()
    assert cls.from_sagemaker({**strings, **_required_strings(cls, strings)}).to_sagemaker() == \
        {**strings, **_required_strings(cls, strings)}


def _required_strings(cls, given):
    """Strings for required values the example lets fit() derive (e.g. feature_dim)."""
    X, _ = EXAMPLES[cls.algorithm].make_data()
    filled = fit_example(cls.algorithm, cls)[0].hyperparameters_
    return {hp.name: hp.to_string(filled[hp.name]) for hp in cls.hyperparameters
            if hp.required and hp.name not in given}


@pytest.mark.parametrize("name, parameter, value", CASES)
def test_each_invalid_value_is_rejected_naming_the_parameter(name, parameter, value):
    with pytest.raises(HyperparameterError) as info:
        sagelocal.estimator(name, **{parameter: value})
    assert info.value.names == [parameter]
    assert f"'{parameter}'" in str(info.value)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_several_problems_and_missing_required_reported_together(name):
    cls = get_class(name)
    bad = {hp.name: invalid_values(hp)[0] for hp in declared(name) if invalid_values(hp)}
    with pytest.raises(HyperparameterError) as info:
        cls.from_sagemaker({**bad, "no_such_hyperparameter": "1"})
    assert set(info.value.names) == set(bad) | {"no_such_hyperparameter"}
    required = {hp.name for hp in declared(name) if hp.required}
    if not required:  # nothing is required: the defaults alone build a valid estimator
        assert isinstance(cls.from_sagemaker({}), cls)
        return
    with pytest.raises(HyperparameterError) as info:
        cls.from_sagemaker({})
    assert set(info.value.names) == required


@pytest.mark.parametrize("name", ALGORITHMS)
def test_fit_leaves_input_unchanged(name):
    X, y = EXAMPLES[name].make_data()
    X_before = X.copy()
    y_before = None if y is None else np.array(y, copy=True)
    fit_example_on = get_class(name)(**EXAMPLES[name].hyperparameters)
    fit_example_on.fit(X, y)
    np.testing.assert_array_equal(X, X_before)
    if y is not None:
        np.testing.assert_array_equal(y, y_before)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_predict_before_fit_raises_not_fitted(name):
    est = get_class(name)(**EXAMPLES[name].hyperparameters)
    X, _ = EXAMPLES[name].make_data()
    for method in (est.predict, est.predict_records):
        with pytest.raises(NotFittedError):
            method(X)
    with pytest.raises(SklearnNotFittedError):  # also scikit-learn's own exception
        est.predict(X)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_save_load_gives_identical_predictions(name, tmp_path):
    est, X, _ = fit_example(name, get_class(name))
    tarball = est.save(tmp_path / "model")
    for path in (tmp_path / "model", tarball):
        loaded = sagelocal.load(path)
        np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
        assert loaded.predict_records(X[:3]) == est.predict_records(X[:3])


@pytest.mark.parametrize("name", ALGORITHMS)
def test_fixed_seed_gives_identical_results(name):
    cls = get_class(name)
    first, X, _ = fit_example(name, cls, random_state=7)
    second, _, _ = fit_example(name, cls, random_state=7)
    np.testing.assert_array_equal(first.predict(X), second.predict(X))
    assert first.metrics_ == second.metrics_


@pytest.mark.parametrize("name", ALGORITHMS)
def test_records_are_json_serialisable(name):
    est, X, _ = fit_example(name, get_class(name))
    records = est.predict_records(X[:4])
    assert len(records) == 4 and all(isinstance(r, dict) for r in records)
    json.dumps({est.response_key: records})


# ------------------------------------------------------------------------ the spec's declarations
SPEC = spec_dir()


def _spec(name):
    return spec_of(name)


@pytest.mark.skipif(SPEC is None, reason="../shared/spec is not beside the repository")
@pytest.mark.parametrize("name", ALGORITHMS)
def test_declarations_match_the_spec(name):
    spec = {hp["name"]: hp for hp in _spec(name)["hyperparameters"]}
    ours = {hp.name: hp for hp in declared(name)}
    assert set(ours) == set(spec)
    for hp_name, entry in spec.items():
        hp = ours[hp_name]
        where = f"{name}.{hp_name}"
        assert hp.kind == entry["type"], where
        assert hp.required == bool(entry["required"]), where
        assert hp.auto == bool(entry["auto_allowed"]), where
        if not hp.required:
            assert hp.default == entry["default"], where
        if entry["type"] == "categorical":
            assert set(hp.choices) == set(entry["choices"]), where
        if entry["range"] is not None:
            assert hp.range is not None and _same(hp.range, entry["range"]), where
        assert hp.tunable == bool(entry["tunable"]), where
        if entry.get("tuning_range") is not None:
            assert hp.tuning_range is not None and _same(hp.tuning_range, entry["tuning_range"]), where


def _same(ours, theirs):
    return all((a is None and b is None) or (a is not None and b is not None and math.isclose(a, b))
               if not isinstance(a, str) else a == b for a, b in zip(ours, theirs))


@pytest.mark.skipif(SPEC is None, reason="../shared/spec is not beside the repository")
@pytest.mark.parametrize("name", ALGORITHMS)
def test_channels_response_key_and_metrics_match_the_spec(name):
    spec, cls = _spec(name), get_class(name)
    assert {c["name"]: c["required"] for c in spec["training"]["channels"]} == cls.channels
    assert set(cls.training_content_types) <= set(spec["training"]["content_types"])
    example = spec["inference"]["response_json_example"]
    if set(example) != {cls.response_key}:  # keyed by problem type (BlazingText): each is one response
        for variant in example.values():
            assert isinstance(variant, list) or set(variant) == {cls.response_key}, variant
    assert {m["name"] for m in spec["metrics"]} == {m.name for m in cls.metrics}
    assert spec["sdk_class"] == (None if cls.sdk_class is None else f"sagemaker.{cls.sdk_class}")
    assert set(cls.request_content_types) == set(spec["inference"]["request_content_types"])
    assert set(cls.response_content_types) == set(spec["inference"]["response_accept_types"])
