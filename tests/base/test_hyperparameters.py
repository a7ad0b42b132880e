"""The hyperparameter declarations: parsing SageMaker's strings, validation, serialisation, tuning."""

from __future__ import annotations

import pytest

from sagelocal import HyperparameterError
from sagelocal.base.hyperparameters import REQUIRED, Hyperparameter, HyperparameterTable

TABLE = HyperparameterTable("demo-algo", [
    Hyperparameter("feature_dim", "int", REQUIRED, range=(1, None)),
    Hyperparameter("learning_rate", "float", "auto", range=(0.0, 1.0), closed=(False, True), auto=True,
                   tunable=True, tuning_range=(1e-4, 1.0), tuning_scale="Logarithmic"),
    Hyperparameter("use_bias", "bool", True),
    Hyperparameter("loss", "categorical", "auto", choices=("auto", "logistic", "hinge"),
                   tunable=True, tuning_range=("logistic", "hinge")),
    Hyperparameter("eval_metrics", "string", None),
    Hyperparameter("layers", "int_list", [10], range=(1, None)),
    Hyperparameter("weights", "float_list", None),
    Hyperparameter("config", "json", None),
    Hyperparameter("num_classes", "int", None, range=(3, 1000000),
                   required_when=("loss == 'hinge'", lambda v: v["loss"] == "hinge")),
    Hyperparameter("epochs", "int", 15, range=(1, None), tunable=True, tuning_range=(1, 100)),
])


@pytest.mark.parametrize("name, text, expected", [
    ("feature_dim", "10", 10), ("feature_dim", " 7 ", 7), ("feature_dim", "+7", 7),
    ("learning_rate", "0.1", 0.1), ("learning_rate", "auto", "auto"), ("learning_rate", "AUTO", "auto"),
    ("learning_rate", "1", 1.0),
    ("use_bias", "true", True), ("use_bias", "True", True), ("use_bias", "FALSE", False),
    ("loss", "hinge", "hinge"), ("loss", '"hinge"', "hinge"),  # script mode json.dumps every value
    ("eval_metrics", '["msd", "ssd"]', '["msd", "ssd"]'),
    ("layers", "[1, 2, 3]", [1, 2, 3]), ("layers", "1,2,3", [1, 2, 3]), ("layers", "[4]", [4]),
    ("weights", "[0.5, 2]", [0.5, 2.0]), ("config", '{"a": [1, 2]}', {"a": [1, 2]}),
])
def test_strings_parse_by_declared_kind(name, text, expected):
    assert TABLE[name].parse(text) == expected
    assert type(TABLE[name].parse(text)) is type(expected)


def test_typed_values_equal_their_strings():
    typed = {"feature_dim": 5, "learning_rate": 0.25, "use_bias": False, "loss": "hinge",
             "layers": [3, 4], "weights": [1.5], "config": {"k": 1}, "num_classes": 3, "epochs": 2}
    strings = TABLE.to_sagemaker(TABLE.parse(typed))
    assert all(isinstance(v, str) for v in strings.values())
    assert strings["use_bias"] == "False" and strings["layers"] == "[3, 4]"  # the SDK's str / json.dumps
    assert TABLE.parse(strings) == TABLE.parse(typed)


@pytest.mark.parametrize("name, value", [
    ("feature_dim", "0"), ("feature_dim", "x"), ("feature_dim", "1.5"), ("feature_dim", True),
    ("learning_rate", "0"), ("learning_rate", "1.5"), ("learning_rate", "nan"), ("learning_rate", "fast"),
    ("use_bias", "yes"), ("use_bias", 1), ("loss", "squared"), ("loss", 3),
    ("layers", "[0]"), ("layers", '["a"]'), ("layers", "[]"), ("config", "{not json"),
    ("num_classes", "2"), ("epochs", 0),
])
def test_invalid_values_name_the_parameter_and_what_is_allowed(name, value):
    with pytest.raises(HyperparameterError) as info:
        TABLE.parse({name: value})
    assert info.value.names == [name]
    message = str(info.value)
    assert message.startswith("demo-algo: hyperparameter") and f"'{name}'" in message
    assert "must be" in message and "got" in message


def test_all_problems_reported_together():
    with pytest.raises(HyperparameterError) as info:
        TABLE.parse({"feature_dim": "0", "use_bias": "maybe", "loss": "nope", "bogus": "1"},
                    require=True)
    assert set(info.value.names) == {"feature_dim", "use_bias", "loss", "bogus"}
    assert "4 invalid hyperparameters" in str(info.value)


def test_required_and_required_when():
    with pytest.raises(HyperparameterError) as info:
        TABLE.parse({"loss": "hinge"}, require=True)
    assert set(info.value.names) == {"feature_dim", "num_classes"}
    assert "required when loss == 'hinge'" in str(info.value)
    assert TABLE.parse({"feature_dim": "3"}, require=True)["num_classes"] is None


