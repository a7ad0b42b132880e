"""Models SageMaker's XGBoost wrote, and models written the way SageMaker writes them.

A SageMaker XGBoost ``model.tar.gz`` holds ``xgboost-model`` (``xgboost-model-0`` ... after k-fold
training). Versions 1.3-1 and later save it with ``Booster.save_model`` (XGBoost's own format);
earlier versions pickled the Booster. The container loads every file of the model folder (dotfiles
excluded), trying pickle first; sagelocal reads XGBoost's format and unpickles only with
``allow_pickle=True``, because unpickling a file runs whatever code it names.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import tarfile
import tempfile
from pathlib import Path

from ...base.artifacts import HEADER, TARBALL, safe_extract
from ...base.errors import ArtifactError
from .data import xgboost_module

MODEL_PREFIX = "xgboost-model"
_PICKLE_PROTOCOL_MARK = b"\x80"


def booster_from_bytes(data: bytes, allow_pickle: bool, name: str):
    """An ``xgboost.Booster`` from a model file's bytes (XGBoost's JSON/UBJSON/binary, or a pickle)."""
    xgb = xgboost_module()
    if data[:1] == _PICKLE_PROTOCOL_MARK:
        if not allow_pickle:
            raise ArtifactError(f"'{name}' is a pickled XGBoost Booster (SageMaker XGBoost before 1.3-1); refused "
                                f"because unpickling runs code: pass allow_pickle=True only for a model you trust")
        try:
            booster = pickle.loads(data)  # noqa: S301 - allowed explicitly by the caller
        except Exception as exc:  # noqa: BLE001 - unpickling raises anything
            raise ArtifactError(f"'{name}': cannot unpickle the model with xgboost {xgb.__version__}: {exc}") from None
        if not isinstance(booster, xgb.Booster):
            raise ArtifactError(f"'{name}': the pickle holds a {type(booster).__name__}, not an xgboost.Booster")
        return booster
    try:
        return xgb.Booster(model_file=bytearray(data))
    except xgb.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown format"
        raise ArtifactError(f"'{name}' is not an XGBoost model file readable by xgboost {xgb.__version__}: "
                            f"{first}") from None


def is_sagemaker_model_dir(directory) -> bool:
    """Whether ``directory`` looks like SageMaker's XGBoost model folder (``xgboost-model*`` files)."""
    directory = Path(directory)
    return not (directory / HEADER).exists() and any(
        p.is_file() and p.name.startswith(MODEL_PREFIX) for p in directory.iterdir())


def load_sagemaker_model(path, *, allow_pickle: bool = False):
    """Load a model SageMaker's XGBoost trained: a ``model.tar.gz``, its extracted folder, or one model file.

    Every regular file of the folder is a booster (dotfiles and ``model.tar.gz`` excluded); several
    make an ensemble, as after k-fold training. Returns a fitted :class:`~sagelocal.XGBoost`.
    """
    path = Path(path)
    if path.is_dir():
        return _load_dir(path, allow_pickle, str(path))
    if not path.is_file():
        raise ArtifactError(f"no model at '{path}': expected a model.tar.gz, a model folder or an xgboost-model file")
    if tarfile.is_tarfile(path):
        with tempfile.TemporaryDirectory(prefix="sagelocal-xgboost-") as tmp:
            safe_extract(path, tmp)
            return _load_dir(Path(tmp), allow_pickle, str(path))
    return _from_files({path.name: path.read_bytes()}, allow_pickle, str(path))


def _load_dir(directory: Path, allow_pickle: bool, shown: str):
    if (directory / HEADER).is_file():  # a sagelocal model: its own loader
        from ...base.artifacts import load_estimator

        return load_estimator(directory, allow_pickle=allow_pickle)
    files = {p.name: p.read_bytes() for p in directory.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.name != TARBALL}
    if not files:
        raise ArtifactError(f"'{shown}' holds no model file (SageMaker XGBoost writes 'xgboost-model')")
    return _from_files(files, allow_pickle, shown)


def _from_files(files: dict[str, bytes], allow_pickle: bool, shown: str):
    from .estimator import XGBoost, sorted_model_names
    from .hyperparameters import OBJECTIVES

    names = sorted_model_names(files)
    boosters = [booster_from_bytes(files[name], allow_pickle, f"{shown}: {name}") for name in names]
    model = XGBoost()
    model._set_boosters(boosters, pickled=any(files[name][:1] == _PICKLE_PROTOCOL_MARK for name in names))
    given = {"num_round": boosters[0].num_boosted_rounds()}
    if model.objective_ in OBJECTIVES:
        given["objective"] = model.objective_
    if model.num_class_:
        given["num_class"] = model.num_class_
    model.set_params(**given)
    model._hp = {name: given.get(name) for name in model.hyperparameters.names}
    model.hyperparameters_ = model._hp
    model.metrics_ = {}
    return model


def load_foreign(directory, allow_pickle: bool, shown: str):
    """The loader :func:`sagelocal.load` uses for SageMaker XGBoost model folders."""
    return _load_dir(Path(directory), allow_pickle, shown)


def save_sagemaker_model(model, path) -> str:
    """Write ``model``'s boosters as SageMaker's XGBoost writes them: ``xgboost-model`` (or
    ``xgboost-model-<i>``) in the folder ``path`` and a ``model.tar.gz`` holding only those files.

    Returns the tarball's path.
    """
    from .estimator import native_files

    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    files = native_files(model.boosters_)
    staging = Path(tempfile.mkdtemp(prefix=".sagelocal-tmp-", dir=target))
    try:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        for name, data in {**files, TARBALL: buffer.getvalue()}.items():
            (staging / name).write_bytes(data)
            os.replace(staging / name, target / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(target / TARBALL)
