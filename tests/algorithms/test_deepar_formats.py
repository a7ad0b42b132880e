"""DeepAR's data and inference formats: JSON lines / gzip / Parquet channels, record checks, the
spec's request and response examples (in process, over HTTP and as a batch transform), dynamic
features, the feature switches and the training container."""

from __future__ import annotations

import copy
import gzip
import json
import threading
import time

import numpy as np
import pytest

import sagelocal
from sagelocal import DataFormatError
from sagelocal.algorithms.deepar import DeepAR
from sagelocal.algorithms.deepar.data import parse_series, records_of
from sagelocal.serving.invocation import Invoker

# The developer guide's inference example (deepar-in-formats), verbatim.
REQUEST_EXAMPLE = {
    "instances": [
        {"start": "2009-11-01 00:00:00", "target": [4.0, 10.0, "NaN", 100.0, 113.0], "cat": [0, 1],
         "dynamic_feat": [[1.0, 1.1, 2.1, 0.5, 3.1, 4.1, 1.2, 5.0]]},
        {"start": "2012-01-30", "target": [1.0], "cat": [2, 1],
         "dynamic_feat": [[2.0, 3.1, 4.5, 1.5, 1.8, 3.2, 0.1, 3.0]]},
    ],
    "configuration": {"num_samples": 50, "output_types": ["mean", "quantiles", "samples"], "quantiles": ["0.5", "0.9"]},
}
RESPONSE_EXAMPLE = {
    "predictions": [
        {"quantiles": {"0.9": [1.0, 2.0], "0.5": [0.5, 1.0]}, "samples": [[0.4, 1.1], [0.6, 0.9]], "mean": [0.5, 1.0]}
    ]
}
HORIZON = 2  # the example's forecasts have two points


