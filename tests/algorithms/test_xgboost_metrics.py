"""Every XGBoost metric name of the spec is produced, with the value of scikit-learn's definition (or the
documented formula where scikit-learn has none), computed on the final model's validation predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import xgboost as xgb
from scipy.special import gammaln
from scipy.stats import norm
from sklearn import metrics as skm
from sklearn.datasets import make_classification

from sagelocal import SagelocalError, XGBoost
from sagelocal.algorithms.xgboost.metrics import predicted_labels
from sagelocal.io import Channel
from tests.conftest import spec_dir


@pytest.fixture(autouse=True)
def _one_thread():
    with xgb.config_context(nthread=1):
        yield


def _fit(X, y, hp, split=0.6):
    cut = int(len(y) * split)
    est = XGBoost(nthread=1, **hp)
    est.fit(X[:cut], y[:cut], validation=(X[cut:], y[cut:]))
    return est, est.predict(X[cut:]).astype(np.float64), y[cut:].astype(np.float64)


def _binary_expected(p, y):
    labels = (p > 0.5).astype(int)
    return {
        "accuracy": skm.accuracy_score(y, labels), "balanced_accuracy": skm.balanced_accuracy_score(y, labels),
        "f1": skm.f1_score(y, labels, average="macro"), "f1_binary": skm.f1_score(y, labels),
        "f1_macro": skm.f1_score(y, labels, average="macro"), "precision": skm.precision_score(y, labels),
        "recall": skm.recall_score(y, labels), "precision_macro": skm.precision_score(y, labels, average="macro"),
        "precision_micro": skm.precision_score(y, labels, average="micro"),
        "recall_macro": skm.recall_score(y, labels, average="macro"),
        "recall_micro": skm.recall_score(y, labels, average="micro"),
        "auc": skm.roc_auc_score(y, p), "aucpr": skm.average_precision_score(y, p),
        "error": 1 - skm.accuracy_score(y, labels), "logloss": skm.log_loss(y, p),
        "mse": skm.mean_squared_error(y, p), "rmse": np.sqrt(skm.mean_squared_error(y, p)),
        "mae": skm.mean_absolute_error(y, p), "r2": skm.r2_score(y, p),
    }


def _check(est, expected):
    assert set(est.metrics_) == {f"validation:{name}" for name in expected}
    for name, value in expected.items():
        assert est.metrics_[f"validation:{name}"] == pytest.approx(value, rel=1e-5, abs=1e-6), name


def test_binary_classification_metrics():
    X, y = make_classification(n_samples=700, n_features=8, flip_y=0.15, random_state=0)
    names = list(_binary_expected(np.array([0.2, 0.7]), np.array([0.0, 1.0])))
    est, p, yv = _fit(X.astype(np.float32), y.astype(np.float32),
                      {"num_round": 6, "objective": "binary:logistic", "eval_metric": ",".join(names)})
    _check(est, _binary_expected(p, yv))


def test_multiclass_metrics():
    X, y = make_classification(n_samples=900, n_features=8, n_informative=5, n_classes=3, flip_y=0.1,
                               random_state=1)
    est, p, yv = _fit(X.astype(np.float32), y.astype(np.float32),
                      {"num_round": 5, "objective": "multi:softprob", "num_class": 3,
                       "eval_metric": "merror,mlogloss,aucpr,accuracy,f1,precision_micro,recall_macro"})
    labels = p.argmax(axis=1)
    onehot = np.eye(3)[yv.astype(int)]
    normalised = p / p.sum(axis=1, keepdims=True)  # float32 probabilities sum to 1 within 1e-7
    _check(est, {"merror": 1 - skm.accuracy_score(yv, labels), "mlogloss": skm.log_loss(yv, normalised),
                 "aucpr": skm.average_precision_score(onehot, p, average="macro"),
                 "accuracy": skm.accuracy_score(yv, labels), "f1": skm.f1_score(yv, labels, average="macro"),
                 "precision_micro": skm.precision_score(yv, labels, average="micro"),
                 "recall_macro": skm.recall_score(yv, labels, average="macro")})


def _positive_target(n=800, seed=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    y = np.exp(0.4 * X[:, 0] - 0.3 * X[:, 1] + 0.2 * rng.normal(size=n)).astype(np.float32)
    return X, y


def test_positive_regression_metrics():
    X, y = _positive_target()
    est, p, yv = _fit(X, y, {"num_round": 8, "objective": "reg:gamma",
                             "eval_metric": "gamma-deviance,gamma-nloglik,mape,rmsle,mphe,poisson-nloglik"})
    _check(est, {
        "gamma-deviance": skm.mean_gamma_deviance(yv, p), "mape": skm.mean_absolute_percentage_error(yv, p),
        "rmsle": np.sqrt(skm.mean_squared_log_error(yv, p)),
        "gamma-nloglik": np.mean(yv / p + np.log(p)),  # gamma likelihood with unit dispersion
        "mphe": np.mean(np.sqrt(1 + (p - yv) ** 2) - 1),  # pseudo-Huber, slope 1
        "poisson-nloglik": np.mean(p - yv * np.log(p) + gammaln(yv + 1)),
    })


def test_tweedie_nloglik_uses_the_variance_power():
    X, y = _positive_target(seed=3)
    y[::3] = 0.0
    est, p, yv = _fit(X, y, {"num_round": 6, "objective": "reg:tweedie", "tweedie_variance_power": 1.3,
                             "eval_metric": "tweedie-nloglik"})
    rho = 1.3
    _check(est, {"tweedie-nloglik": np.mean(-(yv * p ** (1 - rho) / (1 - rho) - p ** (2 - rho) / (2 - rho)))})


def test_cox_partial_likelihood():
    X, times = _positive_target(seed=4)
    times = times + np.arange(len(times)) * 1e-4  # distinct times: no tie convention involved
    censored = np.random.default_rng(4).random(len(times)) < 0.3
    y = np.where(censored, -times, times).astype(np.float32)  # XGBoost: negative = right-censored
    est, hazard, yv = _fit(X, y, {"num_round": 5, "objective": "survival:cox", "eval_metric": "cox-nloglik"})
    t = np.abs(yv)
    events = np.flatnonzero(yv > 0)
    terms = [np.log(hazard[i]) - np.log(hazard[t >= t[i]].sum()) for i in events]
    _check(est, {"cox-nloglik": -np.mean(terms)})


def test_aft_metrics_on_observed_times():
    X, y = _positive_target(seed=5)
    est, p, yv = _fit(X, y, {"num_round": 5, "objective": "survival:aft",
                             "eval_metric": "aft-nloglik,interval-regression-accuracy"})
    z = np.log(yv) - np.log(p)  # normal errors, scale 1: every row an observed time [y, y]
    _check(est, {"aft-nloglik": -np.mean(norm.logpdf(z) - np.log(yv)),
                 "interval-regression-accuracy": np.mean((p >= yv) & (p <= yv))})


def test_ranking_metrics_per_query(tmp_path):
    rng = np.random.default_rng(6)
    queries, per_query = 60, 8
    X = rng.normal(size=(queries * per_query, 5)).astype(np.float32)
    relevant = (X[:, 0] + 0.7 * rng.normal(size=len(X)) > 0.6).astype(np.float32)
    relevant[::per_query] = 1.0  # every query has a relevant document
    qid = np.repeat(np.arange(queries), per_query)
    lines = [f"{relevant[i]:g} qid:{qid[i]}" + "".join(f" {j}:{v:.6g}" for j, v in enumerate(X[i]))
             for i in range(len(X))]
    cut = 40 * per_query
    (tmp_path / "train.libsvm").write_text("\n".join(lines[:cut]) + "\n")
    (tmp_path / "validation.libsvm").write_text("\n".join(lines[cut:]) + "\n")

    def Files(path, name):  # a File-mode channel over one file
        return Channel(path, "text/libsvm", name=name)

    est = XGBoost(num_round=5, objective="rank:pairwise", eval_metric="ndcg,map", nthread=1)
    est.fit(Files(tmp_path / "train.libsvm", "train"), validation=Files(tmp_path / "validation.libsvm", "validation"))
    scores = est.predict(sp.csr_matrix(X[cut:]))
    rel, groups = relevant[cut:], qid[cut:]
    ndcg = [skm.ndcg_score([rel[groups == g]], [scores[groups == g]]) for g in np.unique(groups)]
    ap = [skm.average_precision_score(rel[groups == g], scores[groups == g]) for g in np.unique(groups)]
    _check(est, {"ndcg": np.mean(ndcg), "map": np.mean(ap)})


def test_every_spec_metric_is_covered_by_these_tests():
    spec = spec_dir()
    if spec is None:
        pytest.skip("../shared/spec is not beside the repository")
    metrics = json.loads((spec / "algorithms" / "xgboost.json").read_text())["metrics"]
    names = {m["name"].split(":", 1)[1] for m in metrics}
    covered = set(_binary_expected(np.array([0.2, 0.7]), np.array([0.0, 1.0]))) | {
        "merror", "mlogloss", "gamma-deviance", "gamma-nloglik", "mape", "rmsle", "mphe", "poisson-nloglik",
        "tweedie-nloglik", "cox-nloglik", "aft-nloglik", "interval-regression-accuracy", "ndcg", "map"}
    assert names == covered


@pytest.mark.parametrize("objective, preds, expected", [
    ("binary:logistic", [0.2, 0.7], [0, 1]),
    ("binary:logitraw", [-0.3, 0.1], [0, 1]),
    ("multi:softmax", [2.0, 0.0], [2, 0]),
    ("multi:softprob", [[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]], [1, 0]),
])
def test_labels_follow_the_objective(objective, preds, expected):
    # the container thresholds every prediction at 0, so every binary:logistic probability is "positive"
    np.testing.assert_array_equal(predicted_labels(np.array(preds), objective), expected)


def test_binary_precision_on_several_classes_is_a_clear_error():
    X, y = make_classification(n_samples=200, n_features=6, n_informative=4, n_classes=3, random_state=7)
    with pytest.raises(SagelocalError, match="'precision'"):
        XGBoost(num_round=2, objective="multi:softmax", num_class=3, eval_metric="precision", nthread=1).fit(
            X[:150], y[:150], validation=(X[150:], y[150:]))
