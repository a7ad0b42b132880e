"""PCA: SageMaker's principal component analysis (``pca`` image, ``sagemaker.PCA``).

Both documented modes build an *additive* summary over mini-batches, so data larger than memory
streams through and the result does not depend on how rows are cut into batches:

- ``regular``: the exact scatter matrix of the data. Each batch contributes its own centred scatter
  and mean, merged with Chan et al.'s pairwise update (the same matrix as SageMaker's
  ``sum x^T x - (1/n)(sum x)^T(sum x)``, without its cancellation in float32). The components are the
  top eigenvectors of that d x d matrix.
- ``randomized``: SageMaker's sketch. Each b x d batch is multiplied by a random l x b sign matrix
  H_t, with l = num_components + extra_components; B = sum H_t X_t, h = column sums of the H_t,
  s = sum of rows, n. The centred sketch C = B - (1/n) h s^T spans the dominant row space. sagelocal
  then makes one more pass (epoch 1, the next Pipe-mode FIFO) projecting the centred rows on that
  l-dimensional space and takes the exact eigen-decomposition there (Rayleigh-Ritz): the sketch's own
  singular values are off by about 1/sqrt(l), the refined ones are exact within the subspace.
  Before it, ``power_iterations`` passes of subspace iteration (a sagelocal option; by default
  scikit-learn's rule, 4 or 7) sharpen the subspace on noisy data, so the result matches
  scikit-learn's randomized solver in accuracy; 0 keeps SageMaker's single sketch.

Component order: SageMaker's model and its responses keep components in *ascending* order of
singular value, so the most significant component is the *last* entry of each ``projection`` (as
AWS's example notebooks show; the guide does not say). ``predict`` and ``predict_records`` follow
SageMaker; the scikit-learn side (``transform``, ``components_``, ``explained_variance_``) is in
scikit-learn's descending order, with scikit-learn's sign convention, so it drops into pipelines.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from sklearn.base import TransformerMixin

from ..base.batch import Batch
from ..base.estimator import Estimator
from ..base.hyperparameters import REQUIRED, Hyperparameter, HyperparameterTable
from ..base.registry import register

HYPERPARAMETERS = HyperparameterTable("pca", [
    Hyperparameter("feature_dim", "int", REQUIRED, range=(1, None),
                   doc="Input dimension; filled from the data by fit() when not given."),
    Hyperparameter("mini_batch_size", "int", REQUIRED, range=(1, None),
                   doc="Rows per mini-batch; fit() defaults it to min(500, rows) as the SDK does."),
    Hyperparameter("num_components", "int", REQUIRED, range=(1, None),
                   doc="Number of principal components kept."),
    Hyperparameter("algorithm_mode", "categorical", "regular", choices=("regular", "randomized"),
                   doc="regular: exact covariance; randomized: sketch for many rows and features."),
    Hyperparameter("extra_components", "int", -1, range=(-1, None),
                   doc="Sketch oversampling in randomized mode; -1 means max(10, num_components)."),
    Hyperparameter("subtract_mean", "bool", True,
                   doc="Centre the data in training and at inference."),
])

#: The SDK's default mini-batch size for PCA when fit() is given none.
SDK_DEFAULT_MINI_BATCH_SIZE = 500


@register
class PCA(TransformerMixin, Estimator):
    """Principal component analysis with SageMaker's hyperparameters.

    Attributes
    ----------
    components_ : ndarray (num_components, feature_dim), largest variance first (scikit-learn order)
    explained_variance_, explained_variance_ratio_, singular_values_ : ndarray (num_components,)
    mean_ : ndarray (feature_dim,), the vector subtracted at inference (zeros if not subtract_mean)
    n_samples_ : int
    """

    algorithm = "pca"
    sdk_class = "PCA"
    hyperparameters = HYPERPARAMETERS
    channels = {"train": True, "test": False}
    default_label_size = 0
    response_key = "projections"
    # sagelocal option: passes of subspace iteration between the sketch and the final Rayleigh-Ritz
    # pass in randomized mode (0 = SageMaker's single sketch; each one costs a pass over the data).
    options = (Hyperparameter("power_iterations", "int", "auto", range=(0, None), auto=True,
                              doc="Subspace iterations refining the randomized sketch, one pass over the data "
                                  "each; 'auto' is scikit-learn's rule (7 when num_components < 10% of "
                                  "feature_dim, else 4); 0 keeps SageMaker's single sketch."),)

    @classmethod
    def _check_hyperparameters(cls, values):
        if values["feature_dim"] is not None and values["num_components"] > values["feature_dim"]:
            return [("num_components", f"hyperparameter 'num_components' must be <= feature_dim "
                                       f"({values['feature_dim']}); got {values['num_components']}")]
        return []

    def _fill_from_data(self, values, train):
        values = super()._fill_from_data(values, train)
        if values["mini_batch_size"] is None:
            rows = getattr(train, "n_rows", None)
            values["mini_batch_size"] = (SDK_DEFAULT_MINI_BATCH_SIZE if rows is None
                                         else min(SDK_DEFAULT_MINI_BATCH_SIZE, max(1, rows)))
        return values

    # ----------------------------------------------------------------------------------- fit
    def _fit(self, train, validation, test, hp):
        if hp["algorithm_mode"] == "regular":
            summary = _RegularSummary(hp, self._check_batch)
        else:
            iterations = self._options["power_iterations"]
            if iterations == "auto":  # scikit-learn's rule for its randomized solver
                iterations = 7 if hp["num_components"] < 0.1 * hp["feature_dim"] else 4
            summary = _RandomizedSummary(hp, self._options["random_state"], self._check_batch, iterations)
        loop = self._training_loop(epochs=summary.passes, batch_size=hp["mini_batch_size"], checkpoint_dir=None)
        loop.run(train, summary)
        self._set_solution(summary.solution())
        if test is not None:  # SageMaker names no PCA test metric; the channel is still checked
            for batch in test.batches(hp["mini_batch_size"]):
                self._check_batch(batch, "test")

    def _set_solution(self, solution: dict[str, Any]) -> None:
        values = solution["eigenvalues"]  # descending, of the scatter matrix
        vectors = _flip_signs(solution["components"])
        n = solution["n"]
        dof = max(n - 1, 1)
        self.components_ = np.ascontiguousarray(vectors, dtype=np.float32)
        self.explained_variance_ = values / dof
        self.explained_variance_ratio_ = values / solution["total"] if solution["total"] > 0 \
            else np.zeros_like(values)
        self.singular_values_ = np.sqrt(values)
        self.mean_ = solution["mean"].astype(np.float32)
        self.n_samples_ = int(n)
        self.n_components_ = int(len(values))
        self.n_features_in_ = int(vectors.shape[1])

    # ------------------------------------------------------------------------------- predict
    def transform(self, X) -> np.ndarray:
        """Projections in scikit-learn's order (largest-variance component first)."""
        features = self._features(X)
        projected = features @ self.components_.T
        if self._hp["subtract_mean"]:
            projected = projected - self.mean_ @ self.components_.T
        return np.asarray(projected, dtype=np.float32)

    def _predict(self, features) -> np.ndarray:
        # SageMaker's order: ascending singular value, most significant component last.
        return self.transform(features)[:, ::-1]

    def _records(self, features) -> list[dict[str, Any]]:
        return [{"projection": row} for row in self._predict(features).tolist()]

    def get_feature_names_out(self, input_features=None):
        """Output names ``pca0, pca1, ...`` for scikit-learn's set_output."""
        return np.asarray([f"pca{i}" for i in range(self.n_components_)], dtype=object)

    # ------------------------------------------------------------------------------ artifacts
    def _get_state(self):
        # SageMaker's model_algo-1 holds mean (1 x d), v (d x k) and s (k), ascending order.
        arrays = {"mean": self.mean_[None, :], "v": self.components_[::-1].T.copy(),
                  "s": self.singular_values_[::-1].copy(),
                  "explained_variance_ratio": self.explained_variance_ratio_[::-1].copy()}
        return arrays, {"n_samples": self.n_samples_, "metrics": self.metrics_}

    def _set_state(self, arrays, meta):
        s = arrays["s"][::-1].astype(np.float64)
        # C order as fit leaves it, so that BLAS rounds the same way and predictions are identical
        self.components_ = np.ascontiguousarray(arrays["v"].T[::-1], dtype=np.float32)
        self.singular_values_ = s
        self.explained_variance_ = s**2 / max(meta["n_samples"] - 1, 1)
        self.explained_variance_ratio_ = arrays["explained_variance_ratio"][::-1].astype(np.float64)
        self.mean_ = arrays["mean"][0].astype(np.float32)
        self.n_samples_ = int(meta["n_samples"])
        self.n_components_ = len(s)
        self.n_features_in_ = self.components_.shape[1]


