"""DeepAR on series shorter than the longest lag of their frequency (issue 13, defect 7).

Hourly data get lags up to 721 steps (a month back). A lag that no training window can read is zero in
every training input, so its input weights never move from their initial values; at forecast time the
same lag reads real history for the first time and shifts the forecast. The model keeps only the lags
its training data reach, records them in the artifact, and its 0.1-0.9 intervals then cover about 80%.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import sagelocal
from sagelocal.algorithms.deepar import DeepAR

HORIZON = 24
TRAIN_LENGTH = 504  # three weeks of hours: shorter than the hourly lags 505, 671-673 and 719-721
QUANTILES = np.arange(1, 10) / 10
#: The hourly lags (GluonTS's get_lags_for_frequency("h")) written out by hand: 1..7, the same hour
#: 1..7 days back +/- 1, the same hour 2, 3, 4 weeks back +/- 1 (and 4 weeks exactly), 30 days +/- 1.
HOURLY_LAGS = ([1, 2, 3, 4, 5, 6, 7] + [d * 24 + k for d in range(1, 8) for k in (-1, 0, 1)]
               + [335, 336, 337, 503, 504, 505, 671, 672, 673, 719, 720, 721])
#: Those that some training window of a 504-step series reads at every step of its prediction range:
#: a window's last forecast start is 504 - 24 = 480, so lags up to 480.
REACHABLE = [lag for lag in HOURLY_LAGS if lag <= TRAIN_LENGTH - HORIZON]
HP = dict(time_freq="H", context_length=HORIZON, prediction_length=HORIZON, epochs=10, num_cells=20,
          mini_batch_size=32, learning_rate=0.01)


def hourly_panel(n=20, length=TRAIN_LENGTH + HORIZON, seed=0, noise=False):
    """Hourly series with a daily season: y = level (1 + 0.4 sin(2 pi hour / 24 + phase)) + N(0, (0.1 level)^2).

    Starts differ by up to a week, phases by series (three groups), levels are uniform on [20, 100].
    With ``noise=True`` also the noise-free means and the noise sd, each (n, length).
    """
    rng = np.random.default_rng(seed)
    records, means, sds = [], [], []
    for i in range(n):
        level = rng.uniform(20, 100)
        first = int(rng.integers(0, 24 * 7))
        hours = first + np.arange(length)
        mean = level * (1 + 0.4 * np.sin(2 * np.pi * hours / 24 + i % 3))
        y = mean + rng.normal(0, 0.1 * level, length)
        records.append({"start": f"2021-01-{1 + first // 24:02d} {first % 24:02d}:00:00",
                        "target": y.round(3).tolist()})
        means.append(mean)
        sds.append(np.full(length, 0.1 * level))
    return (records, np.array(means), np.array(sds)) if noise else records


def cut(records, horizon=HORIZON):
    return [{**r, "target": r["target"][:-horizon]} for r in records]


def wql(truth, forecast, tau):
    """Weighted quantile loss, written out from the spec's formula."""
    return 2 * np.sum(np.abs((truth - forecast) * ((truth < forecast) - tau))) / np.sum(np.abs(truth))


@pytest.fixture(scope="module")
def short_panel():
    return hourly_panel(n=5, seed=11)


def test_hourly_lags_are_the_hand_written_set():
    from sagelocal.algorithms.deepar.features import Frequency

    assert Frequency.parse("H").lags() == sorted(set(HOURLY_LAGS))


def test_only_lags_the_training_data_reach_are_kept(short_panel):
    est = DeepAR(**{**HP, "epochs": 1}).fit(cut(short_panel))
    assert est.lags_ == REACHABLE
    assert max(est.lags_) < TRAIN_LENGTH  # shorter than the series: every lag reads real history in training


def test_every_lag_input_weight_moves_in_training(short_panel):
    """learning_rate 0 leaves the initialisation (same seed); one epoch must move every lag's weights."""
    hp = {**HP, "epochs": 1}
    start = DeepAR(**{**hp, "learning_rate": 0.0}).fit(cut(short_panel))
    trained = DeepAR(**hp).fit(cut(short_panel))
    lags = len(trained.lags_)
    before = start.network_.layers[0].weight_ih_l0.detach()[:, :lags]
    after = trained.network_.layers[0].weight_ih_l0.detach()[:, :lags]
    unchanged = [lag for k, lag in enumerate(trained.lags_) if bool((before[:, k] == after[:, k]).all())]
    assert unchanged == []


def test_saved_model_keeps_its_lag_set_and_records_the_rule(short_panel, tmp_path):
    est = DeepAR(**{**HP, "epochs": 1}).fit(cut(short_panel))
    tarball = est.save(tmp_path / "model")
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["lags"] == REACHABLE
    assert meta["lag_rule"] == "reachable"
    assert meta["frequency_lags"] == sorted(set(HOURLY_LAGS))
    loaded = sagelocal.load(tarball)
    assert loaded.lags_ == REACHABLE
    request = short_panel[:2]  # longer than the training series: the long lags would read real history
    np.testing.assert_array_equal(loaded.sample_paths(request, 20), est.sample_paths(request, 20))


def test_artifacts_without_the_lag_rule_still_load(tmp_path):
    """Artifacts written before the rule list the full lag set of time_freq and nothing else about lags."""
    panel = hourly_panel(n=3, length=800, seed=5)  # longer than every hourly lag: the full set is kept
    est = DeepAR(**{**HP, "epochs": 1}).fit(panel)
    assert est.lags_ == sorted(set(HOURLY_LAGS))
    est.save(tmp_path / "model")
    meta_file = tmp_path / "model" / "model.json"
    meta = json.loads(meta_file.read_text())
    for key in ("lag_rule", "frequency_lags"):
        meta.pop(key, None)
    meta_file.write_text(json.dumps(meta))
    loaded = sagelocal.load(tmp_path / "model")
    assert loaded.lags_ == sorted(set(HOURLY_LAGS))
    np.testing.assert_array_equal(loaded.sample_paths(panel[:2], 20), est.sample_paths(panel[:2], 20))


def test_intervals_cover_their_nominal_80_percent_on_series_shorter_than_the_longest_lag():
    """Mean 0.1-0.9 coverage over 5 seeds near 0.8, the nominal level (before the fix: about 0.71)."""
    z = {0.1: -1.2815515655446004, 0.9: 1.2815515655446004}  # standard normal quantiles (tables)
    coverages, oracle_coverages = [], []
    for seed in range(5):
        panel, means, sds = hourly_panel(seed=seed, noise=True)
        history = cut(panel)
        truth = np.array([r["target"][-HORIZON:] for r in panel])
        est = DeepAR(**HP, random_state=seed).fit(history)
        quantiles = np.quantile(est.sample_paths(history, 100), QUANTILES, axis=1)
        coverages.append(np.mean((truth >= quantiles[0]) & (truth <= quantiles[-1])))
        # the generating distribution's own interval, to show the panel itself holds 80%
        low, high = (means[:, -HORIZON:] + z[q] * sds[:, -HORIZON:] for q in (0.1, 0.9))
        oracle_coverages.append(np.mean((truth >= low) & (truth <= high)))
    assert 0.74 <= np.mean(oracle_coverages) <= 0.86
    assert 0.74 <= np.mean(coverages) <= 0.86, coverages
