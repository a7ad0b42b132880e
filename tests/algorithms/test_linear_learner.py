"""Linear Learner against scikit-learn on real data, and SageMaker's behaviours: model selection,
threshold calibration, scaling, class weights, early stopping, checkpoints, the SDK's hyperparameters,
metric names, response shapes and the ONNX export."""

from __future__ import annotations

import io
import json
import logging
import math
import re

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, make_classification
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import sagelocal
from sagelocal import DataFormatError, HyperparameterError
from sagelocal.base.runtime import Runtime

LL = sagelocal.LinearLearner


def three_way(X, y, seed=0, stratify=True):
    """60 / 20 / 20 train, validation, test."""
    strat = y if stratify else None
    X_tr, X_rest, y_tr, y_rest = train_test_split(X, y, test_size=0.4, random_state=seed, stratify=strat)
    X_va, X_te, y_va, y_te = train_test_split(X_rest, y_rest, test_size=0.5, random_state=seed,
                                              stratify=y_rest if stratify else None)
    return X_tr, y_tr, X_va, y_va, X_te, y_te


@pytest.fixture(scope="module")
def cancer():
    return three_way(*load_breast_cancer(return_X_y=True))


@pytest.fixture(scope="module")
def diabetes():
    return three_way(*load_diabetes(return_X_y=True), stratify=False)


@pytest.fixture(scope="module")
def digits():
    return three_way(*load_digits(return_X_y=True))


def standardized_fit(model, X_tr, y_tr):
    scaler = StandardScaler().fit(X_tr)
    model.fit(scaler.transform(X_tr), y_tr)
    return lambda X: model.predict(scaler.transform(X))


# ------------------------------------------------------------------------------ acceptance figures
def test_binary_breast_cancer_matches_logistic_regression(cancer):
    X_tr, y_tr, X_va, y_va, X_te, y_te = cancer
    reference = np.mean(standardized_fit(LogisticRegression(max_iter=5000), X_tr, y_tr)(X_te) == y_te)
    est = LL(predictor_type="binary_classifier", mini_batch_size=32).fit(X_tr, y_tr, validation=(X_va, y_va),
                                                                         test=(X_te, y_te))
    ours = np.mean(est.predict(X_te) == y_te)
    assert ours >= reference - 0.01
    assert est.metrics_["test:binary_classification_accuracy"] == pytest.approx(ours)


def test_regression_diabetes_rmse_within_2_percent_of_ridge(diabetes):
    X_tr, y_tr, X_va, y_va, X_te, y_te = diabetes
    reference = math.sqrt(skm.mean_squared_error(y_te, standardized_fit(Ridge(1.0), X_tr, y_tr)(X_te)))
    est = LL(predictor_type="regressor", mini_batch_size=32).fit(X_tr, y_tr, validation=(X_va, y_va))
    ours = math.sqrt(skm.mean_squared_error(y_te, est.predict(X_te)))
    assert ours <= 1.02 * reference


def test_multiclass_digits_matches_logistic_regression(digits):
    X_tr, y_tr, X_va, y_va, X_te, y_te = digits
    reference = np.mean(standardized_fit(LogisticRegression(max_iter=5000), X_tr, y_tr)(X_te) == y_te)
    est = LL(predictor_type="multiclass_classifier", num_classes=10, mini_batch_size=64, num_models=8,
             epochs=10).fit(X_tr, y_tr, validation=(X_va, y_va))
    assert np.mean(est.predict(X_te) == y_te) >= reference - 0.01
    assert est.predict_proba(X_te[:5]).sum(axis=1) == pytest.approx(np.ones(5))


def noisy_binary(n=3000, seed=0):
    X, y = make_classification(n_samples=n, n_features=12, n_informative=5, flip_y=0.15, weights=[0.7],
                               class_sep=0.6, random_state=seed)
    return train_test_split(X, y, test_size=0.4, random_state=seed, stratify=y)


