"""Shared test helpers: the spec folder and small data sets with known answers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def spec_dir() -> Path | None:
    """``../shared/spec`` beside the repository (or $SAGELOCAL_SPEC_DIR), if present."""
    candidates = [os.environ.get("SAGELOCAL_SPEC_DIR"), REPO.parent / "shared" / "spec"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "algorithms").is_dir():
            return Path(candidate)
    return None


def spec_of(name: str) -> dict:
    """The spec's ``algorithms/<file>.json`` of algorithm ``name`` (files are named by short name:
    deepar.json holds "forecasting-deepar")."""
    import json

    folder = spec_dir() / "algorithms"
    path = folder / f"{name}.json"
    if not path.exists():
        path = next(p for p in sorted(folder.glob("*.json")) if json.loads(p.read_text()).get("name") == name)
    return json.loads(path.read_text())


def low_rank(n=3000, d=40, spectrum=(10.0, 8.0, 6.0, 4.0, 2.0), noise=0.01, offset=3.0, seed=0):
    """Rows of a rank-len(spectrum) matrix with the given scales, plus isotropic noise and an offset."""
    rng = np.random.default_rng(seed)
    k = len(spectrum)
    basis = np.linalg.qr(rng.standard_normal((d, k)))[0].T
    X = (rng.standard_normal((n, k)) * np.asarray(spectrum)) @ basis
    X += noise * rng.standard_normal((n, d)) + offset * rng.standard_normal(d)
    return X.astype(np.float32)


@pytest.fixture
def low_rank_data():
    return low_rank()
