"""DeepAR: forecast quality on series with known structure, likelihoods, missing values, cold start,
evaluation metrics, early stopping, reproducibility, and the network's pieces against torch / GluonTS."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import torch

import sagelocal
from sagelocal import DataFormatError, HyperparameterError
from sagelocal.algorithms.deepar import DeepAR
from sagelocal.algorithms.deepar.data import FlatPanel, parse_series
from sagelocal.algorithms.deepar.features import Frequency
from sagelocal.algorithms.deepar.network import _zoneout_lstm, _ZoneoutRecurrence

HORIZON = 12
LEVELS = (5.0, 15.0, 40.0, 100.0)
QUANTILES = np.arange(1, 10) / 10


def seasonal_panel(n=40, horizon=HORIZON, seed=0):
    """Monthly series of four groups (cat) with known levels and a calendar-aligned yearly season.

    y = level * (1 + 0.3 sin(2 pi month / 12 + group)) + N(0, (0.08 level)^2), lengths 60..120 + horizon,
    starts spread over two years, so the phase must be read from the calendar and the lags.
    """
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        group = i % 4
        length = int(rng.integers(60, 121)) + horizon
        first = int(rng.integers(0, 24))
        months = first + np.arange(length)
        level = LEVELS[group] * rng.uniform(0.8, 1.2)
        y = level * (1 + 0.3 * np.sin(2 * np.pi * months / 12 + group)) + rng.normal(0, 0.08 * level, length)
        start = f"{2000 + first // 12}-{first % 12 + 1:02d}-01 00:00:00"
        records.append({"start": start, "target": y.round(3).tolist(), "cat": [group]})
    return records


def cut(records, horizon=HORIZON):
    return [{**r, "target": r["target"][:-horizon]} for r in records]


def wql(truth, forecast, tau):
    """Weighted quantile loss, written out from the spec's formula."""
    return 2 * np.sum(np.abs((truth - forecast) * ((truth < forecast) - tau))) / np.sum(np.abs(truth))


@pytest.fixture(scope="module")
def panel():
    return seasonal_panel()


@pytest.fixture(scope="module")
def model(panel):
    est = DeepAR(time_freq="M", context_length=12, prediction_length=HORIZON, epochs=15, mini_batch_size=32,
                 learning_rate=0.01, num_cells=20)
    return est.fit(cut(panel), test=panel)


# --------------------------------------------------------------------------------------- acceptance
def test_forecasts_beat_seasonal_naive_and_quantiles_are_calibrated(model, panel):
    truth = np.array([r["target"][-HORIZON:] for r in panel])
    history = cut(panel)
    naive = np.array([np.resize(r["target"][-12:], HORIZON) for r in history])  # last season repeated
    samples = model.sample_paths(history, 200)
    assert samples.shape == (len(panel), 200, HORIZON)
    quantiles = np.quantile(samples, QUANTILES, axis=1)
    ours = np.mean([wql(truth, quantiles[k], q) for k, q in enumerate(QUANTILES)])
    baseline = np.mean([wql(truth, naive, q) for q in QUANTILES])
    assert ours < 0.85 * baseline
    coverage = np.mean((truth >= quantiles[0]) & (truth <= quantiles[-1]))
    assert 0.7 <= coverage <= 0.9


def test_test_channel_metrics_are_the_documented_formulas(model, panel):
    history = cut(panel)
    truth = np.array([r["target"][-HORIZON:] for r in panel])
    samples = model.sample_paths(history, 100)  # num_eval_samples, same seed as the evaluation
    mean = samples.mean(axis=1)
    # relative 1e-6: the model reads targets as float32
    assert model.metrics_["test:RMSE"] == pytest.approx(np.sqrt(np.mean((mean - truth) ** 2)), rel=1e-6)
    quantiles = np.quantile(samples, QUANTILES, axis=1)
    losses = [wql(truth, quantiles[k], q) for k, q in enumerate(QUANTILES)]
    assert model.metrics_["test:mean_wQuantileLoss"] == pytest.approx(np.mean(losses), rel=1e-6)
    assert model.metrics_["test:wQuantileLoss[0.9]"] == pytest.approx(losses[-1], rel=1e-6)
    assert np.isfinite(model.metrics_["train:final_loss"])


def test_short_history_cold_start_takes_the_level_of_its_category(model):
    months = np.arange(3)
    short = [{"start": "2010-01-01 00:00:00", "target": (LEVELS[g] * (1 + 0.3 * np.sin(2 * np.pi * months / 12 + g)))
              .tolist(), "cat": [g]} for g in range(4)]
    means = model.predict(short).mean(axis=1)
    np.testing.assert_allclose(means, LEVELS, rtol=0.35)
    empty = model.predict([{"start": "2010-01-01 00:00:00", "target": [], "cat": [g]} for g in range(4)])
    assert empty.shape == (4, HORIZON) and np.isfinite(empty).all()
    unseen_start = model.predict([{"start": "2031-07-01", "target": [], "cat": [1]}])  # no history at all
    assert np.isfinite(unseen_start).all()