def test_precision_at_target_recall_calibrates_the_threshold():
    X_tr, X_va, y_tr, y_va = noisy_binary()
    est = LL(predictor_type="binary_classifier", target_recall=0.9,
             binary_classifier_model_selection_criteria="precision_at_target_recall",
             num_models=4, epochs=5, mini_batch_size=100)
    est.fit(X_tr, y_tr, validation=(X_va, y_va))
    predicted = est.predict(X_va)
    assert skm.recall_score(y_va, predicted) >= 0.9
    assert est.metrics_["validation:recall"] == pytest.approx(skm.recall_score(y_va, predicted))
    assert est.threshold_ < 0.5  # 0.5 would not reach the recall on this noisy data
    # and the best precision this model's scores allow at that recall (scikit-learn's curve)
    precision, recall, _ = skm.precision_recall_curve(y_va, est.predict_proba(X_va)[:, 1])
    assert skm.precision_score(y_va, predicted) == pytest.approx(precision[recall >= 0.9].max())


def test_recall_at_target_precision_holds_the_precision():
    X_tr, X_va, y_tr, y_va = noisy_binary(seed=1)
    est = LL(predictor_type="binary_classifier", target_precision=0.9,
             binary_classifier_model_selection_criteria="recall_at_target_precision",
             num_models=4, epochs=5, mini_batch_size=100)
    est.fit(X_tr, y_tr, validation=(X_va, y_va))
    assert skm.precision_score(y_va, est.predict(X_va)) >= 0.9


@pytest.mark.parametrize("kind", ["binary_classifier", "regressor"])
def test_eight_models_are_as_good_as_the_best_of_the_same_eight_alone(kind, cancer, diabetes):
    X_tr, y_tr, X_va, y_va, _, _ = cancer if kind == "binary_classifier" else diabetes
    # patience 1: the variants stop at different epochs; sgd: a stopped variant must not coast on momentum
    common = {"predictor_type": kind, "epochs": 6, "mini_batch_size": 64, "early_stopping_patience": 1,
              "optimizer": "adam" if kind == "binary_classifier" else "sgd"}
    together = LL(num_models=8, **common).fit(X_tr, y_tr, validation=(X_va, y_va))
    name, sign = (("validation:binary_classification_accuracy", 1) if kind == "binary_classifier"
                  else ("validation:objective_loss", -1))
    alone = [LL(num_models=1, **common, **variant).fit(X_tr, y_tr, validation=(X_va, y_va)).metrics_[name]
             for variant in together.variants_]
    assert len(set(alone)) > 1  # the variants differ
    # one validation row of slack for float rounding between an 8-column and a 1-column product
    slack = 1.0 / len(y_va) if kind == "binary_classifier" else 1e-4 * abs(max(alone))
    assert sign * together.metrics_[name] >= max(sign * a for a in alone) - slack
    assert sign * alone[together.chosen_model_] >= max(sign * a for a in alone) - slack


@pytest.mark.filterwarnings("ignore:.*SDK v2")
def test_sdk_hyperparameters_are_accepted_unchanged(cancer):
    sagemaker = pytest.importorskip("sagemaker")
    boto3 = pytest.importorskip("boto3")
    session = sagemaker.Session(boto_session=boto3.Session(region_name="us-east-1"))
    sdk = sagemaker.LinearLearner(
        role="arn:aws:iam::123456789012:role/Dummy", instance_count=1, instance_type="ml.m5.large",
        sagemaker_session=session, data_location="s3://dummy-bucket/records", predictor_type="binary_classifier",
        binary_classifier_model_selection_criteria="f1", positive_example_weight_mult="balanced", epochs=4,
        use_bias=True, normalize_data=True, optimizer="sgd", momentum=0.5, wd=1e-4, l1=1e-5, num_models=3,
        early_stopping_patience=2, early_stopping_tolerance=0.01, use_lr_scheduler=True, lr_scheduler_step=10,
        lr_scheduler_factor=0.99, lr_scheduler_minimum_lr=1e-5, init_method="normal", init_sigma=0.02)
    X_tr, y_tr, X_va, y_va, _, _ = cancer
    sdk.feature_dim, sdk.mini_batch_size = X_tr.shape[1], 50  # what the SDK sets from the data in fit()
    strings = sdk.hyperparameters()
    assert all(isinstance(v, str) for v in strings.values()) and strings["use_bias"] == "True"
    est = LL.from_sagemaker(strings).fit(X_tr, y_tr, validation=(X_va, y_va))
    assert est.hyperparameters_["positive_example_weight_mult"] == "balanced"
    assert est.hyperparameters_["binary_classifier_model_selection_criteria"] == "f1"
    assert est.metrics_["validation:binary_classification_accuracy"] > 0.9