def daily_records(n=8, length=60, seed=0, dynamic=True, future=False):
    """Daily series with two cat features and a promotion indicator that lifts the target by 8."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        promo = (rng.random(length + (HORIZON if future else 0)) < 0.3).astype(float)
        season = 3 * np.sin(2 * np.pi * np.arange(length) / 7)
        target = 10 + i + season + 8 * promo[:length] + rng.normal(0, 0.3, length)
        record = {"start": "2009-10-01 00:00:00", "target": target.round(3).tolist(), "cat": [i % 3, i % 2]}
        if dynamic:
            record["dynamic_feat"] = [promo.tolist()]
        records.append(record)
    return records


@pytest.fixture(scope="module")
def model():
    return DeepAR(time_freq="D", context_length=7, prediction_length=HORIZON, epochs=10, num_cells=16,
                  mini_batch_size=32, learning_rate=0.01, num_batches_per_epoch=10).fit(daily_records())


def skeleton(value):
    """The shape of a JSON value: keys, list nesting and leaf types (numbers as float)."""
    if isinstance(value, dict):
        return {key: skeleton(item) for key, item in value.items()}
    if isinstance(value, list):
        return [skeleton(value[0])] if value else []
    return "number" if isinstance(value, (int, float)) else type(value).__name__


# ------------------------------------------------------------------------------ requests / responses
def test_spec_request_gets_a_response_shaped_like_the_spec_example(model):
    answer = Invoker(model).invoke(json.dumps(REQUEST_EXAMPLE).encode(), "application/json", "application/json")
    assert answer.status == 200 and answer.content_type == "application/json"
    body = json.loads(answer.body)
    assert skeleton(body) == skeleton(RESPONSE_EXAMPLE)
    assert len(body["predictions"]) == 2
    for prediction in body["predictions"]:
        assert set(prediction["quantiles"]) == {"0.5", "0.9"}
        assert len(prediction["samples"]) == 50 and all(len(s) == HORIZON for s in prediction["samples"])
        samples = np.array(prediction["samples"])
        np.testing.assert_allclose(prediction["mean"], samples.mean(axis=0))
        np.testing.assert_allclose(prediction["quantiles"]["0.9"], np.quantile(samples, 0.9, axis=0))
        assert np.all(np.array(prediction["quantiles"]["0.5"]) <= np.array(prediction["quantiles"]["0.9"]))


def test_only_requested_outputs_come_back_and_defaults_apply(model):
    request = copy.deepcopy(REQUEST_EXAMPLE)
    request["configuration"] = {"output_types": ["quantiles"], "quantiles": ["0.1", "0.25"]}
    (first, _) = model.predict_records(request["instances"], request["configuration"])
    assert list(first) == ["quantiles"] and list(first["quantiles"]) == ["0.1", "0.25"]
    (default, _) = model.predict_records(request["instances"])  # 100 samples, mean and quantiles 0.1 .. 0.9
    assert set(default) == {"mean", "quantiles"}
    assert list(default["quantiles"]) == ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]


def test_jsonlines_requests_answer_one_line_per_series(model, monkeypatch):
    monkeypatch.setenv("DEEPAR_INFERENCE_CONFIG", json.dumps({"num_samples": 20, "output_types": ["mean", "samples"]}))
    body = "".join(json.dumps(r) + "\n" for r in REQUEST_EXAMPLE["instances"]).encode()
    answer = Invoker(model).invoke(body, "application/jsonlines", "application/jsonlines")
    assert answer.status == 200 and answer.content_type == "application/jsonlines"
    lines = [json.loads(line) for line in answer.body.decode().splitlines()]
    assert len(lines) == 2 and all(list(line) == ["samples", "mean"] for line in lines)
    assert all(len(line["samples"]) == 20 for line in lines)


def test_batch_transform_over_jsonlines_keeps_line_order(model, tmp_path, monkeypatch):
    from sagelocal.serving.transform import transform

    monkeypatch.setenv("DEEPAR_INFERENCE_CONFIG", json.dumps({"num_samples": 10, "output_types": ["mean"]}))
    records = daily_records(n=5, seed=4, future=True)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "series.json").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = transform(model, tmp_path / "in", tmp_path / "out", content_type="application/jsonlines",
                       accept="application/jsonlines", split_type="Line", batch_strategy="SingleRecord",
                       assemble_with="Line")
    assert result.ok
    lines = [json.loads(line) for line in (tmp_path / "out" / "series.json.out").read_text().splitlines()]
    expected = [model.predict_records([r], {"num_samples": 10, "output_types": ["mean"]})[0] for r in records]
    assert lines == expected


@pytest.mark.parametrize("change, message", [
    (lambda r: r["instances"][0].update(cat=[5, 1]), "not seen in training"),
    (lambda r: r["instances"][0].pop("cat"), "cat"),
    (lambda r: r["instances"][1].update(dynamic_feat=[[1.0, 2.0]]), "len\\(target\\) \\+ prediction_length"),
    (lambda r: r["instances"][1].pop("dynamic_feat"), "dynamic_feat"),
    (lambda r: r["instances"][0].update(target="abc"), "target"),
    (lambda r: r["configuration"].update(quantiles=["1.5"]), "quantiles"),
    (lambda r: r["configuration"].update(output_types=["median"]), "output_types"),
    (lambda r: r["configuration"].update(num_samples=0), "num_samples"),
])
def test_bad_requests_are_answered_400_with_the_reason(model, change, message):
    request = copy.deepcopy(REQUEST_EXAMPLE)
    change(request)
    answer = Invoker(model).invoke(json.dumps(request).encode(), "application/json", "application/json")
    assert answer.status == 400
    assert __import__("re").search(message, answer.message)


def test_spec_example_over_http(model):
    uvicorn = pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    from sagelocal.serving import create_app
    from sagelocal.serving.server import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(model), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        response = httpx.post(f"http://127.0.0.1:{port}/invocations", content=json.dumps(REQUEST_EXAMPLE),
                              headers={"Content-Type": "application/json", "Accept": "application/json"}, timeout=30)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert response.status_code == 200
    assert skeleton(response.json()) == skeleton(RESPONSE_EXAMPLE)


# ------------------------------------------------------------------------------- dynamic features
def test_future_dynamic_features_drive_the_forecast(model):
    """What-if: the same history with and without a promotion over the forecast range."""
    base = daily_records(n=8, seed=9)[:4]
    with_promo = [{**r, "dynamic_feat": [r["dynamic_feat"][0] + [1.0] * HORIZON]} for r in base]
    without = [{**r, "dynamic_feat": [r["dynamic_feat"][0] + [0.0] * HORIZON]} for r in base]
    lift = model.predict(with_promo) - model.predict(without)
    assert lift.mean() > 4  # the data's lift is 8


def test_training_accepts_dynamic_feat_as_long_as_target_or_with_the_future():
    short = daily_records(seed=1)
    longer = [{**r, "dynamic_feat": [r["dynamic_feat"][0] + [1.0, 0.0]]} for r in short]
    hp = dict(time_freq="D", context_length=7, prediction_length=HORIZON, epochs=2, num_cells=8)
    np.testing.assert_array_equal(DeepAR(**hp).fit(short).predict(longer[:2]),
                                  DeepAR(**hp).fit(longer).predict(longer[:2]))


def test_ignore_switches_drop_cat_and_dynamic_feat():
    est = DeepAR(time_freq="D", context_length=7, prediction_length=HORIZON, epochs=1, num_cells=8,
                 cardinality="ignore", num_dynamic_feat="").fit(daily_records())
    assert est.cardinality_ == [] and est.num_dynamic_feat_ == 0
    plain = [{"start": r["start"], "target": r["target"]} for r in daily_records(seed=2)[:2]]
    np.testing.assert_array_equal(est.predict(REQUEST_EXAMPLE["instances"][:1]),
                                  est.predict([{**plain[0], **{"start": "2009-11-01 00:00:00",
                                                               "target": REQUEST_EXAMPLE["instances"][0]["target"]}}]))


def test_switch_values_are_checked_against_the_data():
    records = daily_records()
    hp = dict(time_freq="D", context_length=7, prediction_length=HORIZON, epochs=1)
    with pytest.raises(DataFormatError, match="'cardinality' lists 1"):
        DeepAR(**hp, cardinality=[3]).fit(records)
    with pytest.raises(DataFormatError, match="allows 0..1"):
        DeepAR(**hp, cardinality=[2, 2]).fit(records)
    with pytest.raises(DataFormatError, match="'num_dynamic_feat' is 2"):
        DeepAR(**hp, num_dynamic_feat=2).fit(records)
    est = DeepAR(**hp, cardinality=[4, 3], num_dynamic_feat=1, num_cells=8).fit(records)
    assert est.cardinality_ == [4, 3]  # an explicit list may reserve categories not in the data
    assert est.predict([{**records[0], "cat": [3, 2], "dynamic_feat": [[0.0] * 62]}]).shape == (1, HORIZON)


# ------------------------------------------------------------------------------------ files
def _write_files(folder, records):
    folder.mkdir()
    half = len(records) // 2
    (folder / "part-0.json").write_text("".join(json.dumps(r) + "\n" for r in records[:half]) + "\n")
    with gzip.open(folder / "part-1.json.gz", "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records[half:])
    (folder / "_SUCCESS").write_text("")
    (folder / ".hidden.json").write_text("not json at all")


def test_jsonlines_gzip_and_parquet_channels_read_the_same_series(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    records = daily_records(n=4)
    records[1]["target"][3] = "NaN"
    records[2]["target"][5] = None
    _write_files(tmp_path / "json", records)
    starts = np.array([r["start"] for r in records], dtype="datetime64[s]")
    table = pa.table({"start": pa.array(starts.astype("datetime64[us]").tolist(), pa.timestamp("us")),
                      "target": [[None if v in ("NaN", None) else v for v in r["target"]] for r in records],
                      "cat": [r["cat"] for r in records], "dynamic_feat": [r["dynamic_feat"] for r in records]})
    (tmp_path / "parquet").mkdir()
    pq.write_table(table, tmp_path / "parquet" / "data.parquet", compression="snappy")
    expected = parse_series(records)
    for folder in ("json", "parquet"):
        panel = parse_series(records_of(str(tmp_path / folder), "train"), channel="train")
        np.testing.assert_array_equal(panel.starts, expected.starts)
        np.testing.assert_array_equal(panel.cats, expected.cats)
        for ours, theirs in zip(panel.targets, expected.targets):
            np.testing.assert_array_equal(ours, theirs)
        for ours, theirs in zip(panel.dynamic, expected.dynamic):
            np.testing.assert_array_equal(ours, theirs)


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    from sagelocal.base.errors import MissingDependencyError

    (tmp_path / "data.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'sagelocal\[parquet\]'"):
        list(records_of(str(tmp_path / "data.parquet"), "train"))


def test_fit_on_a_folder_equals_fit_on_the_records(tmp_path):
    records = daily_records(future=True)
    _write_files(tmp_path / "train", records)
    hp = dict(time_freq="D", context_length=7, prediction_length=HORIZON, epochs=1, num_cells=8)
    from_files = DeepAR(**hp).fit(str(tmp_path / "train"), test=str(tmp_path / "train"))
    channel = sagelocal.io.Channel(tmp_path / "train", content_type="application/jsonlines")
    from_channel = DeepAR(**hp).fit(channel)
    from_memory = DeepAR(**hp).fit(records, test=records)
    assert from_files.metrics_ == from_memory.metrics_
    np.testing.assert_array_equal(from_files.predict(records[:2]), from_memory.predict(records[:2]))
    np.testing.assert_array_equal(from_channel.predict(records[:2]), from_memory.predict(records[:2]))


@pytest.mark.parametrize("change, message", [
    (lambda r: r[3].pop("target"), "record 3 has no 'target'"),
    (lambda r: r[2].update(start="yesterday"), "record 2 field 'start'"),
    (lambda r: r[4].update(cat=[1]), "record 4 has 1 cat and 1 dynamic_feat but record 0 has 2 cat"),
    (lambda r: r[1].update(cat=[-1, 0]), "non-negative integer"),
    (lambda r: r[0]["dynamic_feat"][0].__setitem__(4, None), "dynamic_feat' must not have missing"),
    (lambda r: r[5]["target"].__setitem__(0, "many"), "field 'target'"),
])
def test_bad_records_name_the_record(change, message):
    records = daily_records()
    change(records)
    with pytest.raises(DataFormatError, match=message):
        DeepAR(time_freq="D", context_length=7, prediction_length=HORIZON, epochs=1).fit(records)


def test_bad_lines_in_files_name_the_file_and_line(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('{"start": "2020-01-01", "target": [1, 2]}\n{"start": "2020-01-01", "target": [1, \n')
    with pytest.raises(DataFormatError) as info:
        DeepAR(time_freq="D", context_length=7, prediction_length=HORIZON, epochs=1).fit(str(path))
    assert "train.json" in str(info.value) and "record 2" in str(info.value)  # JSON lines count lines from 1


def test_fewer_than_300_observations_are_refused():
    records = daily_records(n=5, length=60)  # exactly 300 observations train
    for value in range(5):
        records[0]["target"][value] = "NaN"
    with pytest.raises(DataFormatError, match="at least 300 observed"):
        DeepAR(time_freq="D", context_length=7, prediction_length=HORIZON, epochs=1).fit(records)


# ----------------------------------------------------------------------------------- container
def test_training_container_reads_jsonlines_channels(tmp_path):
    from sagelocal.container import train
    from sagelocal.io.readers import supported_content_types

    if "application/jsonlines" not in supported_content_types():
        pytest.skip("sagelocal.io has no application/jsonlines reader yet")
    records = daily_records(future=True)
    for channel in ("train", "test"):
        folder = tmp_path / "input" / "data" / channel
        folder.mkdir(parents=True)
        (folder / "data.json").write_text("".join(json.dumps(r) + "\n" for r in records))
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(
        {"time_freq": "D", "context_length": "7", "prediction_length": str(HORIZON), "epochs": "1",
         "num_cells": "8", "test_quantiles": "[0.1, 0.5, 0.9]", "cardinality": "auto"}))
    assert train(tmp_path, "forecasting-deepar") == 0, (tmp_path / "output" / "failure").read_text()
    metrics = json.loads((tmp_path / "output" / "data" / "metrics.json").read_text())
    assert {"test:RMSE", "test:mean_wQuantileLoss", "train:final_loss"} <= set(metrics)
    loaded = sagelocal.load(tmp_path / "model" / "model.tar.gz")
    assert loaded.predict(records[:1]).shape == (1, HORIZON)