def test_unknown_names_rejected_but_sagemaker_keys_ignored():
    with pytest.raises(HyperparameterError, match="unknown hyperparameter 'feature_dimm'"):
        TABLE.parse({"feature_dimm": "3"})
    parsed = TABLE.parse({"feature_dim": "3", "_tuning_objective_metric": "validation:rmse",
                          "sagemaker_region": "us-east-1"}, require=True)
    assert "_tuning_objective_metric" not in parsed


def test_defaults_and_search_space():
    assert TABLE.defaults()["feature_dim"] is None and TABLE.defaults()["epochs"] == 15
    space = TABLE.search_space()
    assert space == {
        "learning_rate": {"type": "Continuous", "min": 1e-4, "max": 1.0, "scaling": "Logarithmic"},
        "loss": {"type": "Categorical", "values": ["logistic", "hinge"]},
        "epochs": {"type": "Integer", "min": 1, "max": 100, "scaling": "Auto"},
    }


def test_cross_parameter_check_runs_once_values_are_valid():
    def check(values):
        return [("epochs", "epochs must exceed feature_dim")] if values["epochs"] <= values["feature_dim"] else []

    with pytest.raises(HyperparameterError, match="epochs must exceed"):
        TABLE.parse({"feature_dim": "20"}, require=True, check=check)
    with pytest.raises(HyperparameterError) as info:  # invalid parts first: check not consulted
        TABLE.parse({"feature_dim": "0"}, require=True, check=check)
    assert info.value.names == ["feature_dim"]


# SageMaker's algorithm toolkit parses an integer string with int(value), a number with float(value), and
# compares a choice exactly: "1.0" and "1e3" are not integers, and only numbers may carry surrounding spaces.
@pytest.mark.parametrize("name, text", [
    ("feature_dim", "10.0"), ("feature_dim", "1e3"), ("feature_dim", "7."), ("epochs", "2.0"),
    ("layers", "[1.0, 2]"), ("layers", "1.0,2"), ("num_classes", "3e0"),
    ("loss", "hinge "), ("loss", " hinge"), ("use_bias", " true"), ("use_bias", "false\n"),
    ("learning_rate", " auto"), ("learning_rate", "auto "),
])
def test_integers_and_choices_are_read_as_sagemaker_reads_them(name, text):
    with pytest.raises(HyperparameterError) as info:
        TABLE.parse({name: text})
    assert info.value.names == [name] and repr(text) in str(info.value)


def test_numbers_keep_surrounding_whitespace_and_typed_integral_values():
    assert TABLE.parse({"learning_rate": " 0.5\n", "epochs": "\t3 "})["learning_rate"] == 0.5
    import numpy as np

    parsed = TABLE.parse({"feature_dim": np.int64(2**60 + 1), "epochs": 4.0, "layers": [np.int32(2), 3.0]})
    assert parsed["feature_dim"] == 2**60 + 1 and type(parsed["feature_dim"]) is int
    assert parsed["epochs"] == 4 and type(parsed["epochs"]) is int and parsed["layers"] == [2, 3]
    for value in (4.5, float("inf"), True):
        with pytest.raises(HyperparameterError):
            TABLE.parse({"epochs": value})


def test_a_range_applies_only_when_the_parameter_is_used():
    table = HyperparameterTable("demo-algo", [
        Hyperparameter("kind", "categorical", REQUIRED, choices=("binary", "multiclass")),
        Hyperparameter("classes", "int", None, range=(3, 10),
                       used_when=("kind is multiclass", lambda v: v["kind"] in (None, "multiclass"))),
    ])
    assert table.parse({"kind": "binary", "classes": "1"})["classes"] == 1  # parsed, range not applied
    for values in ({"kind": "multiclass", "classes": "1"}, {"classes": "1"}):
        with pytest.raises(HyperparameterError) as info:
            table.parse(values)
        assert info.value.names == ["classes"]
        assert "in [3, 10] when kind is multiclass; got '1'" in str(info.value)
    with pytest.raises(HyperparameterError, match="'classes' must be an integer"):
        table.parse({"kind": "binary", "classes": "x"})


def test_excused_values_are_not_demanded():
    assert TABLE.parse({}, require=True, excused={"feature_dim"})["feature_dim"] is None


# ----------------------------------------------------------------- declared formats (no private subclasses)
def _parse_one(hp, value):
    from sagelocal.base.hyperparameters import HyperparameterTable

    return HyperparameterTable("algo", [hp]).parse({hp.name: value})[hp.name]


