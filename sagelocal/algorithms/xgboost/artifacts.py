"""Model files as SageMaker's XGBoost writes and reads them.

A SageMaker XGBoost ``model.tar.gz`` holds ``xgboost-model`` (``xgboost-model-0`` ... after k-fold
training). Versions 1.3-1 and later save it with ``Booster.save_model`` (XGBoost's own format);
earlier versions pickled the Booster. The container loads every file of the model folder (dotfiles
excluded), trying pickle first; sagelocal reads XGBoost's format and unpickles only with
``allow_pickle=True``, because unpickling a file runs whatever code it names.

This module knows files and boosters only; :mod:`.estimator` builds the estimator from them.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from ...base.artifacts import HEADER, TARBALL, safe_extract
from ...base.errors import ArtifactError
from .data import xgboost_module

MODEL_NAME = "xgboost-model"
_PICKLE_PROTOCOL_MARK = b"\x80"


def is_pickled(data: bytes) -> bool:
    """Whether a model file's bytes are a pickle (SageMaker XGBoost before 1.3-1)."""
    return data[:1] == _PICKLE_PROTOCOL_MARK


def booster_from_bytes(data: bytes, allow_pickle: bool, name: str):
    """An ``xgboost.Booster`` from a model file's bytes (XGBoost's JSON/UBJSON/binary, or a pickle)."""
    xgb = xgboost_module()
    if is_pickled(data):
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


def native_files(boosters: list) -> dict[str, bytes]:
    """``{"xgboost-model": bytes}``, or ``xgboost-model-<i>`` per booster of an ensemble (UBJSON)."""
    if len(boosters) == 1:
        return {MODEL_NAME: bytes(boosters[0].save_raw("ubj"))}
    return {f"{MODEL_NAME}-{i}": bytes(b.save_raw("ubj")) for i, b in enumerate(boosters)}


def sorted_model_names(names) -> list[str]:
    """Model file names in natural order (``xgboost-model-2`` before ``xgboost-model-10``)."""
    return sorted(names, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])


def is_sagemaker_model_dir(directory) -> bool:
    """Whether ``directory`` looks like SageMaker's XGBoost model folder (``xgboost-model*`` files)."""
    directory = Path(directory)
    return not (directory / HEADER).exists() and any(
        p.is_file() and p.name.startswith(MODEL_NAME) for p in directory.iterdir())


def holds_sagelocal_model(path) -> bool:
    """Whether ``path`` (a folder or a tarball) holds sagelocal's own artifact (its JSON header)."""
    path = Path(path)
    if path.is_dir():
        return (path / HEADER).is_file()
    if not (path.is_file() and tarfile.is_tarfile(path)):
        return False
    with tarfile.open(path) as tar:
        return any(os.path.normpath(name) == HEADER for name in tar.getnames())


def read_model_files(path) -> dict[str, bytes]:
    """The model files of SageMaker's XGBoost model at ``path`` by name: a ``model.tar.gz``, its extracted
    folder (every regular file but dotfiles and ``model.tar.gz``), or one model file."""
    path = Path(path)
    if path.is_dir():
        return folder_model_files(path, str(path))
    if not path.is_file():
        raise ArtifactError(f"no model at '{path}': expected a model.tar.gz, a model folder or an xgboost-model file")
    if tarfile.is_tarfile(path):
        with tempfile.TemporaryDirectory(prefix="sagelocal-xgboost-") as tmp:
            safe_extract(path, tmp)
            return folder_model_files(Path(tmp), str(path))
    return {path.name: path.read_bytes()}


def folder_model_files(directory: Path, shown: str) -> dict[str, bytes]:
    """The model files of a SageMaker XGBoost model folder, by name (``shown`` names it in errors)."""
    files = {p.name: p.read_bytes() for p in Path(directory).iterdir()
             if p.is_file() and not p.name.startswith(".") and p.name != TARBALL}
    if not files:
        raise ArtifactError(f"'{shown}' holds no model file (SageMaker XGBoost writes 'xgboost-model')")
    return files


def write_sagemaker_model(boosters: list, path) -> str:
    """Write ``boosters`` as SageMaker's XGBoost writes them: ``xgboost-model`` (or ``xgboost-model-<i>``)
    in the folder ``path`` and a ``model.tar.gz`` holding only those files.

    Returns the tarball's path.
    """
    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    files = native_files(boosters)
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