def test_forecast_follows_the_calendar_of_each_series(model, panel):
    """Series of the same group but different starts: the forecast season must shift with the start."""
    group = 2
    months = np.arange(48)
    early = {"start": "2001-01-01 00:00:00", "target": (40 * (1 + 0.3 * np.sin(2 * np.pi * months / 12 + group)))
             .tolist(), "cat": [group]}
    later = {**early, "start": "2001-07-01 00:00:00",
             "target": (40 * (1 + 0.3 * np.sin(2 * np.pi * (months + 6) / 12 + group))).tolist()}
    forecast = model.predict([early, later])
    expected = [40 * (1 + 0.3 * np.sin(2 * np.pi * (48 + shift + np.arange(HORIZON)) / 12 + group))
                for shift in (0, 6)]
    for ours, truth in zip(forecast, expected):
        assert np.corrcoef(ours, truth)[0, 1] > 0.9


# ------------------------------------------------------------------------------------- likelihoods
def _likelihood_data(likelihood, rng):
    steps = np.arange(80)
    out = []
    for _ in range(5):
        season = np.sin(2 * np.pi * steps / 7)
        if likelihood == "beta":
            target = 1 / (1 + np.exp(-(season + rng.normal(0, 0.3, len(steps)))))
        elif likelihood == "negative-binomial":
            target = rng.poisson(5 + 3 * season).astype(float)
        else:
            target = 10 + 3 * season + rng.normal(0, 0.5, len(steps))
        out.append({"start": "2021-03-01 00:00:00", "target": target.tolist()})
    return out


@pytest.mark.parametrize("likelihood", ["gaussian", "beta", "negative-binomial", "student-T", "deterministic-L1"])
def test_each_likelihood_trains_and_predicts_in_its_domain(likelihood):
    data = _likelihood_data(likelihood, np.random.default_rng(1))
    est = DeepAR(time_freq="D", context_length=7, prediction_length=5, epochs=3, likelihood=likelihood,
                 num_cells=10, num_layers=1, mini_batch_size=32).fit(data)
    assert np.isfinite(est.metrics_["train:final_loss"])
    samples = est.sample_paths(data, 20)
    assert samples.shape == (5, 20, 5) and np.isfinite(samples).all()
    if likelihood == "beta":
        assert samples.min() >= 0 and samples.max() <= 1
    if likelihood == "negative-binomial":
        assert samples.min() >= 0 and np.array_equal(samples, np.round(samples))
    if likelihood == "deterministic-L1":  # a point forecast: every path is the same
        assert np.ptp(samples, axis=1).max() == 0
    else:
        assert np.ptp(samples, axis=1).max() > 0


@pytest.mark.parametrize("likelihood, bad", [("negative-binomial", -1.0), ("beta", 1.5)])
def test_targets_outside_the_likelihood_domain_are_refused(likelihood, bad):
    data = _likelihood_data("gaussian", np.random.default_rng(0))
    data[2]["target"][7] = bad
    if likelihood == "beta":
        data = [{**r, "target": [min(max(v / 20, 0.0), 1.0) for v in r["target"]]} for r in data]
        data[2]["target"][7] = bad
    with pytest.raises(DataFormatError, match=f"likelihood '{likelihood}'"):
        DeepAR(time_freq="D", context_length=7, prediction_length=5, epochs=1, likelihood=likelihood).fit(data)


# ------------------------------------------------------------------------------ missing values
def test_missing_values_are_masked_and_forward_filled():
    panel = parse_series([{"start": "2020-01-01", "target": ["NaN", 1.0, None, "NaN", 4.0]},
                          {"start": "2020-01-01", "target": [2.0, float("nan")]}])
    flat = FlatPanel(panel, Frequency.parse("D"), pad=2, future=1, num_dynamic=0, use_cat=False,
                     device=torch.device("cpu"))
    # pad, pad, series 0 (leading gap reads 0), future; pad, pad, series 1, future
    np.testing.assert_array_equal(flat.target.numpy(), [0, 0, 0, 1, 1, 1, 4, 0, 0, 0, 2, 2, 0])
    np.testing.assert_array_equal(flat.observed.numpy(), [0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0])