@pytest.mark.parametrize("kind", ["binary_classifier", "multiclass_classifier", "regressor", "hinge"])
def test_onnx_export_answers_as_predict_records(kind, tmp_path, cancer, diabetes, digits):
    ort = pytest.importorskip("onnxruntime")
    data = {"binary_classifier": cancer, "hinge": cancer, "regressor": diabetes, "multiclass_classifier": digits}
    X_tr, y_tr, _, _, X_te, _ = data[kind]
    extra = {"hinge": {"loss": "hinge_loss"}, "multiclass_classifier": {"num_classes": 10}}.get(kind, {})
    est = LL(predictor_type="binary_classifier" if kind == "hinge" else kind, num_models=2, epochs=2,
             mini_batch_size=64, **extra).fit(X_tr, y_tr)
    session = ort.InferenceSession(est.to_onnx(tmp_path / "model.onnx"))
    outputs = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {"features": X_te.astype(np.float32)})))
    records = est.predict_records(X_te)
    np.testing.assert_allclose(outputs["score"], [r["score"] for r in records], rtol=1e-5, atol=1e-5)
    if kind != "regressor":
        np.testing.assert_array_equal(outputs["predicted_label"], [r["predicted_label"] for r in records])


# -------------------------------------------------------------------------------- responses, metrics
def test_response_records_have_the_spec_shapes(cancer, digits, diabetes):
    X, y = cancer[0], cancer[1]
    binary = LL(predictor_type="binary_classifier", num_models=2, epochs=1).fit(X, y).predict_records(X[:3])
    assert all(set(r) == {"score", "predicted_label"} and isinstance(r["score"], float)
               and isinstance(r["predicted_label"], int) and r["predicted_label"] in (0, 1) for r in binary)
    X, y = digits[0], digits[1]
    multi = LL(predictor_type="multiclass_classifier", num_classes=10, num_models=2, epochs=1).fit(X, y)
    records = multi.predict_records(X[:3])
    assert all(len(r["score"]) == 10 and r["predicted_label"] == int(np.argmax(r["score"])) for r in records)
    X, y = diabetes[0], diabetes[1]
    regression = LL(predictor_type="regressor", num_models=2, epochs=1).fit(X, y).predict_records(X[:3])
    assert all(set(r) == {"score"} and isinstance(r["score"], float) for r in regression)
    # JSON wraps them under "predictions"; RecordIO-protobuf carries each key as a Float32 tensor
    body = json.loads(json.dumps({LL.response_key: binary}))
    assert body["predictions"][0].keys() == {"score", "predicted_label"}
    from sagemaker.amazon.common import read_records

    from sagelocal.io import encode_records

    decoded = read_records(io.BytesIO(encode_records(records)))
    assert sorted(decoded[0].label) == ["predicted_label", "score"]
    assert decoded[0].label["predicted_label"].float32_tensor.values[0] == float(records[0]["predicted_label"])
    np.testing.assert_allclose(decoded[0].label["score"].float32_tensor.values, records[0]["score"], rtol=1e-6)


EXPECTED_METRICS = {
    "binary_classifier": {"binary_classification_accuracy", "binary_f_beta", "precision", "recall",
                          "roc_auc_score", "objective_loss"},
    "multiclass_classifier": {"multiclass_accuracy", "multiclass_top_k_accuracy", "macro_precision", "macro_recall",
                              "macro_f_beta", "dcg", "objective_loss"},
    "regressor": {"mse", "rmse", "absolute_loss", "objective_loss"},
}


