"""Docstrings generated from the declaration tables; the one boolean rule; the missing-backend error."""

from __future__ import annotations

import numpy as np
import pytest

import sagelocal
from sagelocal.base.errors import MissingDependencyError
from sagelocal.base.hyperparameters import parse_bool
from sagelocal.base.registry import get_class
from sagelocal.serving.errors import status_for


@pytest.mark.parametrize("name", sagelocal.algorithms())
def test_docstring_lists_every_declaration_with_its_doc(name):
    cls = get_class(name)
    doc = cls.__doc__
    section = doc[doc.index("Parameters\n----------"):]
    for hp in [*cls.hyperparameters, *cls.option_table()]:
        assert f"\n{hp.name} : " in section, hp.name
        assert hp.doc.strip() and hp.doc.strip()[:40] in section, hp.name
    assert doc.count("Parameters\n----------") == 1  # hand-written lists are replaced, not repeated


def test_generated_section_changes_with_the_table():
    assert "power_iterations : int or \"auto\", default 'auto'" in sagelocal.PCA.__doc__
    assert "num_components : int, required" in sagelocal.PCA.__doc__
    assert sagelocal.PCA.__doc__.index("Parameters") < sagelocal.PCA.__doc__.index("Attributes")


@pytest.mark.parametrize("value, expected", [(True, True), (np.bool_(False), False), ("true", True),
                                             ("FALSE", False), ("True", True), (" true", None), ("1", None),
                                             (1, None), ("yes", None), (None, None)])
def test_one_boolean_rule(value, expected):
    assert parse_bool(value) is expected


def test_knn_verbose_follows_the_rule():
    est = sagelocal.KNN(k=1, predictor_type="classifier", sample_size=4).fit(np.eye(4, dtype="float32"),
                                                                             np.arange(4.0))
    assert est.predict_records(np.eye(4, dtype="float32")[:1], verbose=" TRUE ")[0].keys() >= {"labels"}
    with pytest.raises(sagelocal.DataFormatError, match="verbose"):
        est.predict_records(np.eye(4, dtype="float32")[:1], verbose="1")


def test_missing_backend_is_a_server_error():
    assert issubclass(MissingDependencyError, ImportError)
    assert status_for(MissingDependencyError("needs faiss: pip install 'sagelocal[knn]'")) == 500
