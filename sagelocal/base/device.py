"""Device choice for the torch algorithms, declared and resolved once.

Every torch algorithm takes the sagelocal option ``device`` (``auto`` / ``cpu`` / ``cuda``); it is not a
SageMaker hyperparameter (SageMaker picks by instance type), so it is never written to
``hyperparameters.json``.
"""

from __future__ import annotations

from .errors import HyperparameterError
from .hyperparameters import Hyperparameter

#: The ``device`` option every torch algorithm declares in its ``options``.
DEVICE_OPTION = Hyperparameter("device", "categorical", "auto", choices=("auto", "cpu", "cuda"),
                               doc="Where torch runs; auto picks CUDA when present, else the CPU.")


def resolve_device(algorithm: str, choice: str):
    """The ``torch.device`` for ``choice``; ``cuda`` without a CUDA device is a HyperparameterError."""
    import torch

    available = torch.cuda.is_available()
    if choice == "auto":
        return torch.device("cuda" if available else "cpu")
    if choice == "cuda" and not available:
        raise HyperparameterError(algorithm, [("device", "option 'device' is 'cuda' but torch sees no CUDA "
                                                         "device; use 'auto' or 'cpu'")])
    return torch.device(choice)