@pytest.mark.parametrize("kind", list(EXPECTED_METRICS))
def test_validation_and_test_metrics_have_sagemaker_names_and_values(kind, cancer, digits, diabetes):
    X_tr, y_tr, X_va, y_va, X_te, y_te = {"binary_classifier": cancer, "multiclass_classifier": digits,
                                          "regressor": diabetes}[kind]
    extra = {"num_classes": 10} if kind == "multiclass_classifier" else {}
    est = LL(predictor_type=kind, num_models=2, epochs=2, mini_batch_size=64, f_beta=2.0, **extra).fit(
        X_tr, y_tr, validation=(X_va, y_va), test=(X_te, y_te))
    names = set(est.metrics_) - {"train:objective_loss"}
    expected = {f"validation:{n}" for n in EXPECTED_METRICS[kind]} | {
        f"test:{n}" for n in EXPECTED_METRICS[kind] if n != "rmse"}
    assert names == expected
    assert expected <= {m.name for m in LL.metrics}
    m = est.metrics_
    if kind == "binary_classifier":
        p = est.predict(X_te)
        assert m["test:binary_f_beta"] == pytest.approx(skm.fbeta_score(y_te, p, beta=2.0))
        assert m["test:roc_auc_score"] == pytest.approx(skm.roc_auc_score(y_te, est.predict_proba(X_te)[:, 1]))
        assert m["test:objective_loss"] == pytest.approx(skm.log_loss(y_te, est.predict_proba(X_te)), rel=1e-6)
    elif kind == "multiclass_classifier":
        proba = est.predict_proba(X_te)
        assert m["test:multiclass_top_k_accuracy"] == pytest.approx(skm.top_k_accuracy_score(y_te, proba, k=3))
        assert m["test:objective_loss"] == pytest.approx(skm.log_loss(y_te, proba, labels=range(10)), rel=1e-6)
    else:
        p = est.predict(X_va)
        assert m["validation:rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y_va, p)))
        assert m["validation:objective_loss"] == pytest.approx(m["validation:mse"])  # squared_loss
        assert m["validation:absolute_loss"] == pytest.approx(skm.mean_absolute_error(y_va, p))


def test_metric_lines_match_the_metric_definitions(cancer, caplog):
    X_tr, y_tr, X_va, y_va, _, _ = cancer
    with caplog.at_level(logging.INFO, logger="sagelocal"):
        LL(predictor_type="binary_classifier", num_models=2, epochs=2).fit(X_tr, y_tr, validation=(X_va, y_va))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "#quality_metric: host=algo-1, epoch=1, validation objective_loss <loss>=" in text
    for definition in LL.metric_definitions():
        if definition["Name"] == "validation:recall":
            assert float(re.search(definition["Regex"], text).group(1)) <= 1.0


# ------------------------------------------------------------------------------ SageMaker behaviours
def test_sparse_and_dense_training_agree(cancer):
    X = cancer[0].copy()
    X[X < np.median(X, axis=0)] = 0.0
    common = {"predictor_type": "binary_classifier", "num_models": 3, "epochs": 3, "mini_batch_size": 64}
    dense = LL(**common).fit(X, cancer[1])
    sparse = LL(**common).fit(sp.csr_matrix(X), cancer[1])
    np.testing.assert_allclose(sparse.decision_function(sp.csr_matrix(X)), dense.decision_function(X),
                               rtol=1e-3, atol=1e-3)


def test_labels_are_standardized_in_training_and_mapped_back():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 5)) * [1, 10, 100, 0.1, 1] + 50
    y = 1e4 + 3e3 * ((X - 50) / [1, 10, 100, 0.1, 1]) @ [1.0, -2.0, 0.5, 0.0, 1.0] + rng.normal(0, 100, 2000)
    est = LL(predictor_type="regressor", num_models=4, epochs=5, mini_batch_size=100).fit(X, y)
    assert skm.r2_score(y, est.predict(X)) > 0.99
    # coef_ / intercept_ are on the original scales: they reproduce the predictions (of float32 features)
    X32 = X.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(X32 @ est.coef_[0] + est.intercept_[0], est.predict(X), rtol=1e-6)


def pinball(y, p, q):
    r = y - p
    return float(np.mean(np.maximum(q * r, (q - 1) * r)))


@pytest.fixture(scope="module")
def heavy_tailed():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 4))
    return X, X @ [1.0, -1.0, 2.0, 0.5] + rng.standard_t(3, 3000)


@pytest.mark.parametrize("loss, q", [("quantile_loss", 0.9), ("absolute_loss", 0.5)])
def test_quantile_and_absolute_losses_match_scikit_learn_quantile_regression(loss, q, heavy_tailed):
    from sklearn.linear_model import QuantileRegressor

    X, y = heavy_tailed
    est = LL(predictor_type="regressor", loss=loss, quantile=q, num_models=4, epochs=6, mini_batch_size=100).fit(X, y)
    reference = QuantileRegressor(quantile=q, alpha=0.0).fit(X, y)
    assert np.mean(y <= est.predict(X)) == pytest.approx(q, abs=0.03)
    assert pinball(y, est.predict(X), q) <= 1.02 * pinball(y, reference.predict(X), q)


