"""XGBoost (algorithm mode): hyperparameters as the container validates them, training from every
channel format against xgboost.train itself, early stopping, checkpoints, k-fold mode, the container."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import xgboost as xgb
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import RepeatedStratifiedKFold

import sagelocal
from sagelocal import HyperparameterError, SagelocalError, XGBoost
from sagelocal.algorithms.xgboost import trainer as training
from sagelocal.algorithms.xgboost.hyperparameters import library_params
from sagelocal.base.errors import ChannelError, MissingDependencyError, UnsupportedContentTypeError
from sagelocal.base.runtime import Runtime
from sagelocal.io import Channel, write_numpy_to_dense_tensor


@pytest.fixture(autouse=True)
def _one_thread():
    with xgb.config_context(nthread=1):  # the test machine's cores are shared; one thread is fastest
        yield


def _binary(n=400, d=8, seed=0):
    X, y = make_classification(n_samples=n, n_features=d, n_informative=5, flip_y=0.1, random_state=seed)
    return X.astype(np.float32), y.astype(np.float32)


def _write_csv(path, *columns, delimiter=","):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, np.column_stack(columns), delimiter=delimiter, fmt="%.9g")
    return path


class _Files(Channel):
    """A channel over given files (not every file of a folder)."""

    def __init__(self, paths, content_type, input_mode="File", name="train"):
        self.paths = [Path(p) for p in paths]
        super().__init__(self.paths[0].parent, content_type, input_mode, name=name)

    def files(self):
        return self.paths

    def batches(self, batch_size, epoch=0):
        raise AssertionError("XGBoost reads channels whole, by content type")


# -------------------------------------------------------------------------------- hyperparameters
def test_aliases_map_to_the_container_names():
    est = XGBoost(learning_rate=0.1, num_round=2)
    assert est.get_params()["eta"] == 0.1
    assert sagelocal.estimator("xgboost", reg_lambda="2", num_round="2").get_params()["lambda"] == 2.0
    strings = XGBoost.from_sagemaker({"num_round": "3", "min_split_loss": "0.5", "reg_alpha": "0.1"}).to_sagemaker()
    assert strings == {"num_round": "3", "gamma": "0.5", "alpha": "0.1"}
    with pytest.raises(HyperparameterError) as info:
        XGBoost.from_sagemaker({"num_round": "3", "eta": "0.1", "learning_rate": "0.2"})
    assert info.value.names == ["eta"]


def test_documented_defaults_are_not_passed_to_xgboost():
    est = XGBoost(num_round=3)
    assert est.get_params()["base_score"] == 0.5 and est.get_params()["updater"] == "grow_colmaker,prune"
    assert est.to_sagemaker() == {"num_round": "3"}
    X = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
    y = (10 + X[:, 0]).astype(np.float32)
    unset = json.loads(XGBoost(num_round=1, nthread=1).fit(X, y).booster_.save_config())
    given = json.loads(XGBoost(num_round=1, nthread=1, base_score=0.5).fit(X, y).booster_.save_config())
    # XGBoost 2+ estimates the intercept when base_score is unset (as in the container, which injects nothing)
    assert float(unset["learner"]["learner_model_param"]["base_score"].strip("[]")) == pytest.approx(y.mean(), rel=1e-3)
    assert float(given["learner"]["learner_model_param"]["base_score"].strip("[]")) == 0.5


@pytest.mark.parametrize("values, name", [
    ({"foo": "1"}, "foo"),
    ({"single_precision_histogram": "true"}, "single_precision_histogram"),
    ({"objective": "multi:softprob"}, "num_class"),
    ({"monotone_constraints": "(1,-1)"}, "monotone_constraints"),
    ({"monotone_constraints": "(1)", "tree_method": "hist"}, "monotone_constraints"),
    ({"interaction_constraints": "[[1,2]]"}, "interaction_constraints"),
    ({"interaction_constraints": "[[0,2]]", "tree_method": "hist"}, "interaction_constraints"),
    ({"eval_metric": "auc"}, "eval_metric"),
    ({"eval_metric": "aft-nloglik", "objective": "binary:logistic"}, "eval_metric"),
    ({"eval_metric": "error@x"}, "eval_metric"),
    ({"eval_metric": "rmse,foo"}, "eval_metric"),
    ({"updater": "grow_colmaker", "booster": "gblinear"}, "updater"),
    ({"updater": "grow_colmaker", "process_type": "update"}, "updater"),
    ({"updater": "grow_colmaker,grow_histmaker"}, "updater"),
    ({"updater": "grow_quantile_histmaker"}, "updater"),
    ({"updater": "shotgun"}, "updater"),
    ({"subsample": "0"}, "subsample"),
    ({"seed": str(2**31 - 1)}, "seed"),
    ({"tweedie_variance_power": "2"}, "tweedie_variance_power"),
    ({"scale_pos_weight": "0"}, "scale_pos_weight"),
    ({"prob_buffer_row": "1"}, "prob_buffer_row"),
    ({"sketch_eps": "1"}, "sketch_eps"),
    ({"use_dask_gpu_training": "true"}, "use_dask_gpu_training"),
])
def test_invalid_hyperparameters_fail_as_in_the_container(values, name):
    with pytest.raises(HyperparameterError) as info:
        XGBoost.from_sagemaker({"num_round": "2", **values})
    assert info.value.names == [name]
    assert f"{name}" in str(info.value)


@pytest.mark.parametrize("values", [
    {"monotone_constraints": "(1,-1,0)", "tree_method": "exact"},
    {"monotone_constraints": "(1,)", "tree_method": "hist"},
    {"interaction_constraints": "[[1,2],[3,4,5]]", "tree_method": "approx"},
    {"eval_metric": "error@0.3,ndcg@3,map@2,rmse", "objective": "rank:pairwise"},
    {"eval_metric": "auc,aucpr", "objective": "binary:logistic"},
    {"updater": "shotgun", "booster": "gblinear"},
    {"updater": "refresh,prune", "process_type": "update"},
    {"updater": "grow_colmaker,prune"},
    {"subsample": "1", "colsample_bytree": "1e-3", "seed": str(-(2**31) + 1)},
])
def test_valid_hyperparameters_pass(values):
    XGBoost.from_sagemaker({"num_round": "2", **values})


def _resolved(**strings):
    return XGBoost.from_sagemaker({"num_round": "5", **strings})._resolve_hyperparameters(None)


def test_library_mapping():
    hp = _resolved(eta="0.2", monotone_constraints="(1,-1)", tree_method="hist", sketch_eps="0.1", csv_weights="1",
                   interaction_constraints="[[1,2]]", predictor="cpu_predictor")
    # container-only and removed-upstream names never reach XGBoost
    assert library_params(hp, random_state=0, cuda=False) == {
        "eta": 0.2, "monotone_constraints": "(1,-1)", "tree_method": "hist", "interaction_constraints": "[[1, 2]]"}
    assert library_params(hp, random_state=7)["seed"] == 7
    gpu = _resolved(tree_method="gpu_hist")  # XGBoost 2+ spells it tree_method=hist, device=cuda
    assert library_params(gpu, cuda=True) == {"tree_method": "hist", "device": "cuda"}
    assert library_params(gpu, cuda=False) == {"tree_method": "hist"}


def test_xgboost_library_errors_are_client_errors():
    X, y = _binary(n=60)
    with pytest.raises(SagelocalError, match="Unknown objective"):
        XGBoost(num_round=2, objective="aft_loss_distribution", nthread=1).fit(X, y)


def test_missing_library_names_the_extra(monkeypatch):
    import sys

    from sagelocal.algorithms.xgboost.data import xgboost_module

    monkeypatch.setitem(sys.modules, "xgboost", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'sagelocal\[xgboost\]'"):
        xgboost_module()


# ---------------------------------------------------------------------------- training and formats
PARAMS = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.2, "subsample": 0.8, "colsample_bytree": 0.7,
          "seed": 3, "min_child_weight": 2, "nthread": 1}


def _strings(params, num_round):
    return {"num_round": str(num_round), **{k: str(v) for k, v in params.items()}}


def test_csv_channel_predicts_as_xgboost_train(tmp_path):
    X, y = _binary()
    path = _write_csv(tmp_path / "train" / "part-0.csv", y, X)
    est = XGBoost.from_sagemaker(_strings(PARAMS, 20)).fit(Channel(tmp_path / "train", "text/csv"))
    frame = pd.read_csv(path, header=None)
    booster = xgb.train(PARAMS, xgb.DMatrix(frame.iloc[:, 1:].to_numpy(), label=frame.iloc[:, 0].to_numpy()), 20)
    np.testing.assert_allclose(est.predict(X), booster.predict(xgb.DMatrix(X)), atol=1e-6)


def test_csv_weights_and_sniffed_delimiter(tmp_path):
    X, y = make_regression(n_samples=300, n_features=5, noise=5.0, random_state=1)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    _write_csv(tmp_path / "comma" / "a.csv", y, w, X)
    _write_csv(tmp_path / "semi" / "a.csv", y, w, X, delimiter=";")
    params = {"max_depth": 3, "nthread": 1, "csv_weights": 1}
    fitted = [XGBoost.from_sagemaker(_strings(params, 10)).fit(Channel(tmp_path / d, "text/csv"))
              for d in ("comma", "semi")]
    table = np.loadtxt(tmp_path / "comma" / "a.csv", delimiter=",", dtype=np.float32)
    booster = xgb.train({"max_depth": 3, "nthread": 1},
                        xgb.DMatrix(table[:, 2:], label=table[:, 0], weight=table[:, 1]), 10)
    expected = booster.predict(xgb.DMatrix(X.astype(np.float32)))
    for est in fitted:
        np.testing.assert_allclose(est.predict(X), expected, atol=1e-4)


def test_csv_label_size_other_than_one_is_refused(tmp_path):
    X, y = _binary(n=50)
    _write_csv(tmp_path / "train" / "a.csv", y, X)
    with pytest.raises(UnsupportedContentTypeError, match="label_size must be equal to 1"):
        XGBoost(num_round=2).fit(Channel(tmp_path / "train", "text/csv;label_size=2"))


def test_pipe_mode_csv_reads_the_fifo(tmp_path):
    X, y = _binary(n=200)
    body = "\n".join(",".join(f"{v:.9g}" for v in row) for row in np.column_stack([y, X])).encode() + b"\n"
    fifo = tmp_path / "train_0"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(body))
    writer.start()
    try:
        piped = XGBoost(num_round=5, nthread=1).fit(Channel(tmp_path / "train", "text/csv", "Pipe"))
    finally:
        writer.join(timeout=30)
    _write_csv(tmp_path / "file" / "a.csv", y, X)
    filed = XGBoost(num_round=5, nthread=1).fit(Channel(tmp_path / "file", "text/csv"))
    np.testing.assert_array_equal(piped.predict(X), filed.predict(X))


def test_recordio_protobuf_channel(tmp_path):
    X, y = _binary(n=300)
    (tmp_path / "train").mkdir()
    with open(tmp_path / "train" / "data.pbr", "wb") as f:
        write_numpy_to_dense_tensor(f, X, y)
    channel = Channel(tmp_path / "train", "application/x-recordio-protobuf")
    est = XGBoost.from_sagemaker(_strings(PARAMS, 8)).fit(channel)
    booster = xgb.train(PARAMS, xgb.DMatrix(X, label=y), 8)
    np.testing.assert_allclose(est.predict(X), booster.predict(xgb.DMatrix(X)), atol=1e-6)


def _libsvm_lines(X, y, w=None):
    lines = []
    for i, row in enumerate(X):
        label = f"{y[i]:g}" if w is None else f"{y[i]:g}:{w[i]:g}"
        lines.append(label + "".join(f" {j}:{v:.6g}" for j, v in enumerate(row) if v != 0))
    return "\n".join(lines) + "\n"


@pytest.mark.filterwarnings("ignore:.*Text file input has been deprecated")
def test_libsvm_files_with_weights_train_as_xgboost_reads_them(tmp_path):
    X, y = _binary(n=300)
    X[X < -1] = 0  # sparse rows
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(y))
    for i, part in enumerate(np.array_split(np.arange(len(y)), 2)):
        (tmp_path / f"part-{i}.libsvm").write_text(_libsvm_lines(X[part], y[part], w[part]))
    files = sorted(tmp_path.glob("*.libsvm"))
    est = XGBoost.from_sagemaker(_strings(PARAMS, 8)).fit(_Files(files, "text/libsvm"))
    whole = tmp_path / "whole.txt"
    whole.write_text(_libsvm_lines(X, y, w))
    booster = xgb.train(PARAMS, xgb.DMatrix(f"{whole}?format=libsvm"), 8)
    probe = sp.csr_matrix(X)
    np.testing.assert_allclose(est.predict(probe), booster.predict(xgb.DMatrix(probe)), atol=1e-6)
    with pytest.raises(ChannelError, match="Pipe mode not supported for LibSVM"):
        XGBoost(num_round=2).fit(_Files(files, "text/libsvm", input_mode="Pipe"))


def test_parquet_channel_first_column_is_the_label(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    X, y = _binary(n=300)
    table = pa.table({"label": y, **{f"f{j}": X[:, j] for j in range(X.shape[1])}})
    pq.write_table(table, tmp_path / "data.parquet")
    est = XGBoost.from_sagemaker(_strings(PARAMS, 8)).fit(_Files([tmp_path / "data.parquet"], "application/x-parquet"))
    booster = xgb.train(PARAMS, xgb.DMatrix(X, label=y), 8)
    np.testing.assert_allclose(est.predict(X), booster.predict(xgb.DMatrix(X)), atol=1e-6)


def test_data_without_labels_is_rejected(tmp_path):
    X, _ = _binary(n=50)
    with pytest.raises(SagelocalError, match="labels"):
        XGBoost(num_round=2).fit(X)


# ------------------------------------------------------------------------------------ early stopping
def _accuracy_history(booster, X, y, rounds):
    return [float(np.mean((booster.predict(xgb.DMatrix(X), iteration_range=(0, i + 1)) > 0.5) == y))
            for i in range(rounds)]


def test_early_stopping_on_the_last_eval_metric_keeps_the_best_round():
    X, y = _binary(n=600, seed=4)
    train, held = slice(0, 400), slice(400, 600)
    params = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.5, "nthread": 1}
    full = xgb.train(params, xgb.DMatrix(X[train], label=y[train]), 60)
    history = _accuracy_history(full, X[held], y[held], 60)
    best, patience = 0, 3
    for i, value in enumerate(history):  # XGBoost's rule: stop after `patience` rounds without improvement
        if value > history[best]:
            best = i
        elif i - best >= patience:
            break
    est = XGBoost(num_round=60, eval_metric="logloss,accuracy", early_stopping_rounds=patience, **params)
    est.fit(X[train], y[train], validation=(X[held], y[held]))
    assert best + 1 < 60
    assert est.booster_.num_boosted_rounds() == best + 1  # the model is cut back to the best round
    np.testing.assert_allclose(est.predict(X), full.predict(xgb.DMatrix(X), iteration_range=(0, best + 1)),
                               atol=1e-6)


def test_early_stopping_is_skipped_without_eval_metric_or_validation():
    X, y = _binary(n=300)
    no_metric = XGBoost(num_round=30, eta=0.8, early_stopping_rounds=1, objective="binary:logistic", nthread=1)
    no_metric.fit(X[:200], y[:200], validation=(X[200:], y[200:]))
    no_validation = XGBoost(num_round=30, eta=0.8, early_stopping_rounds=1, eval_metric="error", nthread=1)
    no_validation.fit(X, y)
    assert no_metric.booster_.num_boosted_rounds() == 30 == no_validation.booster_.num_boosted_rounds()


def test_tuning_objective_metric_drives_early_stopping_and_is_reported():
    X, y = _binary(n=400, seed=5)
    est = XGBoost(num_round=40, objective="binary:logistic", eta=0.9, eval_metric="accuracy",
                  _tuning_objective_metric="validation:logloss", early_stopping_rounds=2, nthread=1)
    est.fit(X[:250], y[:250], validation=(X[250:], y[250:]))
    assert set(est.metrics_) == {"validation:accuracy", "validation:logloss"}
    assert est.booster_.num_boosted_rounds() < 40


def test_metric_lines_and_definitions(caplog):
    X, y = _binary(n=200)
    with caplog.at_level("INFO", logger="sagelocal"):
        XGBoost(num_round=2, objective="binary:logistic", eval_metric="auc,accuracy", nthread=1).fit(
            X[:150], y[:150], validation=(X[150:], y[150:]))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[")]
    assert len(lines) == 2 and lines[1].startswith("[1]#011train-auc:")
    import re

    regex = {d["Name"]: d["Regex"] for d in XGBoost.metric_definitions()}
    assert re.match(regex["validation:accuracy"], lines[1]) and re.match(regex["validation:auc"], lines[1])
    assert len(regex) == 33


# ------------------------------------------------------------------------------------- checkpoints
def test_checkpoints_resume_where_training_stopped(tmp_path):
    X, y = _binary(n=300)
    params = {"objective": "binary:logistic", "max_depth": 3, "nthread": 1}
    first = XGBoost(num_round=4, **params)
    first.runtime = Runtime(checkpoint_dir=str(tmp_path))
    first.fit(X, y)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"xgboost-checkpoint.{i}" for i in range(4)]
    resumed = XGBoost(num_round=10, **params)
    resumed.runtime = Runtime(checkpoint_dir=str(tmp_path))
    resumed.fit(X, y)
    uninterrupted = XGBoost(num_round=10, **params).fit(X, y)
    assert resumed.booster_.num_boosted_rounds() == 10
    np.testing.assert_allclose(resumed.predict(X), uninterrupted.predict(X), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"xgboost-checkpoint.{i}" for i in range(5, 10)]


def test_sigterm_with_save_model_on_termination_keeps_the_rounds_so_far(monkeypatch):
    X, y = _binary(n=200)
    original = training.RoundLog.after_iteration

    def send_sigterm(self, model, epoch, evals_log):
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, model, epoch, evals_log)

    monkeypatch.setattr(training.RoundLog, "after_iteration", send_sigterm)
    before = signal.getsignal(signal.SIGTERM)
    est = XGBoost(num_round=20, save_model_on_termination="true", nthread=1).fit(X, y)
    assert est.booster_.num_boosted_rounds() == 3
    assert signal.getsignal(signal.SIGTERM) is before


# ------------------------------------------------------------------------------------------ k-fold
def test_kfold_trains_one_model_per_fold_with_out_of_fold_predictions(tmp_path):
    X, y = _binary(n=300, seed=7)
    est = XGBoost(num_round=5, objective="binary:logistic", _kfold=3, eval_metric="error", nthread=1,
                  random_state=11)
    est.runtime = Runtime(output_data_dir=str(tmp_path))
    est.fit(X[:240], y[:240], validation=(X[240:], y[240:]))
    assert len(est.boosters_) == 3
    splits = list(RepeatedStratifiedKFold(n_splits=3, n_repeats=1, random_state=11).split(X, y))
    expected_probability = np.zeros(len(y))
    for booster, (_, held) in zip(est.boosters_, splits):
        expected_probability[held] = booster.predict(xgb.DMatrix(X[held]))
    table = est.out_of_fold_
    np.testing.assert_array_equal(table[:, 0], y)
    np.testing.assert_allclose(table[:, 1], expected_probability, atol=1e-6)
    np.testing.assert_array_equal(table[:, 2], expected_probability > 0.5)
    np.testing.assert_allclose(np.loadtxt(tmp_path / "predictions.csv", delimiter=","), table, atol=1e-6)
    errors = [np.mean((expected_probability[held] > 0.5) != y[held]) for _, held in splits]
    assert est.metrics_["validation:error"] == pytest.approx(np.mean(errors), abs=1e-6)
    mean = np.mean([b.predict(xgb.DMatrix(X)) for b in est.boosters_], axis=0)
    np.testing.assert_allclose(est.predict(X), mean, atol=1e-6)


def test_kfold_regression_repeats(tmp_path):
    X, y = make_regression(n_samples=120, n_features=4, random_state=3)
    est = XGBoost(num_round=3, _kfold=2, _num_cv_round=2, nthread=1).fit(X, y)
    assert len(est.boosters_) == 4 and est.out_of_fold_.shape == (120, 2)
    loaded = sagelocal.load(est.save(tmp_path / "model"))
    assert sorted(p.name for p in (tmp_path / "model").glob("xgboost-model*")) == [
        f"xgboost-model-{i}" for i in range(4)]
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


# ------------------------------------------------------------------------------------ the container
def test_container_training_job(tmp_path):
    from sagelocal.container import train

    X, y = _binary(n=300)
    root = tmp_path / "ml"
    _write_csv(root / "input" / "data" / "train" / "train.csv", y[:200], X[:200])
    _write_csv(root / "input" / "data" / "validation" / "val.csv", y[200:], X[200:])
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(
        {"num_round": "5", "objective": "binary:logistic", "learning_rate": "0.3", "eval_metric": "auc",
         "nthread": "1"}))
    (config / "inputdataconfig.json").write_text(json.dumps(
        {"train": {"ContentType": "text/csv"}, "validation": {"ContentType": "csv"}}))
    assert train(root, "xgboost") == 0
    metrics = json.loads((root / "output" / "data" / "metrics.json").read_text())
    assert set(metrics) == {"validation:auc"}
    model = sagelocal.load(root / "model" / "model.tar.gz")
    assert model.booster_.num_boosted_rounds() == 5 and (root / "model" / "xgboost-model").is_file()

    (config / "hyperparameters.json").write_text(json.dumps({"num_round": "5", "objective": "multi:softmax"}))
    (root / "output" / "failure").unlink(missing_ok=True)
    assert train(root, "xgboost") == 1
    assert "num_class" in (root / "output" / "failure").read_text()


def test_channel_content_type_is_checked_by_the_container(tmp_path):
    from sagelocal.container import Layout, open_channels

    (tmp_path / "input" / "data" / "train").mkdir(parents=True)
    with pytest.raises(ChannelError, match="not supported"):
        open_channels(XGBoost, Layout(tmp_path), {"train": {"ContentType": "application/json"}})


# The container parses integers with int(value) (so "1.0" and "1e3" fail, surrounding spaces pass), floats
# with float(value), and compares choices and each comma-separated token exactly.
@pytest.mark.parametrize("values, name", [
    ({"num_round": "1.0"}, "num_round"),
    ({"num_round": "1e3"}, "num_round"),
    ({"max_depth": "1e3"}, "max_depth"),
    ({"max_depth": "6.0"}, "max_depth"),
    ({"num_class": "3.0", "objective": "multi:softmax"}, "num_class"),
    ({"objective": "binary:logistic "}, "objective"),
    ({"objective": " binary:logistic"}, "objective"),
    ({"objective": '"binary:logistic"'}, "objective"),
    ({"save_model_on_termination": " true"}, "save_model_on_termination"),
    ({"save_model_on_termination": "True"}, "save_model_on_termination"),
    ({"tree_method": "hist "}, "tree_method"),
    ({"tree_method": " auto"}, "tree_method"),
    ({"eval_metric": "rmse, mae"}, "eval_metric"),
    ({"eval_metric": " rmse"}, "eval_metric"),
    ({"eval_metric": "rmse,"}, "eval_metric"),
    ({"eval_metric": " error@0.5", "objective": "binary:logistic"}, "eval_metric"),
    ({"updater": "grow_colmaker, prune"}, "updater"),
])
def test_strings_are_parsed_as_strictly_as_the_container(values, name):
    strings = {"num_round": "2", **values}
    for build in (XGBoost.from_sagemaker, lambda s: sagelocal.estimator("xgboost", **s),
                  lambda s: XGBoost(**s).fit(*_binary(40))):
        with pytest.raises(HyperparameterError) as info:
            build(strings)
        assert info.value.names == [name]
        message = str(info.value)
        assert f"'{name}'" in message and repr(values[name]) in message and "must be" in message


def test_what_the_container_accepts_is_accepted():
    # int() and float() accept surrounding whitespace and a sign; error@t takes spaces around t
    hp = _resolved(num_round=" 7 ", max_depth="+3", eta=" 0.25", seed="-5", eval_metric="error@ 0.4,logloss",
                   objective="binary:logistic")
    assert (hp["num_round"], hp["max_depth"], hp["eta"], hp["seed"]) == (7, 3, 0.25, -5)
    assert hp["eval_metric"] == "error@ 0.4,logloss"
    # typed Python values: integral numbers (numpy's too) are integers; others are refused
    est = XGBoost(num_round=np.int64(3), max_depth=2.0, nthread=1).fit(*_binary(40))
    assert est.hyperparameters_["num_round"] == 3 and est.hyperparameters_["max_depth"] == 2
    with pytest.raises(HyperparameterError, match="'num_round'"):
        XGBoost(num_round=2.5).fit(*_binary(40))


def test_kfold_on_a_libsvm_channel_with_an_index_without_a_value(tmp_path):
    # The abalone multiclass files of SageMaker's XGBoost examples end some lines with "8:" (no value).
    rng = np.random.default_rng(5)
    lines = []
    for i in range(90):
        values = rng.uniform(0.1, 1.0, 8)
        tokens = [f"{j + 1}:{v:.4f}" for j, v in enumerate(values)]
        if i % 7 == 0:
            tokens[-1] = "8:"
        lines.append(" ".join([str(i % 3), *tokens]))
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "abalone.libsvm").write_text("\n".join(lines) + "\n")
    est = XGBoost.from_sagemaker({"num_round": "3", "objective": "multi:softmax", "num_class": "3", "_kfold": "3",
                                  "eval_metric": "merror", "nthread": "1"})
    est.fit(Channel(tmp_path / "train", "text/libsvm"))
    assert len(est.boosters_) == 3 and est.out_of_fold_.shape[0] == 90
    assert "validation:merror" in est.metrics_
