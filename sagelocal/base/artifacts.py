"""Self-describing model artifacts: a model directory and ``model.tar.gz``.

Layout (files at the root of both the directory and the tarball, as SageMaker tars
``/opt/ml/model``)::

    sagelocal.json   header: algorithm, sagelocal version, format versions, hyperparameters, payload
    model.npz        learned arrays (numpy, loaded with allow_pickle=False)
    model.json       learned metadata
    <native files>   formats of the libraries themselves (e.g. XGBoost's own model file)

Payloads are safe formats by default. Pickle (e.g. old SageMaker XGBoost models) is refused unless
``allow_pickle=True``, because unpickling a file runs whatever code it names. Writes go through
temporary names and renames, and the header is written last, so a directory either holds a complete
model or no header at all. Tar members that would land outside the target folder are refused.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from .errors import ArtifactError

HEADER = "sagelocal.json"
ARRAYS = "model.npz"
META = "model.json"
TARBALL = "model.tar.gz"
#: Version of the container layout above; a newer one is refused with a clear error.
FORMAT_VERSION = 1

#: Loaders of model folders that SageMaker itself wrote (no sagelocal header), tried in order by
#: :func:`load_estimator`: ``(matches(directory) -> bool, load(directory, allow_pickle, shown))``.
#: An algorithm registers one with :func:`register_foreign_loader` (XGBoost's ``xgboost-model``).
FOREIGN_LOADERS: list[tuple[Any, Any]] = []


def register_foreign_loader(matches, load) -> None:
    """Let :func:`load_estimator` read a model folder without a sagelocal header when ``matches`` it."""
    if (matches, load) not in FOREIGN_LOADERS:
        FOREIGN_LOADERS.append((matches, load))


def save_estimator(estimator, path) -> str:
    """Write ``estimator`` to the directory ``path`` (created if needed) and its tarball."""
    arrays, meta = estimator._get_state()
    header = {
        "algorithm": estimator.algorithm,
        "class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "sagelocal_version": __version__,
        "format_version": FORMAT_VERSION,
        "artifact_format": estimator.artifact_format,
        "hyperparameters": estimator.hyperparameters.to_sagemaker(estimator.hyperparameters_),
        "options": {name: getattr(estimator, name) for name in estimator.option_defaults()},
        "payload": [ARRAYS, META],
    }
    files = {ARRAYS: _npz_bytes(arrays), META: json.dumps(meta, sort_keys=True).encode()}
    # Files in a library's own format (XGBoost's model file), written beside the payload as they are.
    native = estimator._get_native_files() if hasattr(estimator, "_get_native_files") else {}
    if native:
        header["native"] = sorted(native)
        files.update(native)
    return write_artifact(path, header, files)


def write_artifact(path, header: dict[str, Any], files: dict[str, bytes]) -> str:
    """Write ``files`` plus the header into directory ``path`` and ``path/model.tar.gz`` atomically."""
    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    header_bytes = json.dumps(header, sort_keys=True, indent=1).encode()
    staging = Path(tempfile.mkdtemp(prefix=".sagelocal-tmp-", dir=target))
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        (staging / HEADER).write_bytes(header_bytes)
        with tarfile.open(staging / TARBALL, "w:gz") as tar:
            for name in [HEADER, *files]:
                tar.add(staging / name, arcname=name)
        # Commit: drop the old header first, move payloads, then the new header as the last step.
        (target / HEADER).unlink(missing_ok=True)
        for name in [*files, TARBALL, HEADER]:
            os.replace(staging / name, target / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(target / TARBALL)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def load_estimator(path, *, allow_pickle: bool = False):
    """Load the model in directory or tarball ``path``; see :func:`sagelocal.load`."""
    path = Path(path)
    if path.is_dir():
        return _load_dir(path, allow_pickle)
    if not path.is_file():
        raise ArtifactError(f"no model at '{path}': expected a model directory or a model.tar.gz")
    with tempfile.TemporaryDirectory(prefix="sagelocal-model-") as tmp:
        safe_extract(path, tmp)
        return _load_dir(Path(tmp), allow_pickle, shown=str(path))


def read_header(directory: Path, shown: str | None = None) -> dict[str, Any]:
    """The checked header of the model in ``directory``."""
    shown = shown or str(directory)
    file = directory / HEADER
    if not file.is_file():
        raise ArtifactError(f"'{shown}' is not a sagelocal model: it has no {HEADER} header")
    try:
        header = json.loads(file.read_text())
    except ValueError as exc:
        raise ArtifactError(f"'{shown}': corrupt {HEADER}: {exc}") from None
    version = header.get("format_version")
    if not isinstance(version, int):
        raise ArtifactError(f"'{shown}': {HEADER} has no integer format_version")
    if version > FORMAT_VERSION:
        raise ArtifactError(f"'{shown}' uses artifact format {version}, newer than this sagelocal "
                            f"{__version__} reads (up to {FORMAT_VERSION}); upgrade sagelocal")
    return header


def _load_dir(directory: Path, allow_pickle: bool, shown: str | None = None):
    from .registry import get_class

    shown = shown or str(directory)
    if not (directory / HEADER).is_file():
        for matches, load in FOREIGN_LOADERS:
            if matches(directory):
                return load(directory, allow_pickle, shown)
    header = read_header(directory, shown)
    cls = get_class(header.get("algorithm", "?"))
    if header.get("artifact_format", 1) > cls.artifact_format:
        raise ArtifactError(f"'{shown}': {cls.algorithm} payload format {header['artifact_format']} "
                            f"is newer than this sagelocal reads ({cls.artifact_format})")
    params = {**cls.hyperparameters.parse(header.get("hyperparameters", {})),
              **header.get("options", {})}
    estimator = cls(**params)
    arrays = _read_npz(directory / ARRAYS, allow_pickle, shown)
    try:
        meta = json.loads((directory / META).read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"'{shown}': cannot read {META}: {exc}") from None
    estimator._hp = estimator.hyperparameters.parse(header.get("hyperparameters", {}))
    if header.get("native"):
        estimator._set_native_files(_read_native(directory, header["native"], shown))
    estimator._set_state(arrays, meta)
    estimator.hyperparameters_ = estimator._hp
    estimator.metrics_ = meta.get("metrics", {})
    return estimator


def _read_native(directory: Path, names: list[str], shown: str) -> dict[str, bytes]:
    files = {}
    for name in names:
        if not isinstance(name, str) or Path(name).name != name:
            raise ArtifactError(f"'{shown}': {HEADER} names an invalid native file {name!r}")
        try:
            files[name] = (directory / name).read_bytes()
        except OSError as exc:
            raise ArtifactError(f"'{shown}': cannot read {name}: {exc}") from None
    return files


def _read_npz(file: Path, allow_pickle: bool, shown: str) -> dict[str, np.ndarray]:
    try:
        with np.load(file, allow_pickle=allow_pickle) as data:
            return {key: data[key] for key in data.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ArtifactError(
                f"'{shown}': {file.name} holds pickled objects, refused because unpickling runs "
                f"code; pass allow_pickle=True only for a model you trust") from None
        raise ArtifactError(f"'{shown}': corrupt {file.name}: {exc}") from None
    except OSError as exc:
        raise ArtifactError(f"'{shown}': cannot read {file.name}: {exc}") from None


def safe_extract(tarball, destination) -> None:
    """Extract ``tarball`` into ``destination``, refusing members that would escape it.

    Refused: absolute names, ``..`` components, links pointing outside, devices and FIFOs.
    """
    destination = Path(destination).resolve()
    try:
        tar = tarfile.open(tarball, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise ArtifactError(f"'{tarball}' is not a readable tar archive: {exc}") from None
    with tar:
        members = tar.getmembers()
        for member in members:
            _check_member(member, destination, tarball)
        tar.extractall(destination, members=members, filter="data")


def _check_member(member: tarfile.TarInfo, destination: Path, tarball) -> None:
    name = member.name
    where = (destination / name).resolve()
    if os.path.isabs(name) or ".." in Path(name).parts or not where.is_relative_to(destination):
        raise ArtifactError(f"'{tarball}': refused member '{name}': it would extract outside the "
                            f"model folder")
    if member.issym() or member.islnk():
        link = Path(member.linkname)
        base = where.parent if member.issym() else destination
        if link.is_absolute() or not (base / link).resolve().is_relative_to(destination):
            raise ArtifactError(f"'{tarball}': refused link '{name}' -> '{member.linkname}': it "
                                f"points outside the model folder")
    elif not (member.isfile() or member.isdir()):
        raise ArtifactError(f"'{tarball}': refused member '{name}': only files and folders allowed")