@pytest.mark.parametrize("loss", ["huber_loss", "eps_insensitive_squared_loss", "eps_insensitive_absolute_loss",
                                  "squared_loss"])
def test_other_regression_losses_recover_the_coefficients(loss, heavy_tailed):
    X, y = heavy_tailed
    y = y.copy()
    if loss == "huber_loss":
        y[:60] += 200.0  # 2% gross outliers, which the squared loss would follow
    est = LL(predictor_type="regressor", loss=loss, num_models=4, epochs=6, mini_batch_size=100,
             loss_insensitivity=0.5).fit(X, y)
    np.testing.assert_allclose(est.coef_[0], [1.0, -1.0, 2.0, 0.5], atol=0.2)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_every_optimizer_learns(optimizer, cancer):
    X_tr, y_tr, X_va, y_va, _, _ = cancer
    est = LL(predictor_type="binary_classifier", optimizer=optimizer, num_models=4, epochs=5,
             mini_batch_size=32).fit(X_tr, y_tr, validation=(X_va, y_va))
    assert est.metrics_["validation:binary_classification_accuracy"] > 0.93


def test_hinge_loss_gives_margins_and_no_probabilities(cancer):
    X_tr, y_tr, X_va, y_va, _, _ = cancer
    est = LL(predictor_type="binary_classifier", loss="hinge_loss", num_models=4, epochs=5,
             mini_batch_size=32).fit(X_tr, y_tr, validation=(X_va, y_va))
    scores = np.array([r["score"] for r in est.predict_records(X_va)])
    assert scores.min() < 0 < scores.max() and np.abs(scores).max() > 1  # margins, not probabilities
    assert np.mean(est.predict(X_va) == y_va) > 0.93
    with pytest.raises(DataFormatError, match="predict_proba"):
        est.predict_proba(X_va)


def test_l1_zeroes_weights():
    X, y = make_classification(n_samples=1500, n_features=30, n_informative=3, n_redundant=0, random_state=0)
    common = {"predictor_type": "binary_classifier", "num_models": 1, "wd": 0.0, "epochs": 8, "mini_batch_size": 50}
    sparse = LL(l1=0.02, **common).fit(X, y)
    dense = LL(l1=0.0, **common).fit(X, y)
    assert np.sum(sparse.model_.weights[:, 0] == 0.0) >= 15 and np.all(dense.model_.weights[:, 0] != 0.0)
    assert np.mean(sparse.predict(X) == y) >= np.mean(dense.predict(X) == y) - 0.03


def test_positive_example_weight_balanced_raises_minority_recall():
    X, y = make_classification(n_samples=3000, n_features=10, weights=[0.92], flip_y=0.05, class_sep=0.5,
                               random_state=3)
    common = {"predictor_type": "binary_classifier", "num_models": 1, "epochs": 5, "mini_batch_size": 100,
              "binary_classifier_model_selection_criteria": "loss_function"}  # no threshold calibration
    plain = LL(positive_example_weight_mult=1.0, **common).fit(X, y)
    balanced = LL(positive_example_weight_mult="balanced", **common).fit(X, y)
    assert plain.threshold_ == 0.5 and balanced.threshold_ == 0.5
    assert skm.recall_score(y, balanced.predict(X)) > skm.recall_score(y, plain.predict(X)) + 0.2
    assert balanced.variants_[0]["positive_example_weight_mult"] == pytest.approx(np.sum(y == 0) / np.sum(y == 1))
    chosen = LL(positive_example_weight_mult="auto", **{**common, "num_models": 6}).fit(X, y)
    weights = [v["positive_example_weight_mult"] for v in chosen.variants_]
    assert min(weights) == 1.0 and max(weights) > 2.0  # the variants span unweighted .. balanced


def test_balance_multiclass_weights_raises_macro_recall():
    X, y = make_classification(n_samples=3000, n_features=10, n_informative=6, n_classes=3, weights=[0.85, 0.1],
                               class_sep=0.6, random_state=0)
    common = {"predictor_type": "multiclass_classifier", "num_classes": 3, "num_models": 1, "epochs": 5,
              "mini_batch_size": 100}
    plain = LL(**common).fit(X, y)
    balanced = LL(balance_multiclass_weights=True, **common).fit(X, y)
    assert skm.recall_score(y, balanced.predict(X), average="macro") > \
        skm.recall_score(y, plain.predict(X), average="macro") + 0.05