def _flip_signs(components: np.ndarray) -> np.ndarray:
    """scikit-learn's ``svd_flip(u_based_decision=False)``: each row's largest |entry| positive."""
    biggest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(len(components)), biggest])
    signs[signs == 0] = 1.0
    return components * signs[:, None]


def _top_eigen(matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k eigenpairs of a symmetric PSD matrix: values descending (clipped at 0), vectors as rows."""
    d = matrix.shape[0]
    values, vectors = scipy.linalg.eigh(matrix, subset_by_index=(d - k, d - 1), driver="evr")
    return np.clip(values[::-1], 0.0, None), vectors[:, ::-1].T


def _batch_sums(features) -> tuple[int, np.ndarray]:
    return features.shape[0], np.asarray(features.sum(axis=0, dtype=np.float64)).ravel()


class _RegularSummary:
    """Exact scatter matrix, merged batch by batch (Chan, Golub & LeVeque's pairwise update)."""

    passes = 1

    def __init__(self, hp, check):
        d = hp["feature_dim"]
        self.k, self.centre, self.check = hp["num_components"], hp["subtract_mean"], check
        self.n, self.mean, self.scatter = 0, np.zeros(d), np.zeros((d, d))

    def train_batch(self, batch: Batch) -> None:
        self.check(batch)
        X = batch.features
        b, sums = _batch_sums(X)
        if b == 0:
            return
        mean_b = sums / b
        if sp.issparse(X):  # centring would densify: use the scatter identity on the sparse batch
            scatter_b = (X.T @ X).toarray().astype(np.float64) - b * np.outer(mean_b, mean_b)
        else:
            centred = X - mean_b.astype(np.float32)
            scatter_b = (centred.T @ centred).astype(np.float64)
        delta = mean_b - self.mean
        total = self.n + b
        self.scatter += scatter_b + np.outer(delta, delta) * (self.n * b / total)
        self.mean += delta * (b / total)
        self.n = total

    def end_epoch(self, epoch: int) -> dict[str, float]:
        return {}

    def state(self):
        return {"n": np.asarray(self.n), "mean": self.mean, "scatter": self.scatter}

    def load_state(self, state):
        self.n, self.mean, self.scatter = int(state["n"]), state["mean"], state["scatter"]

    def solution(self) -> dict[str, Any]:
        matrix = self.scatter if self.centre else self.scatter + self.n * np.outer(self.mean, self.mean)
        values, vectors = _top_eigen(matrix, self.k)
        mean = self.mean if self.centre else np.zeros_like(self.mean)
        return {"eigenvalues": values, "components": vectors, "n": self.n,
                "total": float(np.trace(matrix)), "mean": mean}


class _RandomizedSummary:
    """SageMaker's randomized sketch (pass 0), optional power iterations, Rayleigh-Ritz (last pass)."""

    def __init__(self, hp, seed, check, power_iterations):
        d, k = hp["feature_dim"], hp["num_components"]
        extra = max(10, k) if hp["extra_components"] == -1 else hp["extra_components"]
        self.k, self.ell, self.centre, self.check = k, min(k + extra, d), hp["subtract_mean"], check
        self.passes = 2 + power_iterations
        self.rng = np.random.default_rng(seed)
        self.n, self.sums = 0, np.zeros(d)
        self.sketch, self.h = np.zeros((self.ell, d)), np.zeros(self.ell)
        self.basis = self.mean = None  # set after pass 0
        self.epoch = 0
        self._clear_pass_sums()

    def _clear_pass_sums(self) -> None:
        d = self.sums.shape[0]
        self.power, self.gram, self.total = np.zeros((d, self.ell)), np.zeros((self.ell, self.ell)), 0.0

    def train_batch(self, batch: Batch) -> None:
        self.check(batch)
        if self.epoch == 0:
            self._sketch(batch.features)
        else:
            self._project(batch.features, final=self.epoch == self.passes - 1)

    def _sketch(self, X) -> None:
        b, sums = _batch_sums(X)
        # Drawn as (rows, l): consecutive rows consume consecutive draws, so the sketch of the whole
        # data does not depend on the batch size.
        signs = np.where(self.rng.random((b, self.ell)) < 0.5, -1.0, 1.0).astype(np.float32)
        self.sketch += np.asarray(X.T @ signs).T
        self.h += signs.sum(axis=0)
        self.sums += sums
        self.n += b

    def _project(self, X, final: bool) -> None:
        if sp.issparse(X):  # centre implicitly: centring a sparse batch would densify it
            projected = np.asarray(X @ self.basis, dtype=np.float64) - self.mean @ self.basis
            if not final:
                self.power += X.T @ projected - np.outer(self.mean, projected.sum(axis=0))
                return
            sq = np.asarray(X.multiply(X).sum(axis=1)).ravel() - 2 * (X @ self.mean) + self.mean @ self.mean
        else:
            centred = X - self.mean.astype(np.float32)
            projected = centred @ self.basis
            if not final:
                self.power += centred.T @ projected
                return
            sq = np.einsum("ij,ij->i", centred, centred, dtype=np.float64)
        projected = projected.astype(np.float64)
        self.gram += projected.T @ projected
        self.total += float(np.sum(sq))

    def end_epoch(self, epoch: int) -> dict[str, float]:
        if epoch == 0:
            self.mean = self.sums / max(self.n, 1) if self.centre else np.zeros_like(self.sums)
            sketch = self.sketch - np.outer(self.h, self.mean) if self.centre else self.sketch
            _, _, vt = scipy.linalg.svd(sketch, full_matrices=False)
            self.basis = vt.T.astype(np.float32)  # d x l orthonormal basis of the sketched row space
        elif epoch < self.passes - 1:  # one power iteration: basis <- orth(Xc^T Xc basis)
            self.basis = scipy.linalg.qr(self.power, mode="economic")[0].astype(np.float32)
            self._clear_pass_sums()
        self.epoch = epoch + 1
        return {}

    def state(self):
        state = {"epoch": np.asarray(self.epoch), "n": np.asarray(self.n), "sums": self.sums,
                 "sketch": self.sketch, "h": self.h, "power": self.power, "gram": self.gram,
                 "total": np.asarray(self.total)}
        if self.basis is not None:
            state.update(basis=self.basis, mean=self.mean)
        return state

    def load_state(self, state):
        self.epoch, self.n = int(state["epoch"]), int(state["n"])
        self.sums, self.sketch, self.h = state["sums"], state["sketch"], state["h"]
        self.power, self.gram, self.total = state["power"], state["gram"], float(state["total"])
        self.basis, self.mean = state.get("basis"), state.get("mean")

    def solution(self) -> dict[str, Any]:
        values, vectors = _top_eigen(self.gram, self.k)
        return {"eigenvalues": values, "components": vectors @ self.basis.T.astype(np.float64),
                "n": self.n, "total": self.total, "mean": self.mean}