def test_null_and_nan_are_the_same_missing_value_and_gaps_train(panel):
    rng = np.random.default_rng(3)
    clean = cut(panel)[:20]
    gappy, poisoned = [], []
    for record in clean:
        target = list(record["target"])
        holes = rng.choice(len(target), size=len(target) // 5, replace=False)
        for h in holes:
            target[h] = "NaN"
        gappy.append({**record, "target": target})
        poisoned.append({**record, "target": [t if t != "NaN" else None for t in target]})
    hp = dict(time_freq="M", context_length=12, prediction_length=HORIZON, epochs=3, num_cells=10,
              mini_batch_size=32)
    first = DeepAR(**hp).fit(gappy)
    second = DeepAR(**hp).fit(poisoned)  # null and "NaN" are the same missing value
    np.testing.assert_array_equal(first.predict(clean[:4]), second.predict(clean[:4]))
    assert np.isfinite(first.metrics_["train:final_loss"]) and np.isfinite(first.predict(gappy[:4])).all()


# ---------------------------------------------------------------------------------- reproducibility
def test_saved_model_forecasts_the_same_given_the_same_seed(model, panel, tmp_path):
    request = cut(panel)[:3]
    config = {"num_samples": 30, "output_types": ["mean", "quantiles", "samples"], "quantiles": ["0.1", "0.5"]}
    tarball = model.save(tmp_path / "model")
    loaded = sagelocal.load(tarball)
    assert loaded.predict_records(request, config) == model.predict_records(request, config)
    assert loaded.predict_records(request, config) == loaded.predict_records(request, config)
    reseeded = loaded.set_params(random_state=1)
    assert reseeded.predict_records(request, config) != model.predict_records(request, config)


def test_training_leaves_the_global_torch_random_state_alone():
    data = _likelihood_data("gaussian", np.random.default_rng(0))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    DeepAR(time_freq="D", context_length=7, prediction_length=5, epochs=1, num_cells=8).fit(data)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


# ----------------------------------------------------------------------------------- early stopping
def test_early_stopping_stops_after_patience_epochs_without_a_lower_loss(caplog):
    data = _likelihood_data("gaussian", np.random.default_rng(2))
    # learning_rate 0 leaves the model as initialised: epoch losses only vary with the drawn windows
    est = DeepAR(time_freq="D", context_length=7, prediction_length=5, epochs=40, early_stopping_patience=2,
                 learning_rate=0.0, num_cells=8, mini_batch_size=16)
    with caplog.at_level(logging.INFO, logger="sagelocal"):
        est.fit(data)
    losses = [float(m) for m in re.findall(r"epoch=\d+, train loss <loss>=(\S+)", caplog.text)]
    assert len(losses) == est.epochs_run_ < 40
    best = int(np.argmin(losses))
    assert len(losses) == best + 3  # the best epoch, then two without improvement
    assert est.metrics_["train:final_loss"] == losses[best]  # the kept epoch's (issue 13: was losses[-1])
    # without early stopping the last epoch's model is kept, and its loss is reported
    plain = DeepAR(time_freq="D", context_length=7, prediction_length=5, epochs=4, num_cells=8, mini_batch_size=16)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sagelocal"):
        plain.fit(data)
    losses = [float(m) for m in re.findall(r"epoch=\d+, train loss <loss>=(\S+)", caplog.text)]
    assert len(losses) == 4 and plain.metrics_["train:final_loss"] == losses[-1]


# ------------------------------------------------------------------------------------ the network
def test_zoneout_recurrence_gradients_match_finite_differences():
    torch.manual_seed(0)
    projected = torch.randn(5, 3, 16, dtype=torch.double, requires_grad=True)
    weight = torch.randn(16, 4, dtype=torch.double, requires_grad=True)
    keep = (torch.rand(2, 5, 3, 4) < 0.3).double()
    assert torch.autograd.gradcheck(lambda p, w: _ZoneoutRecurrence.apply(p, w, keep), (projected, weight))


def test_zoneout_lstm_without_zoneout_is_torchs_lstm():
    torch.manual_seed(0)
    layer = torch.nn.LSTM(6, 5, batch_first=True).double()
    x = torch.randn(4, 9, 6, dtype=torch.double)
    ours, (h, c) = _zoneout_lstm(layer, x, 0.0)
    theirs, (h_ref, c_ref) = layer(x)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(h, h_ref)
    torch.testing.assert_close(c, c_ref)


def test_zoneout_keeps_states_at_the_rate():
    torch.manual_seed(0)
    layer = torch.nn.LSTM(3, 200, batch_first=True)
    x = torch.randn(50, 2, 3)
    outputs, _ = _zoneout_lstm(layer, x, 1.0)  # every unit keeps its (zero) state: each step starts afresh
    fresh, _ = layer(x[:, 1:2])
    torch.testing.assert_close(outputs[:, 1:2], fresh)


# ----------------------------------------------------------------------------------- features
def test_monthly_lags_are_gluonts_rule():
    # 1..7, then the same month 1, 2, 3 years back +/- 1 (GluonTS get_lags_for_frequency)
    assert Frequency.parse("M").lags() == [1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 23, 24, 25, 35, 36, 37]


@pytest.mark.parametrize("freq", ["M", "2M", "W", "D", "3D", "H", "6H", "min", "5min", "15min"])
def test_lags_match_gluonts(freq):
    lag = pytest.importorskip("gluonts.time_feature")
    pandas_freq = freq.replace("H", "h").replace("M", "ME") if freq != "min" and not freq.endswith("min") else freq
    assert Frequency.parse(freq).lags() == lag.get_lags_for_frequency(pandas_freq)


@pytest.mark.parametrize("freq, start", [("M", "2019-11-15 13:00:00"), ("W", "2020-01-01 00:00:00"),
                                         ("D", "2019-12-25 10:00:00"), ("H", "2020-02-28 20:30:00"),
                                         ("5min", "2020-12-31 23:37:00")])
def test_time_features_match_gluonts(freq, start):
    features = pytest.importorskip("gluonts.time_feature")
    pd = pytest.importorskip("pandas")
    pandas_freq = freq.replace("H", "h")
    index = pd.period_range(start, periods=400, freq=pandas_freq)
    expected = np.stack([f(index) for f in features.time_features_from_frequency_str(
        pandas_freq.replace("M", "ME") if freq == "M" else pandas_freq)], axis=-1)
    frequency = Frequency.parse(freq)
    ordinals = frequency.ordinal(np.array([start], dtype="datetime64[s]"))[0] + frequency.step * np.arange(400)
    ours = frequency.features(ordinals, np.arange(400))
    np.testing.assert_allclose(ours[:, :-1], expected, atol=1e-6)
    np.testing.assert_allclose(ours[:, -1], np.log10(2 + np.arange(400)), rtol=1e-6)  # GluonTS's age feature


@pytest.mark.parametrize("value", ["Q", "0D", "5", "m", "1.5H", "Min"])
def test_time_freq_outside_sagemakers_units_is_refused(value):
    with pytest.raises(HyperparameterError, match="time_freq"):
        DeepAR.from_sagemaker({"time_freq": value, "context_length": "5", "prediction_length": "5", "epochs": "1"})


@pytest.mark.parametrize("name, value, parsed", [
    ("cardinality", "auto", "auto"), ("cardinality", "ignore", "ignore"), ("cardinality", "", ""),
    ("cardinality", "[2, 3]", [2, 3]), ("num_dynamic_feat", "2", 2), ("num_dynamic_feat", "ignore", "ignore")])
def test_feature_switches_parse_sagemaker_strings(name, value, parsed):
    est = DeepAR.from_sagemaker({"time_freq": "D", "context_length": "5", "prediction_length": "5", "epochs": "1",
                                 name: value})
    assert getattr(est, name) == parsed
    assert est.to_sagemaker()[name] == value


@pytest.mark.parametrize("name, value", [("cardinality", "[0, 2]"), ("cardinality", "3"), ("cardinality", "[]"),
                                         ("num_dynamic_feat", "0"), ("num_dynamic_feat", "[1]"),
                                         ("num_dynamic_feat", "none")])
def test_feature_switches_refuse_other_values(name, value):
    with pytest.raises(HyperparameterError) as info:
        sagelocal.estimator("forecasting-deepar", **{name: value})
    assert info.value.names == [name]


def test_checkpoints_resume_training_after_the_last_saved_epoch(tmp_path, caplog):
    from sagelocal.base.runtime import Runtime

    data = _likelihood_data("gaussian", np.random.default_rng(4))
    hp = dict(time_freq="D", context_length=7, prediction_length=5, num_cells=8, early_stopping_patience=5)
    first = DeepAR(epochs=2, **hp)
    first.runtime = Runtime(checkpoint_dir=str(tmp_path))
    first.fit(data)
    assert (tmp_path / "checkpoint.npz").exists()
    resumed = DeepAR(epochs=4, **hp)
    resumed.runtime = Runtime(checkpoint_dir=str(tmp_path))
    with caplog.at_level(logging.INFO, logger="sagelocal"):
        resumed.fit(data)
    assert "resuming from checkpoint" in caplog.text and resumed.epochs_run_ == 4
    assert re.findall(r"epoch=(\d+), train loss", caplog.text) == ["2", "3"]  # only the remaining epochs ran