def test_early_stopping_with_patience_and_tolerance(cancer):
    X_tr, y_tr, X_va, y_va, _, _ = cancer
    common = {"predictor_type": "binary_classifier", "num_models": 2, "epochs": 12, "mini_batch_size": 64}
    # a 50% relative improvement is never reached after the first epoch: stop after `patience` more
    quick = LL(early_stopping_patience=2, early_stopping_tolerance=0.5, **common).fit(X_tr, y_tr,
                                                                                      validation=(X_va, y_va))
    assert quick.epochs_run_ == 3
    full = LL(early_stopping_patience=20, **common).fit(X_tr, y_tr, validation=(X_va, y_va))
    assert full.epochs_run_ == 12


def test_checkpoints_resume_where_training_stopped(cancer, tmp_path):
    X_tr, y_tr, X_va, y_va, _, _ = cancer
    common = {"predictor_type": "binary_classifier", "num_models": 3, "mini_batch_size": 64,
              "early_stopping_patience": 10}
    straight = LL(epochs=6, **common).fit(X_tr, y_tr, validation=(X_va, y_va))
    first = LL(epochs=3, **common)
    first.runtime = Runtime(checkpoint_dir=str(tmp_path))
    first.fit(X_tr, y_tr, validation=(X_va, y_va))
    assert (tmp_path / "checkpoint.npz").exists()
    resumed = LL(epochs=6, **common)
    resumed.runtime = Runtime(checkpoint_dir=str(tmp_path))
    resumed.fit(X_tr, y_tr, validation=(X_va, y_va))
    np.testing.assert_allclose(resumed.decision_function(X_va), straight.decision_function(X_va), rtol=1e-6)


def test_without_validation_a_training_sample_chooses_and_calibrates(cancer):
    X_tr, y_tr, _, _, X_te, y_te = cancer
    est = LL(predictor_type="binary_classifier", num_models=6, epochs=4, mini_batch_size=32,
             binary_classifier_model_selection_criteria="precision_at_target_recall", target_recall=0.95).fit(
        X_tr, y_tr)
    assert skm.recall_score(y_tr, est.predict(X_tr)) >= 0.95  # the sample is the training rows here
    assert not any(name.startswith("validation:") for name in est.metrics_)


def test_csv_channel_trains_like_arrays(cancer, tmp_path):
    X_tr, y_tr = cancer[0], cancer[1]
    folder = tmp_path / "train"
    folder.mkdir()
    np.savetxt(folder / "part-0.csv", np.column_stack([y_tr, X_tr]).astype(np.float32), delimiter=",", fmt="%.9g")
    common = {"predictor_type": "binary_classifier", "num_models": 2, "epochs": 2, "mini_batch_size": 64}
    from_channel = LL(**common).fit(sagelocal.io.Channel(folder, "text/csv"))
    from_arrays = LL(**common).fit(X_tr.astype(np.float32), y_tr)
    np.testing.assert_allclose(from_channel.decision_function(X_tr), from_arrays.decision_function(X_tr), rtol=1e-5)


def test_save_load_keeps_threshold_and_variants(cancer, tmp_path):
    X_tr, y_tr, X_va, y_va, _, _ = cancer
    est = LL(predictor_type="binary_classifier", num_models=3, epochs=2,
             binary_classifier_model_selection_criteria="recall_at_target_precision").fit(
        X_tr, y_tr, validation=(X_va, y_va))
    loaded = sagelocal.load(est.save(tmp_path / "model"))
    assert loaded.threshold_ == est.threshold_ and loaded.variants_ == est.variants_
    assert loaded.chosen_model_ == est.chosen_model_ and loaded.metrics_ == est.metrics_


# ----------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kind, labels, message", [
    ("binary_classifier", [0, 1, 2], "0 or 1"),
    ("multiclass_classifier", [0, 1, 3], "0..2"),
    ("multiclass_classifier", [0, 1.5, 2], "0..2"),
])
def test_invalid_labels_are_rejected_naming_the_channel(kind, labels, message):
    X = np.random.default_rng(0).normal(size=(30, 3))
    y = np.resize(labels, 30).astype(float)
    with pytest.raises(DataFormatError, match=message) as info:
        LL(predictor_type=kind, num_classes=3 if "multi" in kind else None, epochs=1).fit(X, y)
    assert "channel 'train'" in str(info.value)
    with pytest.raises(DataFormatError, match="channel 'validation'"):
        LL(predictor_type=kind, num_classes=3 if "multi" in kind else None, epochs=1).fit(
            X, np.zeros(30), validation=(X, y))


