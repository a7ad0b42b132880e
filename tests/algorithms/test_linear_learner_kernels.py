"""Linear Learner's numeric parts against independent oracles: torch autograd for the gradients,
exhaustive threshold search and scikit-learn for calibration and metrics, single models for the batch."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from sagelocal.algorithms.linear_learner.hyperparameters import HYPERPARAMETERS
from sagelocal.algorithms.linear_learner.kernels import Ensemble, LossSpec, Standardizer, loss_and_grad
from sagelocal.algorithms.linear_learner.metrics import (
    binary_metrics,
    calibrate,
    multiclass_metrics,
    regression_metrics,
)
from sagelocal.algorithms.linear_learner.settings import Variants, make_variants, resolve

LOSSES = ["logistic", "hinge_loss", "squared_loss", "absolute_loss", "eps_insensitive_squared_loss",
          "eps_insensitive_absolute_loss", "quantile_loss", "huber_loss", "softmax_loss"]


def settings_for(**given):
    hp = HYPERPARAMETERS.parse({"predictor_type": "regressor", **given})
    return resolve(hp)


@pytest.mark.parametrize("name", LOSSES)
def test_gradients_match_autograd(name):
    rng = np.random.default_rng(0)
    k = 4 if name == "softmax_loss" else 1
    z = torch.tensor(rng.normal(size=(50, 3, k)) * 2, dtype=torch.float64, requires_grad=True)
    if name == "softmax_loss":
        y = torch.tensor(rng.integers(0, k, 50), dtype=torch.float64)
    elif name in ("logistic", "hinge_loss"):
        y = torch.tensor(rng.integers(0, 2, 50), dtype=torch.float64)
    else:
        y = torch.tensor(rng.normal(size=50) * 2, dtype=torch.float64)
    spec = LossSpec(name, margin=0.7, insensitivity=0.3, quantile=0.8, huber_delta=0.9)
    _, dz = loss_and_grad(spec, z.detach(), y)
    loss, _ = loss_and_grad(spec, z, y, grad=False)
    loss.sum().backward()
    np.testing.assert_allclose(dz.detach().numpy(), z.grad.numpy(), atol=1e-9)


def test_loss_values_match_their_definitions():
    z = torch.tensor([[[2.0]], [[-1.0]], [[0.2]]], dtype=torch.float64)
    y = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    logistic, _ = loss_and_grad(LossSpec("logistic"), z, y, grad=False)
    np.testing.assert_allclose(logistic[:, 0], [math.log1p(math.exp(-2)), math.log1p(math.exp(1)),
                                                math.log1p(math.exp(0.2))])
    hinge, _ = loss_and_grad(LossSpec("hinge_loss", margin=1.0), z, y, grad=False)
    np.testing.assert_allclose(hinge[:, 0], [0.0, 2.0, 1.2])
    target = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)  # errors z - y: 1, -2, -0.8
    quantile, _ = loss_and_grad(LossSpec("quantile_loss", quantile=0.9), z, target, grad=False)
    np.testing.assert_allclose(quantile[:, 0], [0.1 * 1.0, 0.9 * 2.0, 0.9 * 0.8])
    huber, _ = loss_and_grad(LossSpec("huber_loss", huber_delta=1.0), z, target, grad=False)
    np.testing.assert_allclose(huber[:, 0], [0.5, 1.5, 0.32])
    eps, _ = loss_and_grad(LossSpec("eps_insensitive_absolute_loss", insensitivity=0.9), z, target, grad=False)
    np.testing.assert_allclose(eps[:, 0], [0.1, 1.1, 0.0], atol=1e-12)


# ------------------------------------------------------------------------------------ calibration
def brute_force(scores, labels, criterion, beta=1.0, target=0.8):
    """Best value over every threshold at a distinct score (and 'nothing positive'), by scikit-learn."""
    best = -np.inf
    for threshold in [np.inf, *np.unique(scores)]:
        predicted = (scores >= threshold).astype(int)
        precision, recall, f_beta, _ = skm.precision_recall_fscore_support(
            labels, predicted, beta=beta, average="binary", zero_division=0)
        if criterion == "accuracy":
            value = skm.accuracy_score(labels, predicted)
        elif criterion == "f_beta":
            value = f_beta
        elif criterion == "precision_at_target_recall":
            value = precision if recall >= target else recall - 1.0
        else:
            value = recall if precision >= target else precision - 1.0
        best = max(best, value)
    return best


@pytest.mark.parametrize("criterion", ["accuracy", "f_beta", "precision_at_target_recall",
                                       "recall_at_target_precision"])
def test_calibration_finds_the_best_threshold_of_every_model(criterion):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 120)
    scores = np.round(labels[None, :] * 0.8 + rng.normal(size=(3, 120)), 1)  # rounded: many ties
    thresholds, values = calibrate(torch.tensor(scores), torch.tensor(labels, dtype=torch.float64), criterion,
                                   beta=0.5, target_recall=0.85, target_precision=0.85)
    for m in range(3):
        expected = brute_force(scores[m], labels, criterion, beta=0.5, target=0.85)
        assert values[m].item() == pytest.approx(expected, abs=1e-12)
        predicted = (scores[m] >= thresholds[m].item()).astype(int)  # the threshold realises that value
        again = brute_force(np.where(predicted == 1, 1.0, 0.0), labels, criterion, beta=0.5, target=0.85)
        assert again == pytest.approx(expected, abs=1e-12)


def test_calibration_ranks_non_finite_models_last():
    scores = torch.tensor([[0.1, 0.9, 0.4], [math.nan, 0.2, 0.3]])
    _, values = calibrate(scores, torch.tensor([0.0, 1.0, 0.0]), "accuracy")
    assert values[0] == 1.0 and values[1] == -math.inf


# ---------------------------------------------------------------------------------------- metrics
def test_binary_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    scores = np.round(y * 0.5 + rng.random(300), 2)
    predicted = (scores >= 0.6).astype(int)
    ours = binary_metrics(y, predicted, scores, beta=2.0)
    assert ours["binary_classification_accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
    assert ours["precision"] == pytest.approx(skm.precision_score(y, predicted))
    assert ours["recall"] == pytest.approx(skm.recall_score(y, predicted))
    assert ours["binary_f_beta"] == pytest.approx(skm.fbeta_score(y, predicted, beta=2.0))
    assert ours["roc_auc_score"] == pytest.approx(skm.roc_auc_score(y, scores))


def test_multiclass_metrics_match_scikit_learn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 400)
    scores = rng.normal(size=(400, 5)) + 1.5 * np.eye(5)[y]
    scores[:, 4] -= 3.0  # class 4 is rarely predicted
    predicted = scores.argmax(axis=1)
    ours = multiclass_metrics(y, scores, top_k=3, beta=0.5)
    assert ours["multiclass_accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
    assert ours["multiclass_top_k_accuracy"] == pytest.approx(skm.top_k_accuracy_score(y, scores, k=3))
    assert ours["macro_precision"] == pytest.approx(skm.precision_score(y, predicted, average="macro",
                                                                        zero_division=0))
    assert ours["macro_recall"] == pytest.approx(skm.recall_score(y, predicted, average="macro"))
    assert ours["macro_f_beta"] == pytest.approx(skm.fbeta_score(y, predicted, beta=0.5, average="macro",
                                                                 zero_division=0))
    # DCG with the true class as the only relevant item: scikit-learn's dcg_score, row by row
    assert ours["dcg"] == pytest.approx(skm.dcg_score(np.eye(5)[y], scores))


def test_regression_metrics_match_scikit_learn():
    rng = np.random.default_rng(2)
    y, p = rng.normal(size=100), rng.normal(size=100)
    ours = regression_metrics(y, p)
    assert ours["mse"] == pytest.approx(skm.mean_squared_error(y, p))
    assert ours["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)))
    assert ours["absolute_loss"] == pytest.approx(skm.mean_absolute_error(y, p))


# ---------------------------------------------------------------------------------------- batching
def make_ensemble(settings, lr, wd, l1, init, d=6):
    variants = Variants(np.asarray(lr), np.asarray(wd), np.asarray(l1), np.ones(len(lr)))
    std = Standardizer(np.linspace(-1, 1, d), np.linspace(0.5, 2, d), "cpu")
    return Ensemble(settings, variants, init, 0.1, std, LossSpec(settings.loss), torch.device("cpu"))


@pytest.mark.parametrize("optimizer, loss, kind", [("adam", "logistic", "binary_classifier"),
                                                   ("sgd", "squared_loss", "regressor"),
                                                   ("rmsprop", "softmax_loss", "multiclass_classifier")])
def test_batched_variants_train_exactly_as_each_alone(optimizer, loss, kind):
    extra = {"num_classes": 3} if kind == "multiclass_classifier" else {}
    settings = resolve(HYPERPARAMETERS.parse({"predictor_type": kind, "optimizer": optimizer, "loss": loss,
                                              "lr_scheduler_step": 2, "lr_scheduler_factor": 0.5, **extra}))
    rng = np.random.default_rng(0)
    k = settings.outputs
    init = rng.uniform(-0.1, 0.1, (6, k)).astype(np.float32)
    lr, wd, l1 = [0.05, 0.01, 0.2], [0.0, 0.01, 0.001], [0.0, 0.001, 0.01]
    together = make_ensemble(settings, lr, wd, l1, init)
    alone = [make_ensemble(settings, [lr[i]], [wd[i]], [l1[i]], init) for i in range(3)]
    assert together.weights.shape == (3, 6, k)  # models x features x outputs
    for _ in range(6):
        X = torch.tensor(rng.normal(size=(40, 6)), dtype=torch.float32)
        y = torch.tensor(rng.integers(0, max(k, 2), 40), dtype=torch.float32)
        for ens in (together, *alone):
            ens.decay_to(ens.updates // 2)
            ens.step(X, y, None)
    for i, ens in enumerate(alone):
        np.testing.assert_allclose(together.params[:, i].numpy(), ens.params[:, 0].numpy(), rtol=1e-5, atol=1e-6)


def test_step_schedule_decays_to_the_floor():
    settings = settings_for(lr_scheduler_step=3, lr_scheduler_factor=0.5, lr_scheduler_minimum_lr=0.02)
    ens = make_ensemble(settings, [0.1, 0.3], [0.0, 0.0], [0.0, 0.0], np.zeros((6, 1), np.float32))
    rates = []
    for update in range(12):
        ens.decay_to(update // 3)
        rates.append(ens.lr.numpy().copy())
    expected = [[max(lr * 0.5 ** (u // 3), 0.02) for lr in (0.1, 0.3)] for u in range(12)]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)


def test_sparse_batches_standardize_like_dense_ones():
    import scipy.sparse as sp

    from sagelocal.algorithms.linear_learner.kernels import to_device

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 6)).astype(np.float32)
    X[X < 0.3] = 0.0
    std = Standardizer(rng.normal(size=6), rng.random(6) + 0.5, "cpu")
    W = torch.tensor(rng.normal(size=(6, 4)), dtype=torch.float32)
    G = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32)
    outputs = []
    for features in (X, sp.csr_matrix(X)):
        z, kept = std.forward(to_device(features, "cpu"), W)
        grad = torch.empty(6, 4)
        std.backward(kept, G, out=grad)
        outputs.append((z.numpy(), grad.numpy()))
    np.testing.assert_allclose(outputs[0][0], outputs[1][0], atol=1e-5)
    np.testing.assert_allclose(outputs[0][1], outputs[1][1], atol=1e-4)


# ---------------------------------------------------------------------------------------- variants
def test_variants_spread_around_the_given_settings():
    hp = HYPERPARAMETERS.parse({"predictor_type": "binary_classifier", "num_models": 16, "learning_rate": 0.05,
                                "wd": 0.001, "positive_example_weight_mult": "auto"})
    variants = make_variants(resolve(hp), balanced_weight=4.0, seed=0)
    assert len(variants) == 16
    assert variants.as_hyperparameters(0) == {"learning_rate": 0.05, "wd": 0.001, "l1": 0.0,
                                              "positive_example_weight_mult": 1.0}
    assert np.all((variants.learning_rate >= 0.05 / 10 ** 0.5 - 1e-12) & (variants.learning_rate <= 0.05 * 10 ** 0.5))
    assert np.all((variants.wd >= 1e-4 - 1e-12) & (variants.wd <= 1e-2 + 1e-12))
    assert len(np.unique(variants.learning_rate)) == 16  # a Latin hypercube: no two alike
    assert np.all((variants.positive_example_weight_mult >= 1.0) & (variants.positive_example_weight_mult <= 4.0))
    assert np.any(variants.l1 > 0) and np.any(variants.l1[1:] == 0)  # l1=auto: some variants try it
    again = make_variants(resolve(hp), balanced_weight=4.0, seed=0)
    np.testing.assert_array_equal(again.learning_rate, variants.learning_rate)


def test_explicit_zero_regularization_stays_zero_for_every_variant():
    hp = HYPERPARAMETERS.parse({"predictor_type": "regressor", "num_models": 8, "wd": 0, "l1": 0})
    variants = make_variants(resolve(hp), balanced_weight=1.0, seed=1)
    assert not variants.wd.any() and not variants.l1.any()


def test_every_grid_combination_of_auto_resolution():
    for kind, use_bias in itertools.product(("binary_classifier", "regressor", "multiclass_classifier"),
                                            (True, False)):
        extra = {"num_classes": 4} if kind == "multiclass_classifier" else {}
        s = resolve(HYPERPARAMETERS.parse({"predictor_type": kind, "use_bias": use_bias,
                                           "normalize_label": True, **extra}))
        assert s.loss == {"binary_classifier": "logistic", "regressor": "squared_loss",
                          "multiclass_classifier": "softmax_loss"}[kind]
        assert s.optimizer == "adam" and s.num_models == 32 and s.scale_features
        assert s.center_features is use_bias
        # normalize_label=true is ignored for classifiers; unbias_label follows use_bias for regressors
        assert s.scale_label is (kind == "regressor")
        assert s.center_label is (kind == "regressor" and use_bias)
