"""The training loop: epochs, early stopping, checkpoints with resume, metric lines."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from sagelocal.base.batch import ArraySource
from sagelocal.base.training import EarlyStopping, MetricReporter, TrainingLoop, metric_line, metric_regex


class RunningMean:
    """Learns the mean of the rows by SGD; validation loss is the distance to a target."""

    def __init__(self, target, fail_at_epoch=None, plateau_after=None):
        self.w = np.zeros(2)
        self.target, self.fail_at_epoch, self.plateau_after = target, fail_at_epoch, plateau_after
        self.epochs_seen = []

    def train_batch(self, batch):
        if self.fail_at_epoch is not None and len(self.epochs_seen) == self.fail_at_epoch:
            raise RuntimeError("interrupted")
        grad = self.w - batch.features.mean(axis=0)
        self.w -= 0.5 * grad
        return float((grad**2).sum())

    def end_epoch(self, epoch):
        self.epochs_seen.append(epoch)
        loss = float(((self.w - self.target) ** 2).sum())
        if self.plateau_after is not None and epoch >= self.plateau_after:
            loss = 1.0  # no further improvement
        return {"validation:mse": loss}

    def state(self):
        return {"w": self.w}

    def load_state(self, state):
        self.w = state["w"].copy()


def data():
    X = np.tile(np.array([[1.0, 2.0]], np.float32), (40, 1))
    return ArraySource(X)


def test_epochs_batches_and_metric_lines(caplog):
    model = RunningMean(target=np.array([1.0, 2.0]))
    reporter = MetricReporter(host="algo-7")
    with caplog.at_level(logging.INFO, logger="sagelocal"):
        done = TrainingLoop(epochs=3, batch_size=8, reporter=reporter).run(data(), model)
    assert done == 3 and model.epochs_seen == [0, 1, 2]
    lines = [r.getMessage() for r in caplog.records]
    assert "#quality_metric: host=algo-7, epoch=2, train loss <loss>=" in "\n".join(lines)
    assert "#progress_metric: host=algo-7, completed 100 % of epochs" in lines
    value = float(re.findall(metric_regex("train:loss"), "\n".join(lines))[-1])  # the final value
    assert value == reporter.metrics["train:loss"]


def test_metric_line_shapes_match_contract_examples():
    # observed built-in log lines
    assert metric_line("validation:multiclass_accuracy", 0.94, "Maximize") == \
        "#quality_metric: host=algo-1, validation multiclass_accuracy <score>=0.94"
    assert metric_line("train:loss", 14.23, epoch=0, batch=0) == \
        "#quality_metric: host=algo-1, epoch=0, batch=0 train loss <loss>=14.23"
    observed = "[11/28/2026 10:00:00 INFO 140] #quality_metric: host=algo-1, train msd <loss>=0.0657"
    assert re.search(metric_regex("train:msd"), observed).group(1) == "0.0657"
    assert re.search(metric_regex("validation:msd"), observed) is None


def test_early_stopping_with_patience():
    model = RunningMean(target=np.array([9.0, 9.0]), plateau_after=1)
    stop = EarlyStopping("validation:mse", patience=2, tolerance=0.0)
    done = TrainingLoop(epochs=20, batch_size=8, reporter=MetricReporter(), early_stopping=stop).run(data(), model)
    assert done == 4  # best at epoch 1, then two epochs without improvement
    assert stop.best_epoch == 1


def test_early_stopping_tolerance_is_relative():
    stop = EarlyStopping("m", patience=1, tolerance=0.1)
    assert not stop.update(1.0, 0)
    assert stop.update(0.95, 1)  # 5% better: within tolerance, counts as no improvement


def test_checkpoint_resume_matches_uninterrupted_run(tmp_path):
    reference = RunningMean(target=np.zeros(2))
    TrainingLoop(epochs=5, batch_size=7, reporter=MetricReporter()).run(data(), reference)

    crashed = RunningMean(target=np.zeros(2), fail_at_epoch=3)
    loop = TrainingLoop(epochs=5, batch_size=7, reporter=MetricReporter(), checkpoint_dir=tmp_path)
    with pytest.raises(RuntimeError):
        loop.run(data(), crashed)
    assert (tmp_path / "checkpoint.npz").exists()

    resumed = RunningMean(target=np.zeros(2))
    done = TrainingLoop(epochs=5, batch_size=7, reporter=MetricReporter(), checkpoint_dir=tmp_path).run(
        data(), resumed)
    assert done == 5 and resumed.epochs_seen == [3, 4]
    np.testing.assert_array_equal(resumed.w, reference.w)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_open_ended_loop_runs_until_early_stopping(caplog):
    model = RunningMean(target=np.array([9.0, 9.0]), plateau_after=2)
    stop = EarlyStopping("validation:mse", patience=3)
    with caplog.at_level(logging.INFO, logger="sagelocal"):
        done = TrainingLoop(epochs=None, batch_size=8, reporter=MetricReporter(), early_stopping=stop,
                            progress=False).run(data(), model)
    assert done == 6 and model.epochs_seen == [0, 1, 2, 3, 4, 5]  # best at epoch 2, then three without gain
    assert not [r for r in caplog.records if "#progress_metric" in r.getMessage()]  # no total to count against


def test_early_stopping_waits_while_not_allowed():
    passes = []
    stop = EarlyStopping("m", patience=1, allowed=lambda: len(passes) >= 3)
    for epoch, value in enumerate([1.0, 2.0, 2.0, 2.0]):
        passes.append(epoch)
        if stop.update(value, epoch):
            break
    assert epoch == 2 and stop.bad_epochs == 2  # counted while held, stopped once allowed


def test_resume_keeps_early_stopping_of_the_last_epoch_and_refuses_other_settings(tmp_path, caplog):
    def loop(config, epochs=6, **kwargs):
        return TrainingLoop(epochs=epochs, batch_size=8, reporter=MetricReporter(), checkpoint_dir=tmp_path,
                            checkpoint_name="model-checkpoint.pt", config=config,
                            early_stopping=EarlyStopping("validation:mse", patience=5), progress=False, **kwargs)

    first = loop({"lr": 0.5}, epochs=3)
    first.run(data(), RunningMean(target=np.array([9.0, 9.0]), plateau_after=0))
    assert [p.name for p in tmp_path.iterdir()] == ["model-checkpoint.pt"]
    assert first.early_stopping.bad_epochs == 2

    resumed = loop({"lr": 0.5})
    model = RunningMean(target=np.array([9.0, 9.0]), plateau_after=0)
    assert resumed.run(data(), model) == 6 and model.epochs_seen == [3, 4, 5]
    assert resumed.early_stopping.bad_epochs == 5  # the checkpoint of epoch 2 held its update

    with caplog.at_level(logging.WARNING, logger="sagelocal"):
        fresh = RunningMean(target=np.array([9.0, 9.0]))
        loop({"lr": 0.1}, epochs=2).run(data(), fresh)
    assert fresh.epochs_seen == [0, 1] and "other settings" in caplog.text
