"""The torch layer every torch algorithm uses: seeding, CPU threads, network weights <-> artifact arrays,
and keeping the best weights. Device choice is :mod:`.device`.

torch is imported inside the functions, so importing :mod:`sagelocal.base` never loads it.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .hyperparameters import Hyperparameter

#: The ``num_threads`` option of the torch algorithms whose small networks run faster on one CPU thread.
THREADS_OPTION = Hyperparameter("num_threads", "int", "auto", range=(1, None), auto=True,
                                doc="torch CPU threads; 'auto' uses one thread for small networks on the CPU "
                                    "(faster than many on shared cores) and torch's setting otherwise.")

#: Below this many parameters a CPU network trains fastest on one thread (measured on Seq2Seq).
SMALL_NETWORK = 1_000_000


@contextlib.contextmanager
def seeded(seed: int, device=None) -> Iterator[None]:
    """Seed torch's global generators for a block, leaving the caller's random state as it was.

    Dropout and initialisers draw from the global generator; ``fork_rng`` restores it on exit (on the
    CPU and on ``device`` when that is a CUDA device).
    """
    import torch

    devices = []
    if device is not None and torch.device(device).type == "cuda":
        index = torch.device(device).index
        devices = [index if index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def threads(count: int | None) -> Iterator[None]:
    """torch's intra-op CPU threads set to ``count`` inside the block (None: unchanged), then restored."""
    import torch

    if count is None or count == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def thread_count(choice: Any, module) -> int | None:
    """The thread count for the ``num_threads`` option: ``auto`` is 1 for a small network on the CPU,
    else None (torch's own setting); an integer is used as given."""
    if choice != "auto":
        return int(choice)
    parameters = list(module.parameters())
    small = sum(p.numel() for p in parameters) < SMALL_NETWORK
    on_cpu = not parameters or parameters[0].device.type == "cpu"
    return 1 if small and on_cpu else None


def module_arrays(module, prefix: str = "network.") -> dict[str, np.ndarray]:
    """A module's ``state_dict`` as numpy arrays keyed ``prefix + name`` (the artifact's payload)."""
    return {prefix + name: value.detach().cpu().numpy() for name, value in module.state_dict().items()}


def load_module_arrays(module, arrays: Mapping[str, np.ndarray], prefix: str = "network.") -> None:
    """Load the arrays that :func:`module_arrays` wrote (keys under ``prefix``) into ``module``, strictly."""
    import torch

    state = {name[len(prefix):]: torch.from_numpy(np.ascontiguousarray(value))
             for name, value in arrays.items() if name.startswith(prefix)}
    module.load_state_dict(state)


class KeepBest:
    """Keeps a copy of a module's weights at the best value of one metric, and restores them at the end.

    Given to :class:`~sagelocal.base.training.TrainingLoop` as ``keep_best``: the loop calls
    :meth:`update` with each epoch's metrics, saves :meth:`state` in checkpoints and calls :meth:`restore`
    when training ends. ``value`` and ``epoch`` say what was kept.
    """

    def __init__(self, module, metric: str, goal: str = "Minimize"):
        self.module, self.metric, self.goal = module, metric, goal
        self.value = math.inf if goal == "Minimize" else -math.inf
        self.epoch = -1
        self.weights: dict | None = None

    def update(self, metrics: Mapping[str, float], epoch: int) -> bool:
        """Copy the weights when ``metrics[metric]`` is the best so far; return whether it was."""
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return False
        better = value < self.value if self.goal == "Minimize" else value > self.value
        if better:
            self.value, self.epoch = float(value), epoch
            self.weights = copy.deepcopy(self.module.state_dict())
        return better

    def restore(self) -> None:
        """Put the best weights back into the module (nothing to do when no epoch was measured)."""
        if self.weights is not None:
            self.module.load_state_dict(self.weights)

    def state(self) -> dict[str, np.ndarray]:
        """The kept weights and value as arrays, for a checkpoint."""
        out = {"__best__": np.asarray([self.value, self.epoch], dtype=float)}
        if self.weights is not None:
            out.update({f"__best__.{k}": v.detach().cpu().numpy() for k, v in self.weights.items()})
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state` wrote (the keys are removed from ``state``)."""
        import torch

        summary = state.pop("__best__", None)
        if summary is None:
            return
        self.value, self.epoch = float(summary[0]), int(summary[1])
        device = next(iter(self.module.state_dict().values()), torch.zeros(0)).device
        weights = {key[len("__best__."):]: torch.from_numpy(np.asarray(state.pop(key))).to(device)
                   for key in [k for k in state if k.startswith("__best__.")]}
        self.weights = weights or None
