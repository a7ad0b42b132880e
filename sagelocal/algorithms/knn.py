"""KNN: SageMaker's k-nearest-neighbours classifier and regressor (``knn`` image, ``sagemaker.KNN``).

Training builds a search index, in SageMaker's three steps (kNN_how-it-works.md):

1. Sampling: one streaming pass keeps a uniform sample of ``sample_size`` labelled rows by reservoir
   sampling (Vitter's algorithm R, vectorised per mini-batch), so the data never has to fit in memory.
2. Dimension reduction (optional), applied to each mini-batch before sampling and stored with the model
   so queries go through the same transform: ``sign`` multiplies by a random +-1/sqrt(t) matrix;
   ``fjlt`` is a subsampled randomized Hadamard transform (random signs, a fast Walsh-Hadamard
   transform over the next power of two, t random coordinates, scaled by 1/sqrt(t)).
3. A faiss index: ``faiss.Flat`` (exact), ``faiss.IVFFlat`` or ``faiss.IVFPQ`` with
   ``faiss_index_ivf_nlists`` lists ("auto": sqrt of the number of sampled rows) and
   ``faiss_index_pq_m`` sub-quantizers. When m does not divide the dimension, the dimension is raised to
   the next multiple of m: rows are zero-padded (no reduction) or ``dimension_reduction_target`` is raised.

Prediction asks the index for the k nearest sampled rows: ``classifier`` takes the most frequent
neighbour label, ``regressor`` their mean. ``k`` and ``predictor_type`` are read from the model's
metadata (SageMaker's ``model_algo-1.json``; here ``model.json``), so editing them there changes
predictions without retraining. The index is stored with faiss's own writer (``faiss.serialize_index``
bytes in ``model.npz``), the labels as float32.

Decisions where SageMaker does not say (one line each in the code as well):

- Vote ties go to the smallest label, as in scikit-learn's ``KNeighborsClassifier``.
- ``distances`` in verbose responses are faiss's own values, nearest first: squared Euclidean for L2,
  inner products (largest first) for INNER_PRODUCT, cosine similarities for COSINE (rows normalised,
  the metadata's ``normalize`` flag, then an inner-product index).
- ``faiss_index_ivf_nlists="auto"`` is round(sqrt(n)) over the rows actually sampled (at most
  ``sample_size``). Without ``faiss_index_pq_m``, IVFPQ uses the smallest allowed m with at most
  4 dimensions per sub-vector (96 at most). PQ codes have 8 bits, fewer when fewer than 256 rows are sampled.
- The IVF search visits ``nprobe`` lists, a sagelocal option ("auto": ceil(sqrt(nlists))).
- ``fit`` takes ``sample_size`` from in-memory data when it is not given (SageMaker requires it).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..base.batch import Batch
from ..base.errors import ArtifactError, DataFormatError, HyperparameterError, MissingDependencyError
from ..base.estimator import Estimator
from ..base.hyperparameters import REQUIRED, Hyperparameter, HyperparameterTable, parse_bool
from ..base.registry import register
from ..base.training import Metric

logger = logging.getLogger("sagelocal")

PQ_M_CHOICES = (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96)

HYPERPARAMETERS = HyperparameterTable("knn", [
    Hyperparameter("feature_dim", "int", REQUIRED, range=(1, None),
                   doc="Input dimension; filled from the data by fit() when not given."),
    Hyperparameter("k", "int", REQUIRED, range=(1, None), tunable=True, tuning_range=(1, 1024),
                   doc="Neighbours consulted per query."),
    Hyperparameter("predictor_type", "categorical", REQUIRED, choices=("classifier", "regressor"),
                   doc="classifier: majority label; regressor: mean label."),
    Hyperparameter("sample_size", "int", REQUIRED, range=(1, None), tunable=True, tuning_range=(256, 20000000),
                   doc="Training rows sampled into the index."),
    Hyperparameter("dimension_reduction_target", "int", None, range=(1, None),
                   required_when=("dimension_reduction_type is set",
                                  lambda v: v["dimension_reduction_type"] is not None),
                   doc="Dimension after the projection (< feature_dim)."),
    Hyperparameter("dimension_reduction_type", "categorical", None, choices=("sign", "fjlt"),
                   doc="Random projection: sign matrix or fast Johnson-Lindenstrauss transform."),
    Hyperparameter("faiss_index_ivf_nlists", "int", "auto", range=(1, None), auto=True,
                   doc="Inverted lists of the IVF indexes; auto: sqrt(sampled rows)."),
    Hyperparameter("faiss_index_pq_m", "int", None, choices=PQ_M_CHOICES,
                   doc="Product-quantizer sub-vectors of faiss.IVFPQ."),
    Hyperparameter("index_metric", "categorical", "L2", choices=("L2", "INNER_PRODUCT", "COSINE"),
                   doc="Distance of the neighbour search."),
    Hyperparameter("index_type", "categorical", "faiss.Flat", choices=("faiss.Flat", "faiss.IVFFlat", "faiss.IVFPQ"),
                   doc="faiss index: exact, inverted file, inverted file with product quantization."),
    Hyperparameter("mini_batch_size", "int", 5000, range=(1, None), doc="Rows per mini-batch read."),
])

#: Version written into the metadata, as SageMaker's model_algo-1.json carries one.
META_VERSION = "1.0"
#: Query rows per faiss search call, bounding the distance and label buffers.
_SEARCH_CHUNK = 65536


def _faiss():
    """The faiss module, imported on first use (it is the ``knn`` extra, not a core dependency)."""
    try:
        import faiss
    except ImportError:
        raise MissingDependencyError("knn needs faiss, which is not installed: pip install sagelocal[knn] "
                                     "(or pip install faiss-cpu)") from None
    return faiss


@register
class KNN(Estimator):
    """k-nearest-neighbours classifier or regressor over a faiss index, with SageMaker's hyperparameters.

    Attributes
    ----------
    k_, predictor_type_ : the values used at inference (from the model metadata)
    sample_labels_ : ndarray (n_indexed,) float32, labels of the indexed rows
    n_indexed_ : int, rows in the index
    n_samples_seen_ : int, training rows streamed
    index_dim_ : int, dimension of the indexed vectors (after reduction and padding)
    n_features_in_ : int
    """

    algorithm = "knn"
    sdk_class = "KNN"
    hyperparameters = HYPERPARAMETERS
    channels = {"train": True, "test": False}
    metrics = (Metric("test:accuracy", "Maximize"), Metric("test:mse"))
    response_key = "predictions"
    request_content_types = ("text/csv", "application/json", "application/jsonlines",
                             "application/x-recordio-protobuf")
    # sagelocal option: SageMaker does not say how many inverted lists its IVF search visits.
    options = (Hyperparameter("nprobe", "int", "auto", range=(1, None), auto=True,
                              doc="Inverted lists visited per query (IVF indexes); auto: ceil(sqrt(nlists))."),)

    @classmethod
    def _check_hyperparameters(cls, values):
        problems = []
        target, dim = values["dimension_reduction_target"], values["feature_dim"]
        # feature_dim is None before fit takes it from the data (the factory): this rule then waits for fit
        if values["dimension_reduction_type"] is not None and None not in (target, dim) and target >= dim:
            problems.append(("dimension_reduction_target",
                             f"hyperparameter 'dimension_reduction_target' must be < feature_dim ({dim}); "
                             f"got {target}"))
        if values["index_type"] == "faiss.IVFPQ" and values["index_metric"] != "L2":
            problems.append(("index_metric", f"hyperparameter 'index_metric' must be 'L2' with index_type "
                                             f"'faiss.IVFPQ'; got {values['index_metric']!r}"))
        return problems

    def _fill_from_data(self, values, train):
        values = super()._fill_from_data(values, train)
        if values["sample_size"] is None:  # SageMaker requires it; in-memory data can give all rows
            values["sample_size"] = getattr(train, "n_rows", None)
        return values

    # ----------------------------------------------------------------------------------- fit
    def _fit(self, train, validation, test, hp):
        faiss = _faiss()
        seed = self._options["random_state"]
        transform = _Transform.create(hp, seed)
        sampler = _Reservoir(hp["sample_size"], transform, np.random.default_rng(seed), self._check_batch)
        self._training_loop(epochs=1, batch_size=hp["mini_batch_size"], checkpoint_dir=None).run(train, sampler)
        vectors, labels = sampler.sample()
        if len(labels) == 0:
            raise DataFormatError("knn: the train channel holds no rows", channel="train")
        if hp["k"] > len(labels):
            raise HyperparameterError("knn", [("k", f"hyperparameter 'k' must be <= the number of sampled "
                                                   f"rows ({len(labels)}); got {hp['k']}")])
        self._transform = transform
        self._index = _build_index(faiss, vectors, hp, seed)
        self._set_search_options()
        self.sample_labels_ = labels
        self.k_, self.predictor_type_ = hp["k"], hp["predictor_type"]
        self.n_indexed_, self.n_samples_seen_ = len(labels), sampler.seen
        self.index_dim_ = int(vectors.shape[1])
        self.n_features_in_ = hp["feature_dim"]
        if test is not None:
            self._evaluate(test, hp)

    def _set_search_options(self) -> None:
        nlist = getattr(self._faiss_ivf(), "nlist", None)
        if nlist is not None:
            nprobe = self._options["nprobe"] if hasattr(self, "_options") else self.nprobe
            nprobe = math.ceil(math.sqrt(nlist)) if nprobe == "auto" else int(nprobe)
            self._faiss_ivf().nprobe = min(nprobe, nlist)

    def _faiss_ivf(self):
        faiss = _faiss()
        try:
            return faiss.extract_index_ivf(self._index)
        except RuntimeError:  # not an IVF index
            return None

    def _evaluate(self, test, hp) -> None:
        """test:accuracy (classifier) or test:mse (regressor), with SageMaker's per-batch score lines."""
        name = "accuracy" if self.predictor_type_ == "classifier" else "mse"
        total, rows = 0.0, 0
        for batch in test.batches(hp["mini_batch_size"]):
            self._check_batch(batch, "test")
            truth = _label_column(batch, "test")
            predicted = self._predict(batch.features)
            part = (np.sum(predicted == truth) if name == "accuracy"
                    else np.sum((predicted.astype(np.float64) - truth) ** 2))
            logger.info("#test_score (%s) : ('%s', %s)", self.runtime.host, name, part / max(len(batch), 1))
            total, rows = total + float(part), rows + len(batch)
        if rows == 0:
            raise DataFormatError("knn: the test channel holds no rows", channel="test")
        self._reporter.report(f"test:{name}", total / rows, "Maximize" if name == "accuracy" else "Minimize")

    # ------------------------------------------------------------------------------- predict
    def kneighbors(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Distances (faiss's values, nearest first) and positions in the indexed sample of the k_
        nearest neighbours; missing neighbours (possible with IVF) are -1."""
        return self._search(self._features(X))

    def _search(self, features) -> tuple[np.ndarray, np.ndarray]:
        n = features.shape[0]
        distances = np.empty((n, self.k_), dtype=np.float32)
        positions = np.empty((n, self.k_), dtype=np.int64)
        for start in range(0, n, _SEARCH_CHUNK):
            block = self._transform.apply(features[start:start + _SEARCH_CHUNK])
            distances[start:start + len(block)], positions[start:start + len(block)] = \
                self._index.search(block, self.k_)
        return distances, positions

    def _predict(self, features) -> np.ndarray:
        return self._vote(self._search(features)[1])

    def _vote(self, positions: np.ndarray) -> np.ndarray:
        labels = self.sample_labels_[positions]
        found = positions >= 0
        if self.predictor_type_ == "regressor":
            counts = found.sum(axis=1)
            sums = np.where(found, labels, 0).sum(axis=1, dtype=np.float64)
            return sums / np.maximum(counts, 1)
        return _majority(labels, found)

    def _records(self, features, verbose=False) -> list[dict[str, Any]]:
        verbose = _as_flag(verbose, "verbose")
        distances, positions = self._search(features)
        predicted = self._vote(positions).tolist()
        if not verbose:
            return [{"predicted_label": p} for p in predicted]
        labels = self.sample_labels_[positions]
        found = positions >= 0
        if found.all():
            return [{"predicted_label": p, "distances": d, "labels": lab}
                    for p, d, lab in zip(predicted, distances.tolist(), labels.tolist())]
        return [{"predicted_label": p, "distances": d[m].tolist(), "labels": lab[m].tolist()}
                for p, d, lab, m in zip(predicted, distances, labels, found)]

    # ------------------------------------------------------------------------------ artifacts
    def _get_state(self):
        faiss = _faiss()
        arrays = {"index": faiss.serialize_index(self._index), "labels": self.sample_labels_,
                  **self._transform.arrays()}
        meta = {"k": self.k_, "predictor_type": self.predictor_type_,
                "dimension_reduction": self._transform.describe(), "normalize": self._transform.normalize,
                "version": META_VERSION, "input_dim": self._transform.input_dim,
                "padded_dim": self._transform.output_dim, "n_samples_seen": self.n_samples_seen_,
                "metrics": self.metrics_}
        return arrays, meta

    def _set_state(self, arrays, meta):
        faiss = _faiss()
        k, predictor_type = meta.get("k"), meta.get("predictor_type")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ArtifactError(f"knn model metadata: 'k' must be an integer >= 1; got {k!r}")
        if predictor_type not in ("classifier", "regressor"):
            raise ArtifactError(f"knn model metadata: 'predictor_type' must be 'classifier' or 'regressor'; "
                                f"got {predictor_type!r}")
        try:
            self._index = faiss.deserialize_index(np.ascontiguousarray(arrays["index"], dtype=np.uint8))
        except (KeyError, RuntimeError) as exc:
            raise ArtifactError(f"knn model: cannot read the faiss index: {exc}") from None
        self._transform = _Transform.restore(meta, arrays)
        self._set_search_options()
        self.sample_labels_ = np.asarray(arrays["labels"], dtype=np.float32)
        self.k_, self.predictor_type_ = k, predictor_type
        self.n_indexed_, self.n_samples_seen_ = int(self._index.ntotal), int(meta.get("n_samples_seen", 0))
        self.index_dim_ = int(self._index.d)
        self.n_features_in_ = self._transform.input_dim


# ------------------------------------------------------------------------------------ helpers
def _as_flag(value, name: str) -> bool:
    """A request option given as a bool or as an Accept-parameter string (``verbose=true``)."""
    flag = parse_bool(value.strip() if isinstance(value, str) else value)
    if flag is None:
        raise DataFormatError(f"knn: option '{name}' must be true or false; got {value!r}")
    return flag


def _label_column(batch: Batch, channel: str) -> np.ndarray:
    labels = batch.labels
    if labels is None:
        raise DataFormatError("knn needs a label on every row (CSV: label_size=1; protobuf: label['values'])",
                              channel=channel)
    if labels.ndim > 1:
        if labels.shape[1] != 1:
            raise DataFormatError(f"knn takes one label per row; got {labels.shape[1]}", channel=channel)
        labels = labels[:, 0]
    return np.asarray(labels, dtype=np.float32)


def _majority(labels: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Most frequent label per row among the found neighbours; ties go to the smallest label
    (scikit-learn's rule; SageMaker does not document its own)."""
    values = np.where(found, labels, np.inf)  # missing neighbours sort last and are never counted
    ordered = np.sort(values, axis=1)
    n, k = ordered.shape
    columns = np.arange(k)
    starts = np.ones((n, k), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    run_start = np.maximum.accumulate(np.where(starts, columns, 0), axis=1)
    run_length = columns - run_start + 1
    run_length[~np.isfinite(ordered)] = 0
    best = np.argmax(run_length == run_length.max(axis=1, keepdims=True), axis=1)  # first = smallest label
    return ordered[np.arange(n), best].astype(np.float32)


def _auto_pq_m(dim: int) -> int:
    """Smallest allowed m leaving at most 4 dimensions per sub-vector (96 at most)."""
    return next((m for m in PQ_M_CHOICES if dim / m <= 4), PQ_M_CHOICES[-1])


def _build_index(faiss, vectors: np.ndarray, hp: dict[str, Any], seed: int):
    """The faiss index of ``vectors`` (already transformed and padded) for ``hp``."""
    n, dim = vectors.shape
    metric = faiss.METRIC_L2 if hp["index_metric"] == "L2" else faiss.METRIC_INNER_PRODUCT
    kind = hp["index_type"]
    if kind == "faiss.Flat":
        index = faiss.IndexFlat(dim, metric)
        index.add(vectors)
        return index
    nlist = hp["faiss_index_ivf_nlists"]
    # "auto" is sqrt(sample_size) in the guide; the rows actually sampled are used, as they can be fewer.
    nlist = max(1, round(math.sqrt(n))) if nlist == "auto" else nlist
    if nlist > n:
        raise HyperparameterError("knn", [("faiss_index_ivf_nlists", f"hyperparameter 'faiss_index_ivf_nlists' "
                                                                     f"must be <= the number of sampled rows ({n}); "
                                                                     f"got {nlist}")])
    if kind == "faiss.IVFFlat":
        index = faiss.index_factory(dim, f"IVF{nlist},Flat", metric)
    else:
        m = hp["faiss_index_pq_m"] or _auto_pq_m(dim)
        bits = min(8, int(math.log2(n)))
        if bits < 1:
            raise DataFormatError("knn: faiss.IVFPQ needs at least 2 sampled rows", channel="train")
        # "np": no polysemous training, which only reorders codes for Hamming filtering (unused here)
        # and costs far more than the PQ training itself
        index = faiss.index_factory(dim, f"IVF{nlist},PQ{m}x{bits}np", metric)
        faiss.downcast_index(faiss.extract_index_ivf(index)).pq.cp.seed = seed
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed = seed
    index.train(vectors)
    index.add(vectors)
    return index


class _Transform:
    """Query/training transform: optional projection, zero padding to the index dimension, normalisation."""

    def __init__(self, input_dim: int, output_dim: int, kind: str | None = None, target: int | None = None,
                 seed: int = 0, normalize: bool = False, arrays: dict[str, np.ndarray] | None = None):
        self.input_dim, self.output_dim, self.kind, self.target = input_dim, output_dim, kind, target
        self.seed, self.normalize = seed, normalize
        self._arrays = arrays or {}

    @classmethod
    def create(cls, hp: dict[str, Any], seed: int) -> _Transform:
        """The transform ``hp`` asks for, with its random matrices drawn from ``seed``."""
        dim, kind = hp["feature_dim"], hp["dimension_reduction_type"]
        m = None
        if hp["index_type"] == "faiss.IVFPQ":
            m = hp["faiss_index_pq_m"] or _auto_pq_m(hp["dimension_reduction_target"] if kind else dim)
        normalize = hp["index_metric"] == "COSINE"
        if kind is None:  # zero padding to a multiple of m leaves L2 and inner products unchanged
            return cls(dim, _round_up(dim, m), normalize=normalize)
        target = _round_up(hp["dimension_reduction_target"], m)  # SageMaker raises the target instead
        rng = np.random.default_rng(seed)
        if kind == "sign":
            matrix = np.where(rng.random((dim, target)) < 0.5, -1.0, 1.0) / math.sqrt(target)
            arrays = {"projection": matrix.astype(np.float32)}
        else:
            padded = 1 << max(dim - 1, target - 1, 0).bit_length()
            arrays = {"fjlt_signs": np.where(rng.random(dim) < 0.5, -1.0, 1.0).astype(np.float32),
                      "fjlt_rows": np.sort(rng.choice(padded, target, replace=False)).astype(np.int64),
                      "fjlt_padded": np.asarray(padded, dtype=np.int64)}
        return cls(dim, target, kind, target, seed, normalize, arrays)

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> _Transform:
        reduction = meta.get("dimension_reduction") or {}
        kept = {k: v for k, v in arrays.items() if k.startswith(("projection", "fjlt_"))}
        return cls(int(meta["input_dim"]), int(meta["padded_dim"]), reduction.get("type"),
                   reduction.get("target_dim"), int(reduction.get("seed", 0)), bool(meta.get("normalize")), kept)

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(self._arrays)

    def describe(self) -> dict[str, Any] | None:
        if self.kind is None:
            return None
        return {"type": self.kind, "seed": self.seed, "target_dim": self.target, "input_dim": self.input_dim}

    def apply(self, features) -> np.ndarray:
        """Rows as the index sees them: float32, C-contiguous, output_dim wide."""
        if self.kind == "sign":
            out = np.asarray(features @ self._arrays["projection"], dtype=np.float32)
        elif self.kind == "fjlt":
            out = self._fjlt(features)
        else:
            out = features.toarray() if sp.issparse(features) else features
            if out.shape[1] < self.output_dim:
                out = np.pad(out, ((0, 0), (0, self.output_dim - out.shape[1])))
        out = np.ascontiguousarray(out, dtype=np.float32)
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.where(norms > 0, norms, 1.0)
        return out

    def _fjlt(self, features) -> np.ndarray:
        dense = features.toarray() if sp.issparse(features) else np.asarray(features)
        padded = int(self._arrays["fjlt_padded"])
        signed = np.zeros((dense.shape[0], padded), dtype=np.float32)
        signed[:, :dense.shape[1]] = dense * self._arrays["fjlt_signs"]
        return _walsh_hadamard(signed)[:, self._arrays["fjlt_rows"]] / np.float32(math.sqrt(self.target))


def _round_up(value: int, multiple: int | None) -> int:
    return value if not multiple else -(-value // multiple) * multiple


def _walsh_hadamard(rows: np.ndarray) -> np.ndarray:
    """Unnormalised fast Walsh-Hadamard transform of each row (length a power of two), O(d log d)."""
    n, d = rows.shape
    out = rows.copy()
    half = 1
    while half < d:
        view = out.reshape(n, d // (2 * half), 2, half)
        top, bottom = view[:, :, 0, :].copy(), view[:, :, 1, :]
        view[:, :, 0, :] += bottom
        view[:, :, 1, :] = top - bottom
        half *= 2
    return out


class _Reservoir:
    """Uniform sample of ``size`` transformed rows and their labels, in one pass (algorithm R)."""

    def __init__(self, size: int, transform: _Transform, rng: np.random.Generator, check):
        self.size, self.transform, self.rng, self.check = size, transform, rng, check
        self.parts: list[tuple[np.ndarray, np.ndarray]] = []
        self.vectors: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.seen = 0

    def train_batch(self, batch: Batch) -> None:
        self.check(batch)
        labels = _label_column(batch, "train")
        vectors = self.transform.apply(batch.features)
        fill = min(len(labels), self.size - self.seen) if self.seen < self.size else 0
        if fill:
            self.parts.append((vectors[:fill], labels[:fill]))
        if self.seen + fill >= self.size and self.vectors is None:
            self._consolidate()
        rest = len(labels) - fill
        if rest:
            # row i (0-based) replaces slot j ~ U{0..i} when j < size; later rows win a shared slot
            positions = np.arange(self.seen + fill, self.seen + len(labels), dtype=np.float64)
            slots = np.floor(self.rng.random(rest) * (positions + 1)).astype(np.int64)
            accepted = np.flatnonzero(slots < self.size)
            slots, rows = slots[accepted][::-1], accepted[::-1] + fill
            slots, first = np.unique(slots, return_index=True)
            self.vectors[slots], self.labels[slots] = vectors[rows[first]], labels[rows[first]]
        self.seen += len(labels)

    def _consolidate(self) -> None:
        if self.parts:
            self.vectors = np.concatenate([v for v, _ in self.parts])
            self.labels = np.concatenate([lab for _, lab in self.parts])
        else:
            self.vectors = np.empty((0, self.transform.output_dim), dtype=np.float32)
            self.labels = np.empty(0, dtype=np.float32)
        self.parts = []

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        if self.vectors is None:
            self._consolidate()
        return np.ascontiguousarray(self.vectors), np.ascontiguousarray(self.labels)

    def end_epoch(self, epoch: int) -> dict[str, float]:
        return {}

    def state(self) -> dict[str, np.ndarray]:
        vectors, labels = self.sample()
        return {"vectors": vectors, "labels": labels, "seen": np.asarray(self.seen)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.vectors, self.labels, self.seen = state["vectors"], state["labels"], int(state["seen"])
