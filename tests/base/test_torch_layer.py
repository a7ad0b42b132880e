"""The shared torch layer: seeding, threads, weights <-> arrays, keep-best in the one loop, progress bar."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sagelocal.base.batch import ArraySource
from sagelocal.base.torch_layer import KeepBest, load_module_arrays, module_arrays, seeded, thread_count, threads
from sagelocal.base.training import MetricReporter, TrainingLoop


def test_seeded_repeats_and_leaves_the_callers_state():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with seeded(5):
        a = torch.rand(4)
    with seeded(5):
        b = torch.rand(4)
    assert torch.equal(a, b)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's generator did not move


def test_threads_restores():
    before = torch.get_num_threads()
    with threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    assert thread_count("auto", torch.nn.Linear(3, 3)) == 1
    assert thread_count(3, torch.nn.Linear(3, 3)) == 3


def test_module_arrays_round_trip():
    a, b = torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)
    arrays = module_arrays(a)
    assert set(arrays) == {"network.weight", "network.bias"} and isinstance(arrays["network.weight"], np.ndarray)
    load_module_arrays(b, {**arrays, "other": np.zeros(1)})
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    with pytest.raises(RuntimeError):  # strict: a missing weight is an error, not a silent default
        load_module_arrays(b, {"network.weight": arrays["network.weight"]})


class _Scripted:
    """A Trainable whose weight takes a scripted value each epoch and whose validation loss is scripted."""

    def __init__(self, losses):
        self.net = torch.nn.Linear(1, 1, bias=False)
        self.losses = losses

    def train_batch(self, batch):
        return 0.5

    def end_epoch(self, epoch):
        with torch.no_grad():
            self.net.weight.fill_(float(epoch))
        return {"validation:loss": self.losses[epoch]}

    def state(self):
        return {"w": self.net.weight.detach().numpy().copy()}

    def load_state(self, state):
        with torch.no_grad():
            self.net.weight.copy_(torch.from_numpy(state["w"]))


def test_keep_best_restores_the_best_epoch_and_survives_a_resume(tmp_path):
    model = _Scripted([3.0, 1.0, 2.0, 4.0])
    keep = KeepBest(model.net, "validation:loss")
    loop = TrainingLoop(epochs=4, batch_size=2, reporter=MetricReporter(), keep_best=keep, progress=False)
    loop.run(ArraySource(np.zeros((4, 1))), model)
    assert model.net.weight.item() == 1.0 and keep.epoch == 1 and keep.value == 1.0

    # stop after 2 epochs with checkpoints, then resume: the best of epoch 1 is still known
    first = _Scripted([3.0, 1.0, 2.0, 4.0])
    TrainingLoop(epochs=2, batch_size=2, reporter=MetricReporter(), checkpoint_dir=tmp_path, progress=False,
                 keep_best=KeepBest(first.net, "validation:loss")).run(ArraySource(np.zeros((4, 1))), first)
    second = _Scripted([3.0, 1.0, 2.0, 4.0])
    keep = KeepBest(second.net, "validation:loss")
    TrainingLoop(epochs=4, batch_size=2, reporter=MetricReporter(), checkpoint_dir=tmp_path, progress=False,
                 keep_best=keep).run(ArraySource(np.zeros((4, 1))), second)
    assert keep.epoch == 1 and second.net.weight.item() == 1.0


def test_progress_bar_only_when_asked_or_on_a_terminal(capsys):
    model = _Scripted([1.0, 1.0])
    TrainingLoop(epochs=2, batch_size=2, reporter=MetricReporter(), progress=True).run(
        ArraySource(np.zeros((4, 1))), model)
    err = capsys.readouterr().err
    assert "training" in err and "2/2" in err and "loss" in err
    TrainingLoop(epochs=2, batch_size=2, reporter=MetricReporter(), progress="auto").run(
        ArraySource(np.zeros((4, 1))), _Scripted([1.0, 1.0]))
    assert "2/2" not in capsys.readouterr().err  # pytest's stderr is not a terminal
