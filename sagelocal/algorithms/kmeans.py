"""K-Means: SageMaker's web-scale mini-batch k-means (``kmeans`` image, ``sagemaker.KMeans``).

SageMaker's method is not Lloyd's algorithm over the whole data set (algo-kmeans-tech-notes.md):

1. Seeding: K = k x ``extra_center_factor`` centres are drawn from the first rows of the stream (the
   first mini-batch, more batches when it holds fewer than K rows) by ``init_method`` (``random``:
   K distinct rows; ``kmeans++``: k-means++ seeding of that sample).
2. Streaming (Sculley, WWW 2010): each mini-batch of ``mini_batch_size`` rows is assigned to the
   nearest of the K centres, and every centre moves to the running mean of the points it received,
   i.e. with weight p = new / (previous + new). With ``half_life_time_size`` = h > 0 a point's weight
   halves after h further points: the accumulated weights decay by 0.5^(b/h) before a batch of b rows.
   ``epochs`` passes over the data (one FIFO per epoch in Pipe mode) keep updating the same centres.
3. Reduction: the K centres, weighted by the points they absorbed, are reduced to k by a local
   weighted Lloyd run seeded by ``local_lloyd_init_method``, stopped after ``local_lloyd_max_iter``
   iterations or when the loss improves by less than ``local_lloyd_tol`` (relative), repeated
   ``local_lloyd_num_trials`` times keeping the lowest loss.

Memory is bounded by a mini-batch and the K centres, so data larger than memory streams through.
Assignment is a blocked BLAS product (``|x|^2 - 2 x.c + |c|^2`` in float32, rows in chunks); the
reported distances are recomputed exactly in float64 for the chosen centre only.

Decisions where SageMaker does not say (one line each in the code as well):

- ``distance_to_cluster`` is the plain Euclidean distance (not squared); ``test:msd`` / ``test:ssd``
  use squared distances, as their names say.
- ``extra_center_factor="auto"`` is ``AUTO_EXTRA_CENTER_FACTOR`` (10, the top of the tuning range)
  and ``local_lloyd_num_trials="auto"`` is ``AUTO_LOCAL_LLOYD_NUM_TRIALS`` (10, as scikit-learn's
  ``n_init`` for random starts; the local run is on K points only, so trials are cheap).
- ``force_dense`` (sent by the SDK, undocumented) densifies sparse batches; unset or false keeps
  sparse arithmetic. The result is the same either way.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ..base.batch import Batch
from ..base.errors import ArtifactError, DataFormatError
from ..base.estimator import Estimator
from ..base.hyperparameters import REQUIRED, Hyperparameter, HyperparameterTable
from ..base.registry import register
from ..base.training import Metric

HYPERPARAMETERS = HyperparameterTable("kmeans", [
    Hyperparameter("feature_dim", "int", REQUIRED, range=(1, None),
                   doc="Input dimension; filled from the data by fit() when not given."),
    Hyperparameter("k", "int", REQUIRED, range=(1, None), doc="Number of clusters."),
    Hyperparameter("epochs", "int", 1, range=(1, None), tunable=True, tuning_range=(1, 10),
                   doc="Passes over the training data."),
    Hyperparameter("eval_metrics", "json", ["msd"],
                   doc='JSON list of test metrics from "msd" and "ssd".'),
    Hyperparameter("extra_center_factor", "int", "auto", range=(1, None), auto=True, tunable=True,
                   tuning_range=(4, 10), doc="Centres kept while streaming = k x this factor."),
    Hyperparameter("half_life_time_size", "int", 0, range=(0, None),
                   doc="Points after which a point's weight in its centre halves; 0: no decay."),
    Hyperparameter("init_method", "categorical", "random", choices=("random", "kmeans++"), tunable=True,
                   tuning_range=("kmeans++", "random"), doc="Seeding of the streaming centres."),
    Hyperparameter("local_lloyd_init_method", "categorical", "kmeans++", choices=("random", "kmeans++"),
                   doc="Seeding of the final local Lloyd run reducing the centres to k."),
    Hyperparameter("local_lloyd_max_iter", "int", 300, range=(1, None),
                   doc="Iteration cap of the final local Lloyd run."),
    Hyperparameter("local_lloyd_num_trials", "int", "auto", range=(1, None), auto=True,
                   doc="Repetitions of the local Lloyd run; the lowest loss wins."),
    Hyperparameter("local_lloyd_tol", "float", 0.0001, range=(0, 1),
                   doc="Relative loss improvement below which the local Lloyd run stops."),
    Hyperparameter("mini_batch_size", "int", 5000, range=(1, None), tunable=True, tuning_range=(3000, 15000),
                   doc="Rows per streamed mini-batch."),
    Hyperparameter("force_dense", "bool", None, doc="Densify sparse input (always sent by the SDK)."),
])

EVAL_METRICS = ("msd", "ssd")
# SageMaker leaves both "auto" rules undocumented: 10 is the top of the tuning page's 4-10 range.
AUTO_EXTRA_CENTER_FACTOR = 10
# ... and 10 trials, scikit-learn's n_init for random starts (the local run only sees K points).
AUTO_LOCAL_LLOYD_NUM_TRIALS = 10
#: Elements of one block of the distance matrix (rows x centres), bounding temporary memory.
_BLOCK = 1 << 21


@register
class KMeans(Estimator):
    """K-means clustering with SageMaker's hyperparameters and streaming method.

    Attributes
    ----------
    cluster_centers_ : ndarray (k, feature_dim) float32, the final centroids
    n_features_in_ : int
    n_centers_streamed_ : int, K, the number of centres kept while streaming
    n_samples_ : int, training rows seen in the last epoch
    """

    algorithm = "kmeans"
    sdk_class = "KMeans"
    hyperparameters = HYPERPARAMETERS
    channels = {"train": True, "test": False}
    default_label_size = 0
    metrics = (Metric("test:msd"), Metric("test:ssd"))
    response_key = "predictions"
    response_content_types = ("application/json", "application/jsonlines", "application/x-recordio-protobuf",
                              "text/csv")

    @classmethod
    def _check_hyperparameters(cls, values):
        metrics = values["eval_metrics"]
        if (not isinstance(metrics, list) or not metrics
                or any(not isinstance(m, str) or m not in EVAL_METRICS for m in metrics)):
            return [("eval_metrics", f"hyperparameter 'eval_metrics' must be a non-empty JSON list of "
                                     f"{', '.join(repr(m) for m in EVAL_METRICS)}; got {metrics!r}")]
        return []

    # ----------------------------------------------------------------------------------- fit
    def _fit(self, train, validation, test, hp):
        factor = hp["extra_center_factor"]
        factor = AUTO_EXTRA_CENTER_FACTOR if factor == "auto" else factor
        rng = np.random.default_rng(self._options["random_state"])
        stream = _StreamingKMeans(hp["k"] * factor, hp, rng, self._check_batch)
        loop = self._training_loop(epochs=hp["epochs"], batch_size=hp["mini_batch_size"])
        loop.run(train, stream)
        if stream.centers is None:
            raise DataFormatError("kmeans: the train channel holds no rows", channel="train")
        trials = hp["local_lloyd_num_trials"]
        trials = AUTO_LOCAL_LLOYD_NUM_TRIALS if trials == "auto" else trials
        centers = _local_lloyd(stream.centers, stream.counts, hp["k"], init=hp["local_lloyd_init_method"],
                               max_iter=hp["local_lloyd_max_iter"], tol=hp["local_lloyd_tol"], trials=trials,
                               rng=rng)
        self.cluster_centers_ = np.ascontiguousarray(centers, dtype=np.float32)
        self.n_features_in_ = int(centers.shape[1])
        self.n_centers_streamed_ = int(len(stream.centers))
        self.n_samples_ = int(stream.rows_last_epoch)
        if test is not None:
            self._evaluate(test, hp)

    def _evaluate(self, test, hp) -> None:
        """test:msd and/or test:ssd: mean and sum of squared distances to the closest centre."""
        total, rows = 0.0, 0
        for batch in test.batches(hp["mini_batch_size"]):
            self._check_batch(batch, "test")
            _, squared = self._assign(batch.features)
            total += float(squared.sum())
            rows += len(batch)
        if rows == 0:
            raise DataFormatError("kmeans: the test channel holds no rows", channel="test")
        values = {"msd": total / rows, "ssd": total}
        for name in dict.fromkeys(hp["eval_metrics"]):
            self._reporter.report(f"test:{name}", values[name])

    # ------------------------------------------------------------------------------- predict
    def _assign(self, features) -> tuple[np.ndarray, np.ndarray]:
        """Closest centre of each row and the exact squared distance to it (float64)."""
        centers = self.cluster_centers_
        labels, _ = _nearest(features, centers, _squared_norms(centers))
        return labels, _squared_distance_to(features, centers, labels)

    def _predict(self, features) -> np.ndarray:
        return self._assign(features)[0]

    def _records(self, features) -> list[dict[str, Any]]:
        labels, squared = self._assign(features)
        # SageMaker does not say whether the distance is squared; the plain Euclidean one is reported.
        distances = np.sqrt(squared)
        return [{"closest_cluster": float(c), "distance_to_cluster": d}
                for c, d in zip(labels.tolist(), distances.tolist())]

    def transform(self, X) -> np.ndarray:
        """Euclidean distances of each row to every centre (scikit-learn's ``KMeans.transform``)."""
        features = self._features(X)
        centers = self.cluster_centers_.astype(np.float64)
        products = np.asarray(features @ centers.T, dtype=np.float64)
        squared = _row_squared_norms(features)[:, None] - 2 * products + _squared_norms(centers)[None, :]
        return np.sqrt(np.clip(squared, 0.0, None))

    def score(self, X, y=None) -> float:
        """Minus the sum of squared distances to the closest centres (scikit-learn's ``KMeans.score``)."""
        return -float(self._assign(self._features(X))[1].sum())

    # ------------------------------------------------------------------------------ artifacts
    def _get_state(self):
        # SageMaker's model_algo-1 holds the k x feature_dim centroid matrix as its first array.
        return ({"centroids": self.cluster_centers_},
                {"n_centers_streamed": self.n_centers_streamed_, "n_samples": self.n_samples_,
                 "metrics": self.metrics_})

    def _set_state(self, arrays, meta):
        self.cluster_centers_ = np.ascontiguousarray(arrays["centroids"], dtype=np.float32)
        self.n_features_in_ = int(self.cluster_centers_.shape[1])
        self.n_centers_streamed_ = int(meta.get("n_centers_streamed", len(self.cluster_centers_)))
        self.n_samples_ = int(meta.get("n_samples", 0))


# ------------------------------------------------------------------------------ numeric kernels
def _squared_norms(matrix: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64)


def _row_squared_norms(features) -> np.ndarray:
    if sp.issparse(features):
        return np.asarray(features.multiply(features).sum(axis=1), dtype=np.float64).ravel()
    return _squared_norms(features)


def _nearest(features, centers: np.ndarray, center_norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centre of each row and ``|c|^2 - 2 x.c`` there (the squared distance
    minus ``|x|^2``), by blocked BLAS products in the centres' precision.

    Large inputs are split over the cores, each thread running single-threaded BLAS on its rows (as
    scikit-learn does): many short multi-threaded products stall badly when the cores are busy.
    """
    n = features.shape[0]
    labels = np.empty(n, dtype=np.int64)
    partial = np.empty(n, dtype=np.float64)
    step = max(1, _BLOCK // max(1, len(centers)))
    norms = center_norms.astype(centers.dtype)
    scaled = np.ascontiguousarray((-2 * centers).T)  # the -2 folded in: one pass less per block

    def rows(lo: int, hi: int) -> None:
        for start in range(lo, hi, step):
            products = np.asarray(features[start:min(start + step, hi)] @ scaled)
            products += norms
            best = np.argmin(products, axis=1)
            labels[start:start + len(best)] = best
            partial[start:start + len(best)] = products[np.arange(len(best)), best]

    workers = min(_cores(), -(-n // step))
    if workers <= 1:
        rows(0, n)
    else:
        bounds = np.linspace(0, n, workers + 1).astype(int)
        with _small_products(), ThreadPoolExecutor(workers) as pool:
            list(pool.map(rows, bounds[:-1], bounds[1:]))
    return labels, partial


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _squared_distance_to(features, centers: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Exact squared distance (float64) of each row to the centre ``labels`` names."""
    chosen = centers[labels].astype(np.float64)
    if sp.issparse(features):
        cross = np.asarray(features.multiply(chosen).sum(axis=1), dtype=np.float64).ravel()
        squared = _row_squared_norms(features) - 2 * cross + _squared_norms(chosen)
        return np.clip(squared, 0.0, None)
    diff = features - chosen
    return np.einsum("ij,ij->i", diff, diff)


def _cluster_sums(features, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per-cluster sums of the rows (float64): sorted segments for dense rows, a one-hot product for CSR."""
    n = features.shape[0]
    if sp.issparse(features):
        onehot = sp.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(n_clusters, n))
        return (onehot @ features).toarray()
    sums = np.zeros((n_clusters, features.shape[1]))
    if n == 0:
        return sums
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sums[ordered[starts]] = np.add.reduceat(features[order], starts, axis=0, dtype=np.float64)
    return sums


def _kmeans_plusplus(points: np.ndarray, weights: np.ndarray, n_centers: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n_centers`` rows chosen by weighted greedy k-means++ (Arthur & Vassilvitskii,
    with scikit-learn's 2 + log(k) candidates per step)."""
    n = len(points)
    norms = _squared_norms(points)
    trials = 2 + int(math.log(n_centers))
    chosen = np.empty(n_centers, dtype=np.int64)
    chosen[0] = rng.choice(n, p=weights / weights.sum())
    closest = _distances_to(points, norms, chosen[:1])[0]
    for i in range(1, n_centers):
        potential = np.cumsum(weights * closest)
        if potential[-1] <= 0:  # every weighted point already sits on a centre: take unused rows
            unused = np.setdiff1d(np.arange(n), chosen[:i])
            chosen[i:] = unused[:n_centers - i]
            break
        candidates = np.searchsorted(potential, rng.random(trials) * potential[-1], side="right")
        candidates = np.minimum(candidates, n - 1)
        trial = np.minimum(closest, _distances_to(points, norms, candidates))
        best = int(np.argmin(trial @ weights))
        chosen[i], closest = candidates[best], trial[best]
    return chosen


def _distances_to(points: np.ndarray, norms: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Squared distances (len(rows) x n) from ``points[rows]`` to every point."""
    squared = norms[rows][:, None] - 2 * (points[rows] @ points.T) + norms[None, :]
    return np.clip(squared, 0.0, None)


def _seed(points: np.ndarray, weights: np.ndarray, n_centers: int, method: str,
          rng: np.random.Generator) -> np.ndarray:
    if method == "kmeans++":
        with _small_products():
            return points[_kmeans_plusplus(points, weights, n_centers, rng)]
    return points[rng.choice(len(points), n_centers, replace=False, p=weights / weights.sum())]


def _lloyd(points, weights, centers, max_iter: int, tol: float) -> tuple[np.ndarray, float]:
    """Weighted Lloyd iterations from ``centers``; stops when the loss improves by <= tol (relative)."""
    norms, k = _squared_norms(points), len(centers)
    previous = math.inf
    for _ in range(max_iter):
        labels, partial = _nearest(points, centers, _squared_norms(centers))
        squared = np.clip(partial + norms, 0.0, None)
        loss = float(weights @ squared)
        if math.isfinite(previous) and previous - loss <= tol * previous:
            break
        previous = loss
        mass = np.bincount(labels, weights=weights, minlength=k)
        sums = _cluster_sums(points * weights[:, None], labels, k)
        filled = mass > 0
        centers = centers.copy()
        centers[filled] = sums[filled] / mass[filled, None]
        empty = np.flatnonzero(~filled)
        if len(empty):  # an empty cluster restarts at the worst-served points, as scikit-learn does
            centers[empty] = points[np.argsort(-(weights * squared), kind="stable")[:len(empty)]]
    labels, partial = _nearest(points, centers, _squared_norms(centers))
    return centers, float(weights @ np.clip(partial + norms, 0.0, None))


def _local_lloyd(centers: np.ndarray, counts: np.ndarray, k: int, *, init: str, max_iter: int, tol: float,
                 trials: int, rng: np.random.Generator) -> np.ndarray:
    """SageMaker's reduction of the K streamed centres (weighted by counts) to k centres."""
    live = counts > 0
    points, weights = centers[live].astype(np.float64), counts[live].astype(np.float64)
    if len(points) <= k:  # nothing to reduce: keep the live centres, pad with the unused ones
        return np.concatenate([points, centers[~live][:k - len(points)]])
    best, best_loss = None, math.inf
    for _ in range(trials):
        start = _seed(points, weights, k, init, rng)
        with _small_products():
            result, loss = _lloyd(points, weights, start, max_iter, tol)
        if loss < best_loss:
            best, best_loss = result, loss
    return best


def _small_products():
    """Single-threaded BLAS for many tiny products (as scikit-learn's KMeans does): threads only
    add synchronisation there, which stalls badly on busy cores. Restored on exit."""
    return threadpool_limits(limits=1, user_api="blas")


class _StreamingKMeans:
    """Sculley's mini-batch k-means over K centres (the Trainable of the training loop)."""

    def __init__(self, n_centers: int, hp: dict[str, Any], rng: np.random.Generator, check):
        self.n_centers, self.k, self.rng, self.check = n_centers, hp["k"], rng, check
        self.feature_dim, self.requested = hp["feature_dim"], n_centers
        self.init, self.dense = hp["init_method"], bool(hp["force_dense"])
        half_life = hp["half_life_time_size"]
        self.decay = 0.5 ** (1.0 / half_life) if half_life > 0 else 1.0
        self.centers: np.ndarray | None = None  # float64 master copy
        self.counts: np.ndarray | None = None
        self.pending: list = []
        self.rows, self.rows_last_epoch = 0, 0

    def train_batch(self, batch: Batch) -> None:
        self.check(batch)
        features = batch.features.toarray() if self.dense and sp.issparse(batch.features) else batch.features
        self.rows += features.shape[0]
        if self.centers is None:  # seeding waits for K rows (the first batch unless it is smaller)
            self.pending.append(features)
            if sum(p.shape[0] for p in self.pending) < self.n_centers:
                return None
            features = self._seed_from_pending()
        self._update(features)
        return None

    def _seed_from_pending(self):
        sample = sp.vstack(self.pending, format="csr") if any(sp.issparse(p) for p in self.pending) \
            else np.concatenate(self.pending)
        self.pending = []
        rows = sample.shape[0]
        if rows < self.k:
            raise DataFormatError(f"kmeans: the train channel holds {rows} rows, fewer than k={self.k}",
                                  channel="train")
        self.n_centers = min(self.n_centers, rows)
        points = sample.toarray() if sp.issparse(sample) else sample
        self.centers = _seed(points, np.ones(rows), self.n_centers, self.init, self.rng).astype(np.float64)
        self.counts = np.zeros(self.n_centers)
        return sample

    def _update(self, features) -> None:
        """Every centre moves to the running (decayed) mean of the points it has received."""
        centers32 = self.centers.astype(np.float32)
        labels, _ = _nearest(features, centers32, _squared_norms(centers32))
        received = np.bincount(labels, minlength=self.n_centers).astype(np.float64)
        sums = _cluster_sums(features, labels, self.n_centers)
        self.counts *= self.decay ** features.shape[0]
        total = self.counts + received
        moved = received > 0
        # c <- c + (sum - n c) / (old + n): weight p = new / (old + new) on the new points' mean
        self.centers[moved] += (sums[moved] - received[moved, None] * self.centers[moved]) / total[moved, None]
        self.counts = total

    def end_epoch(self, epoch: int) -> dict[str, float]:
        if self.centers is None and self.pending:  # fewer than K rows in all: seed from all of them
            self._update(self._seed_from_pending())
        self.rows_last_epoch, self.rows = self.rows, 0
        return {}

    def state(self) -> dict[str, np.ndarray]:
        if self.centers is None:
            return {}
        return {"centers": self.centers, "counts": self.counts, "rows": np.asarray(self.rows_last_epoch),
                "plan": np.asarray([self.requested, self.k, self.feature_dim]),
                "rng": np.frombuffer(_rng_bytes(self.rng), dtype=np.uint8)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        if "centers" not in state:
            return
        plan = [int(v) for v in state.get("plan", [-1, -1, -1])]
        if plan != [self.requested, self.k, self.feature_dim]:
            raise ArtifactError(f"kmeans: the checkpoint is of a job streaming {plan[0]} centres for k={plan[1]} "
                                f"over {plan[2]} features; this job streams {self.requested} for k={self.k} over "
                                f"{self.feature_dim}: clear the checkpoint folder of the other job")
        self.centers, self.counts = state["centers"].copy(), state["counts"].copy()
        self.n_centers, self.rows_last_epoch = len(self.centers), int(state["rows"])
        self.rng.bit_generator.state = _rng_state(bytes(state["rng"]))


def _rng_bytes(rng: np.random.Generator) -> bytes:
    return json.dumps(rng.bit_generator.state).encode()


def _rng_state(data: bytes) -> dict:
    return json.loads(data.decode())