def test_cross_parameter_and_data_checks():
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.zeros(20)
    with pytest.raises(HyperparameterError, match="'loss'") as info:
        LL(predictor_type="regressor", loss="logistic").fit(X, y)
    assert info.value.names == ["loss"]
    with pytest.raises(HyperparameterError) as info:
        LL.from_sagemaker({"predictor_type": "multiclass_classifier"})
    assert info.value.names == ["num_classes"]
    with pytest.raises(DataFormatError, match="feature_dim"):
        LL(predictor_type="regressor", feature_dim=5).fit(X, y)
    with pytest.raises(DataFormatError, match="needs labels"):
        LL(predictor_type="regressor").fit(X)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(DataFormatError, match="finite"):
        LL(predictor_type="regressor").fit(bad, y)


def test_tuning_jobs_train_one_model():
    est = LL.from_sagemaker({"predictor_type": "regressor", "num_models": "16",
                             "_tuning_objective_metric": "validation:rmse"})
    assert est.num_models == 1
    assert LL.from_sagemaker({"predictor_type": "regressor", "num_models": "16"}).num_models == 16


def test_string_forms_of_the_special_values():
    est = sagelocal.estimator("linear-learner", predictor_type="binary_classifier",
                              positive_example_weight_mult="balanced", normalize_data="auto", num_models="auto",
                              binary_classifier_model_selection_criteria="cross_entropy_loss")
    assert est.positive_example_weight_mult == "balanced" and est.normalize_data == "auto"
    with pytest.raises(HyperparameterError, match="'balanced'"):
        sagelocal.estimator("linear-learner", positive_example_weight_mult="heavy")


def test_device_cuda_without_a_gpu_is_rejected():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(HyperparameterError, match="'device'"):
        LL(predictor_type="regressor", device="cuda").fit(np.ones((5, 2)), np.ones(5))


@pytest.mark.filterwarnings("ignore:.*SDK v2")
def test_num_classes_is_accepted_and_ignored_unless_multiclass():
    # The SDK's own tests send num_classes="1" for a binary classifier; the Developer Guide says the
    # algorithm ignores num_classes unless predictor_type is multiclass_classifier.
    X, y = make_classification(n_samples=120, n_features=4, random_state=0)
    for kind, value in [("binary_classifier", "1"), ("regressor", "2"), ("binary_classifier", "0")]:
        strings = {"predictor_type": kind, "num_classes": value, "num_models": "1", "epochs": "1"}
        est = LL.from_sagemaker(strings)
        assert sagelocal.estimator("linear-learner", **strings).get_params() == est.get_params()
        est.fit(X.astype(np.float32), y.astype(np.float32))
        assert est.predict(X[:3]).shape == (3,)
    with pytest.raises(HyperparameterError) as info:  # still an integer
        LL.from_sagemaker({"predictor_type": "binary_classifier", "num_classes": "two"})
    assert info.value.names == ["num_classes"]
    for strings in ({"predictor_type": "multiclass_classifier", "num_classes": "2"},
                    {"num_classes": "2"}):  # predictor_type unknown: the range still applies
        with pytest.raises(HyperparameterError) as info:
            LL.from_sagemaker(strings)
        assert "num_classes" in info.value.names
        assert "[3, 1000000]" in str(info.value) and "got '2'" in str(info.value)
    with pytest.raises(HyperparameterError, match="'num_classes'"):
        LL(predictor_type="multiclass_classifier", num_classes=2).fit(X, y)
    sagemaker = pytest.importorskip("sagemaker")
    boto3 = pytest.importorskip("boto3")
    sdk = sagemaker.LinearLearner(
        role="arn:aws:iam::123456789012:role/Dummy", instance_count=1, instance_type="ml.m5.large",
        sagemaker_session=sagemaker.Session(boto_session=boto3.Session(region_name="us-east-1")),
        data_location="s3://dummy-bucket/records", predictor_type="binary_classifier", num_classes=1)
    sdk.feature_dim, sdk.mini_batch_size = 4, 50
    assert sdk.hyperparameters()["num_classes"] == "1"
    assert LL.from_sagemaker(sdk.hyperparameters()).num_classes == 1
