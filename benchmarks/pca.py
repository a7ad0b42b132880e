"""PCA benchmark: sagelocal's regular and randomized modes against scikit-learn's PCA.

Same data, same run: 200,000 x 200 float32 rows with a known spectrum (10 strong directions with
geometrically decaying scales over an isotropic noise floor, plus an offset). For each pair we time
``fit`` (best of ``--repeats``) and measure accuracy against the known truth: the largest principal
angle between the fitted and the planted 10-dimensional subspace, and the relative error of the
explained variances against an exact float64 eigen-decomposition. Ratio = ours / scikit-learn time
(goal <= 1.0 at equal accuracy).

    python benchmarks/pca.py                      # writes benchmarks/results/pca.json
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _common import RESULTS, best_time, blas_info, command_line, machine_info, save_results
from scipy.linalg import subspace_angles


def make_data(n: int, d: int, k: int, seed: int = 0):
    """Rows = planted rank-k signal (scales 20 * 0.7^i) + noise 0.5 + offset; returns X and the basis."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((d, k)))[0]  # d x k, orthonormal
    scales = 20.0 * 0.7 ** np.arange(k)
    X = (rng.standard_normal((n, k)).astype(np.float32) * scales.astype(np.float32)) @ basis.T.astype(np.float32)
    X += 0.5 * rng.standard_normal((n, d), dtype=np.float32)
    X += (5.0 * rng.standard_normal(d)).astype(np.float32)
    return X, basis


def exact_variances(X: np.ndarray, k: int) -> np.ndarray:
    centred = X.astype(np.float64) - X.mean(axis=0, dtype=np.float64)
    values = np.linalg.eigvalsh(centred.T @ centred / (len(X) - 1))
    return values[::-1][:k]


def accuracy(model, basis, variances):
    angle = float(subspace_angles(np.asarray(model.components_, np.float64).T, basis).max())
    error = float(np.max(np.abs(np.asarray(model.explained_variance_) / variances - 1)))
    return {"max_principal_angle_rad": angle, "explained_variance_max_rel_error": error}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=200)
    parser.add_argument("--components", type=int, default=10)
    parser.add_argument("--mini-batch-size", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(RESULTS / "pca.json"))
    args = parser.parse_args(argv)

    import sklearn
    from sklearn.decomposition import PCA as SklearnPCA

    import sagelocal

    X, basis = make_data(args.rows, args.dim, args.components)
    variances = exact_variances(X, args.components)
    k, batch = args.components, args.mini_batch_size
    pairs = {
        "regular": (lambda: sagelocal.PCA(num_components=k, mini_batch_size=batch).fit(X),
                    lambda: SklearnPCA(k, svd_solver="full").fit(X), "sklearn full"),
        "randomized": (lambda: sagelocal.PCA(num_components=k, mini_batch_size=batch,
                                             algorithm_mode="randomized").fit(X),
                       lambda: SklearnPCA(k, svd_solver="randomized", random_state=0).fit(X),
                       "sklearn randomized"),
    }
    results = []
    for mode, (ours, theirs, anchor) in pairs.items():
        ours_time, ours_model = best_time(ours, args.repeats)
        their_time, their_model = best_time(theirs, args.repeats)
        row = {"mode": mode, "anchor": anchor, "sagelocal_s": round(ours_time, 4),
               "anchor_s": round(their_time, 4), "ratio": round(ours_time / their_time, 4),
               "sagelocal_accuracy": accuracy(ours_model, basis, variances),
               "anchor_accuracy": accuracy(their_model, basis, variances)}
        results.append(row)
        print(f"{mode:>10}: sagelocal {ours_time:.3f} s, {anchor} {their_time:.3f} s, ratio "
              f"{row['ratio']:.3f}; angle {row['sagelocal_accuracy']['max_principal_angle_rad']:.2e} vs "
              f"{row['anchor_accuracy']['max_principal_angle_rad']:.2e}; variance error "
              f"{row['sagelocal_accuracy']['explained_variance_max_rel_error']:.1e} vs "
              f"{row['anchor_accuracy']['explained_variance_max_rel_error']:.1e}")
    report = {
        "benchmark": "pca", "command": command_line(__file__, argv),
        "data": {"rows": args.rows, "dim": args.dim, "components": k, "dtype": "float32",
                 "spectrum": "20 * 0.7^i for i < components, noise sd 0.5, random offset"},
        "mini_batch_size": batch, "repeats": args.repeats, "results": results,
        "machine": machine_info(sklearn=sklearn.__version__, sagelocal=sagelocal.__version__,
                                blas=blas_info(("internal_api", "num_threads", "architecture", "version"))),
    }
    save_results(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
