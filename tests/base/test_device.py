"""The shared device option of the torch algorithms."""

from __future__ import annotations

import pytest
import torch

import sagelocal
from sagelocal.base.device import DEVICE_OPTION, resolve_device
from sagelocal.base.registry import get_class


def test_auto_picks_cuda_only_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("algo", "auto") == torch.device("cpu")
    assert resolve_device("algo", "cpu") == torch.device("cpu")
    with pytest.raises(sagelocal.HyperparameterError) as info:
        resolve_device("algo", "cuda")
    assert info.value.names == ["device"] and "no CUDA device" in str(info.value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("algo", "auto") == torch.device("cuda")


@pytest.mark.parametrize("name", ["linear-learner", "forecasting-deepar", "blazingtext", "seq2seq"])
def test_torch_algorithms_declare_the_shared_option(name):
    cls = get_class(name)
    assert DEVICE_OPTION in cls.options and cls.option_defaults()["device"] == "auto"
    assert "device" not in cls.hyperparameters  # a sagelocal option, never sent to SageMaker
