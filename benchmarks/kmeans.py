"""K-Means benchmark: sagelocal's KMeans (SageMaker's method and defaults) against scikit-learn.

Same data, same run: planted clusters (``--rows`` x ``--dim`` float32, ``--k`` centres drawn uniformly in
[-10, 10]^dim, Gaussian clusters of standard deviation ``--cluster-std``; 8 makes neighbouring clusters
overlap). Anchors: scikit-learn's ``KMeans(n_init=10)`` (Lloyd, k-means++ restarts) and
``MiniBatchKMeans``. For each we time ``fit`` (best of ``--repeats``) and compute, with one float64
function, the inertia (sum of squared distances to the closest centre) on the training rows and the
adjusted Rand index against the planted labels. Ratio = ours / KMeans time and inertia (goal: time
<= 1.0x at inertia <= 1.02x).

    python benchmarks/kmeans.py                     # 500,000 x 50, k = 100; writes results/kmeans.json
    python benchmarks/kmeans.py --rows 100000       # scaled down (scikit-learn's n_init=10 takes minutes)
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _common import RESULTS, best_time, blas_info, command_line, machine_info, save_results


def make_data(rows: int, dim: int, k: int, std: float, seed: int = 0):
    from sklearn.datasets import make_blobs

    X, y = make_blobs(rows, n_features=dim, centers=k, cluster_std=std, center_box=(-10.0, 10.0),
                      random_state=seed)
    return X.astype(np.float32), y


def inertia(X: np.ndarray, centers: np.ndarray) -> tuple[float, np.ndarray]:
    """Sum of squared distances to the closest centre (float64) and the labels, computed the same way
    for every model."""
    centers = np.asarray(centers, dtype=np.float64)
    labels = np.empty(len(X), dtype=np.int64)
    total = 0.0
    norms = np.einsum("ij,ij->i", centers, centers)
    for start in range(0, len(X), 20000):
        block = X[start:start + 20000].astype(np.float64)
        squared = np.einsum("ij,ij->i", block, block)[:, None] - 2 * block @ centers.T + norms
        labels[start:start + len(block)] = squared.argmin(axis=1)
        total += float(np.clip(squared.min(axis=1), 0, None).sum())
    return total, labels


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--cluster-std", type=float, default=8.0)
    parser.add_argument("--mini-batch-size", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip-kmeans", action="store_true", help="leave out scikit-learn's KMeans(n_init=10)")
    parser.add_argument("--output", default=str(RESULTS / "kmeans.json"))
    args = parser.parse_args(argv)

    import sklearn
    from sklearn.cluster import KMeans as SklearnKMeans
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import adjusted_rand_score

    import sagelocal

    X, truth = make_data(args.rows, args.dim, args.k, args.cluster_std)
    k, batch = args.k, args.mini_batch_size
    models = {
        "sagelocal (SageMaker defaults: random init, 1 epoch)":
            lambda: sagelocal.KMeans(k=k, mini_batch_size=batch).fit(X).cluster_centers_,
        "sagelocal (kmeans++ init, 3 epochs)":
            lambda: sagelocal.KMeans(k=k, mini_batch_size=batch, init_method="kmeans++", epochs=3)
            .fit(X).cluster_centers_,
        "sklearn MiniBatchKMeans": lambda: MiniBatchKMeans(k, batch_size=batch, random_state=0).fit(X).cluster_centers_,
    }
    if not args.skip_kmeans:
        models["sklearn KMeans(n_init=10)"] = \
            lambda: SklearnKMeans(k, n_init=10, random_state=0).fit(X).cluster_centers_
    rows = []
    for name, fit in models.items():
        seconds, centers = best_time(fit, args.repeats)
        total, labels = inertia(X, centers)
        rows.append({"model": name, "seconds": round(seconds, 3), "inertia": total,
                     "adjusted_rand_index": round(float(adjusted_rand_score(truth, labels)), 5)})
        print(f"{name:>55}: {seconds:8.2f} s, inertia {total:.6g}, ARI {rows[-1]['adjusted_rand_index']:.4f}",
              flush=True)
    anchor = next((r for r in rows if r["model"].startswith("sklearn KMeans")), None)
    if anchor is not None:
        for row in rows:
            row["time_ratio_vs_kmeans"] = round(row["seconds"] / anchor["seconds"], 4)
            row["inertia_ratio_vs_kmeans"] = round(row["inertia"] / anchor["inertia"], 5)
            print(f"{row['model']:>55}: time ratio {row['time_ratio_vs_kmeans']:.3f}, inertia ratio "
                  f"{row['inertia_ratio_vs_kmeans']:.4f}")
    report = {
        "benchmark": "kmeans", "command": command_line(__file__, argv),
        "data": {"rows": args.rows, "dim": args.dim, "k": k, "cluster_std": args.cluster_std, "dtype": "float32",
                 "generator": "sklearn make_blobs, centres uniform in [-10, 10]^dim, random_state 0"},
        "mini_batch_size": batch, "repeats": args.repeats, "results": rows,
        "note": "2 shared cores; other jobs ran at the same time, so timings carry contention noise",
        "machine": machine_info(sklearn=sklearn.__version__, sagelocal=sagelocal.__version__, blas=blas_info()),
    }
    save_results(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