def test_exact_choices_neither_unquote_nor_fold_case():
    from sagelocal.base.hyperparameters import Hyperparameter

    loose = Hyperparameter("mode", "categorical", "a", choices=("a", "b"), auto=True)
    exact = Hyperparameter("mode", "categorical", "a", choices=("a", "b"), auto=True, exact=True)
    assert _parse_one(loose, '"b"') == "b" and _parse_one(loose, "AUTO") == "auto"
    assert _parse_one(exact, "b") == "b" and _parse_one(exact, "auto") == "auto"
    for value in ('"b"', "AUTO", "b "):
        with pytest.raises(HyperparameterError, match="must be one of 'a', 'b' or 'auto'"):
            _parse_one(exact, value)


def test_also_words_beside_the_kind():
    from sagelocal.base.hyperparameters import Hyperparameter

    hp = Hyperparameter("weight", "float", 1.0, range=(0, None), closed=(False, True), also=("balanced",))
    assert _parse_one(hp, "Balanced") == "balanced" and _parse_one(hp, "2.5") == 2.5
    with pytest.raises(HyperparameterError, match=r"must be a number > 0 or 'balanced'; got 'even'"):
        _parse_one(hp, "even")


def test_reader_convert_check_and_describe():
    import ast

    from sagelocal.base.hyperparameters import Hyperparameter

    hp = Hyperparameter("groups", "json", reader=ast.literal_eval, convert=lambda v: [list(g) for g in v],
                        check=lambda groups: all(x >= 1 for g in groups for x in g),
                        describe="lists of indices >= 1")
    assert _parse_one(hp, "[(1, 2), [3]]") == [[1, 2], [3]]
    assert _parse_one(hp, [[4]]) == [[4]]
    for bad in ("[[0]]", "__import__('os')", "[1, [2]]"):
        with pytest.raises(HyperparameterError, match="must be lists of indices >= 1"):
            _parse_one(hp, bad)


def test_a_check_keeps_the_kind_rule_and_matches_to_the_letter():
    from sagelocal.base.hyperparameters import Hyperparameter

    # Linear Learner's selection criteria: documented choices plus the SDK's extras, exact like any choice.
    hp = Hyperparameter("criterion", "categorical", "a", choices=("a", "b"), check=("a", "b", "x").__contains__,
                        describe="one of 'a', 'b' (the SDK also sends 'x')")
    assert _parse_one(hp, "x") == "x" and _parse_one(hp, '"x"') == "x"  # JSON quotes are still removed
    for bad in ("X", "c", 3):
        with pytest.raises(HyperparameterError, match=r"must be one of 'a', 'b' \(the SDK also sends 'x'\); got"):
            _parse_one(hp, bad)


def test_also_words_ignore_case_and_quotes_unless_exact():
    from sagelocal.base.hyperparameters import Hyperparameter

    loose = Hyperparameter("weight", "float", 1.0, also=("balanced",))
    exact = Hyperparameter("weight", "float", 1.0, also=("balanced",), exact=True)
    assert _parse_one(loose, '"BALANCED"') == "balanced"
    assert _parse_one(exact, "balanced") == "balanced"
    for bad in ("Balanced", '"balanced"'):
        with pytest.raises(HyperparameterError, match="must be a number or 'balanced'"):
            _parse_one(exact, bad)


def test_comma_token_lists_as_reader_convert_and_check():
    from sagelocal.base.hyperparameters import Hyperparameter

    def tokens(value):
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        if not isinstance(value, str):
            raise TypeError
        return value

    hp = Hyperparameter("metrics", "string", choices=("a", "b"), reader=str, convert=tokens,
                        check=lambda text: all(t in ("a", "b") for t in text.split(",")),
                        describe="a comma-separated list of 'a', 'b'")
    assert _parse_one(hp, "a,b") == "a,b" and _parse_one(hp, ["b", "a"]) == "b,a"
    assert hp.choices == ("a", "b")  # still declared as data (the contract tests read them)
    for bad in ("a, b", "a,", '"a"', [], 7):
        with pytest.raises(HyperparameterError, match="must be a comma-separated list of 'a', 'b'"):
            _parse_one(hp, bad)


def test_as_int_is_the_integer_rule_for_hooks():
    import numpy as np

    from sagelocal.base.hyperparameters import as_int

    assert as_int(3) == 3 and as_int(np.int64(4)) == 4 and as_int(5.0) == 5
    for bad in (True, 1.5, float("inf"), None, [1]):
        with pytest.raises(ValueError):
            as_int(bad)


def test_also_words_reach_parameters_used_only_sometimes():
    from sagelocal.base.hyperparameters import Hyperparameter, HyperparameterTable

    table = HyperparameterTable("algo", [
        Hyperparameter("mode", "categorical", "a", choices=("a", "b")),
        Hyperparameter("weight", "float", 1.0, range=(0, 1), also=("balanced",),
                       used_when=("mode is b", lambda v: v.get("mode") == "b")),
    ])
    assert table.parse({"mode": "a", "weight": "Balanced"})["weight"] == "balanced"
    assert table.parse({"mode": "a", "weight": "5"})["weight"] == 5.0  # out of range, but unused
