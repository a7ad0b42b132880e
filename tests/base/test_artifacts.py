"""Model artifacts: self-describing, safe formats, atomic writes, safe extraction."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest

import sagelocal
from sagelocal import ArtifactError
from sagelocal.base import artifacts
from tests.conftest import low_rank


@pytest.fixture
def fitted():
    X = low_rank(n=400, d=12, spectrum=(5.0, 3.0, 1.0))
    return sagelocal.PCA(num_components=3).fit(X), X


def test_save_writes_header_payload_and_tarball(tmp_path, fitted):
    model, X = fitted
    tarball = model.save(tmp_path / "model")
    header = json.loads((tmp_path / "model" / "sagelocal.json").read_text())
    assert header["algorithm"] == "pca" and header["format_version"] == artifacts.FORMAT_VERSION
    assert header["sagelocal_version"] == sagelocal.__version__
    assert header["hyperparameters"] == {"feature_dim": "12", "mini_batch_size": "400",
                                         "num_components": "3", "algorithm_mode": "regular",
                                         "extra_components": "-1", "subtract_mean": "True"}
    with tarfile.open(tarball) as tar:  # files at the archive root, as SageMaker tars /opt/ml/model
        assert sorted(tar.getnames()) == ["model.json", "model.npz", "sagelocal.json"]
    assert not [p for p in (tmp_path / "model").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("which", ["dir", "tarball"])
def test_load_gives_identical_predictions(tmp_path, fitted, which):
    model, X = fitted
    tarball = model.save(tmp_path / "model")
    loaded = sagelocal.load(tmp_path / "model" if which == "dir" else tarball)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    assert loaded.hyperparameters_ == model.hyperparameters_  # resolved values, as hyperparameters.json
    assert sagelocal.PCA.load(tarball).predict_records(X[:2]) == model.predict_records(X[:2])


def _tarball(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _member(name, data=b"x", kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (data if kind == tarfile.REGTYPE else None)


@pytest.mark.parametrize("member", [
    _member("../escape.txt"), _member("/tmp/absolute.txt"), _member("a/../../escape.txt"),
    _member("link", kind=tarfile.SYMTYPE, link="/etc/passwd"),
    _member("link", kind=tarfile.SYMTYPE, link="../../outside"),
    _member("hard", kind=tarfile.LNKTYPE, link="../outside"),
    _member("fifo", kind=tarfile.FIFOTYPE),
])
def test_escaping_tar_members_are_refused(tmp_path, member):
    tarball = _tarball(tmp_path / "evil.tar.gz", [_member("sagelocal.json", b"{}"), member])
    with pytest.raises(ArtifactError, match="refused"):
        sagelocal.load(tarball)
    assert not (tmp_path / "escape.txt").exists()


def test_pickle_payload_refused_unless_allowed(tmp_path, fitted):
    model, X = fitted
    model.save(tmp_path / "model")
    npz = tmp_path / "model" / "model.npz"
    with np.load(npz) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["extra"] = np.array([{"runs": "code on load"}], dtype=object)  # np.savez pickles objects
    np.savez(npz, **arrays)
    with pytest.raises(ArtifactError, match="allow_pickle=True"):
        sagelocal.load(tmp_path / "model")
    loaded = sagelocal.load(tmp_path / "model", allow_pickle=True)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def _edit_header(directory, **changes):
    path = directory / "sagelocal.json"
    header = json.loads(path.read_text())
    header.update(changes)
    path.write_text(json.dumps(header))


def test_newer_format_and_wrong_files_are_named_errors(tmp_path, fitted):
    model, _ = fitted
    model.save(tmp_path / "model")
    _edit_header(tmp_path / "model", format_version=artifacts.FORMAT_VERSION + 1)
    with pytest.raises(ArtifactError, match="newer"):
        sagelocal.load(tmp_path / "model")
    with pytest.raises(ArtifactError, match="no sagelocal.json header"):
        sagelocal.load(tmp_path)
    with pytest.raises(ArtifactError, match="no model at"):
        sagelocal.load(tmp_path / "missing")
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(ArtifactError, match="not a readable tar"):
        sagelocal.load(tmp_path / "junk.tar.gz")


def test_other_algorithm_header_is_refused(tmp_path, fitted):
    model, _ = fitted
    model.save(tmp_path / "model")
    _edit_header(tmp_path / "model", algorithm="no-such-algorithm")
    with pytest.raises(sagelocal.UnknownAlgorithmError, match="unknown algorithm 'no-such-algorithm'"):
        sagelocal.load(tmp_path / "model")


def test_failed_save_keeps_the_previous_model(tmp_path, fitted, monkeypatch):
    model, X = fitted
    model.save(tmp_path / "model")
    other = sagelocal.PCA(num_components=2).fit(X)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(artifacts.tarfile, "open", broken)
    with pytest.raises(OSError, match="disk full"):
        other.save(tmp_path / "model")
    monkeypatch.undo()
    np.testing.assert_array_equal(sagelocal.load(tmp_path / "model").predict(X), model.predict(X))
    assert not [p for p in (tmp_path / "model").iterdir() if p.name.startswith(".")]
