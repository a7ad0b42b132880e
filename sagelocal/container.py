"""The SageMaker training container contract over the ``/opt/ml`` layout.

``train(root)`` reads ``input/config/hyperparameters.json``, ``inputdataconfig.json`` and
``resourceconfig.json``, opens the channels under ``input/data/`` (File mode folders or Pipe mode
FIFOs ``<channel>_<epoch>``; a Pipe channel whose ``input/data/<channel>/`` folder holds files has its
FIFOs fed from it, as SageMaker feeds them from S3), trains, and writes the model into ``model/``. On
success it writes an empty ``output/success`` and returns 0; on any failure it writes the reason to ``output/failure``
(``ClientError: ...`` for bad input, ``AlgorithmError: ...`` for a fault of ours, as built-in
algorithms do) and returns non-zero.

The algorithm is chosen, in order, by the ``algorithm`` argument (``--algorithm``), the
``SAGELOCAL_ALGORITHM`` environment variable, or the ``SAGEMAKER_ALGORITHM`` variable; a Docker
image whose entry point is ``sagelocal`` sets one of the variables for its algorithm.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base.errors import ChannelError, SagelocalError
from .base.registry import algorithms, get_class
from .base.runtime import Runtime
from .io.channel import Channel
from .io.content_types import parse_content_type
from .io.pipe import PipeFeeder

logger = logging.getLogger("sagelocal")

DEFAULT_ROOT = "/opt/ml"
ALGORITHM_VARIABLES = ("SAGELOCAL_ALGORITHM", "SAGEMAKER_ALGORITHM")
CLIENT_ERROR_EXIT = 1
ALGORITHM_ERROR_EXIT = 2


@dataclass(frozen=True)
class Layout:
    """The paths of the container layout under ``root``."""

    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike | None) -> Layout:
        return cls(Path(root or os.environ.get("SAGEMAKER_BASE_DIR") or DEFAULT_ROOT))

    @property
    def config(self) -> Path:
        return self.root / "input" / "config"

    @property
    def data(self) -> Path:
        return self.root / "input" / "data"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def output_data(self) -> Path:
        return self.root / "output" / "data"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"


def choose_algorithm(algorithm: str | None) -> str:
    """The algorithm name from the argument or the environment, or a ClientError listing choices."""
    for value in (algorithm, *(os.environ.get(var) for var in ALGORITHM_VARIABLES)):
        if value:
            return value
    raise ChannelError(f"no algorithm chosen: pass --algorithm NAME or set SAGELOCAL_ALGORITHM; "
                       f"available: {', '.join(algorithms())}")


def _read_json(path: Path, default: Any) -> Any:
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ChannelError(f"{path}: not valid JSON: {exc}") from None


def read_hyperparameters(layout: Layout) -> dict[str, Any]:
    """``hyperparameters.json`` as a dict (empty when absent); values must be strings or scalars."""
    values = _read_json(layout.config / "hyperparameters.json", {})
    if not isinstance(values, dict):
        raise ChannelError(f"{layout.config / 'hyperparameters.json'}: must hold a JSON object")
    return values


def read_channel_config(layout: Layout) -> dict[str, dict[str, Any]]:
    """``inputdataconfig.json``; without it, one File-mode channel per folder under ``input/data``.

    Each channel's entry may hold ``ContentType``, ``TrainingInputMode``, ``S3DistributionType``,
    ``ShuffleConfig``, ``RecordWrapperType``, ``CompressionType`` and sagelocal's pass-through keys
    ``S3DataType`` and ``AttributeNames``; missing keys take SageMaker's defaults.
    """
    path = layout.config / "inputdataconfig.json"
    config = _read_json(path, None)
    if config is None:
        folders = sorted(p.name for p in layout.data.iterdir() if p.is_dir()) if layout.data.is_dir() else []
        config = {name: {} for name in folders}
    if not isinstance(config, dict):
        raise ChannelError(f"{path}: must hold a JSON object")
    for name, entry in config.items():
        if not isinstance(entry, dict):
            raise ChannelError(f"{path}: channel '{name}' must map to a JSON object; got {entry!r}")
    return config


def open_channels(cls, layout: Layout, config: dict[str, dict[str, Any]],
                  runtime: Runtime | None = None) -> dict[str, Channel]:
    """Channels for ``cls``, checked as built-in containers do (required, extraneous, content type).

    ``runtime`` names this host and all hosts, for ``ShardedByS3Key`` channels; ``s3://`` references
    in manifests resolve under ``$SAGELOCAL_S3_ROOT``.
    """
    for name in config:
        if name not in cls.channels:
            raise ChannelError(f"Extraneous channel found: {name} ({cls.algorithm} takes "
                               f"{', '.join(cls.channels)})")
    for name, required in cls.channels.items():
        if required and name not in config:
            raise ChannelError(f"Missing required channel: {name}")
    declared = [parse_content_type(t)[0] for t in cls.training_content_types]
    channels = {}
    for name, entry in config.items():
        entry = dict(entry)
        if name in cls.raw_channels:  # read by the algorithm itself (e.g. vocabulary files)
            entry.pop("ContentType", None)
            channels[name] = Channel.from_config(name, layout.data, entry, runtime=runtime)
            continue
        content_type = entry.get("ContentType") or cls.training_content_types[0]
        media, params = parse_content_type(content_type)
        if media not in declared:
            raise ChannelError(f"channel '{name}': content type '{content_type}' is not supported by "
                               f"{cls.algorithm}; supported: {', '.join(cls.training_content_types)}")
        content_type = media + "".join(f";{key}={value}" for key, value in params.items())
        if media == "text/csv" and "label_size" not in params:
            content_type = f"{media};label_size={cls.default_label_size}"
        entry["ContentType"] = content_type
        channels[name] = Channel.from_config(name, layout.data, entry, runtime=runtime)
    return channels


def start_feeders(channels: dict[str, Channel]) -> list[PipeFeeder]:
    """Start the local writer side of Pipe mode for every Pipe channel whose
    ``input/data/<channel>`` is a folder (or file) of data: its FIFOs ``<channel>_<epoch>`` are fed from it.

    A Pipe channel without such a folder is left alone: something else writes its FIFOs.
    """
    feeders = []
    try:
        for channel in channels.values():
            if channel.input_mode == "Pipe" and channel.path.exists() and not _is_fifo(channel.path):
                feeders.append(PipeFeeder(channel).start())
                logger.info("channel '%s': Pipe mode fed from %s", channel.name, channel.path)
    except BaseException:
        stop_feeders(feeders)
        raise
    return feeders


def stop_feeders(feeders: list[PipeFeeder]) -> None:
    """Stop the feeders; raise what stopped one of them early (a file that vanished, a bad manifest line)."""
    for feeder in feeders:
        feeder.stop()
    for feeder in feeders:
        if feeder.error is not None:
            raise feeder.error


def _is_fifo(path: Path) -> bool:
    return stat.S_ISFIFO(path.stat().st_mode)


def train(root: str | os.PathLike | None = None, algorithm: str | None = None) -> int:
    """Run one training job over the layout at ``root``; returns the process exit code."""
    layout = Layout.at(root)
    try:
        cls = get_class(choose_algorithm(algorithm))
        hyperparameters = read_hyperparameters(layout)
        resources = _read_json(layout.config / "resourceconfig.json", {})
        estimator = cls.from_sagemaker(hyperparameters)
        runtime = Runtime.from_environment(
            host=resources.get("current_host", "algo-1"),
            hosts=tuple(resources.get("hosts", ["algo-1"])),
            checkpoint_dir=str(layout.checkpoints), output_data_dir=str(layout.output_data))
        channels = open_channels(cls, layout, read_channel_config(layout), runtime)
        estimator.runtime = runtime
        logger.info("training %s with hyperparameters %s", cls.algorithm, estimator.to_sagemaker())
        _fit(estimator, channels)
        estimator.save(layout.model)
        layout.output_data.mkdir(parents=True, exist_ok=True)
        (layout.output_data / "metrics.json").write_text(json.dumps(estimator.metrics_, indent=1))
    except SagelocalError as exc:
        return _fail(layout, f"ClientError: {exc}", CLIENT_ERROR_EXIT)
    except Exception as exc:  # noqa: BLE001 - every failure must reach the failure file
        logger.error("%s", traceback.format_exc())
        return _fail(layout, f"AlgorithmError: {type(exc).__name__}: {exc}", ALGORITHM_ERROR_EXIT)
    (layout.output / "success").touch()
    logger.info("training complete; model written to %s", layout.model)
    return 0


def _fit(estimator, channels: dict[str, Channel]) -> None:
    """Fit on the channels, feeding Pipe-mode FIFOs meanwhile; a feeder's failure is the job's failure
    (it explains a reader that saw a short stream or waited for a FIFO in vain)."""
    feeders = start_feeders(channels)
    try:
        estimator.fit(channels.pop("train"), **channels)
    except BaseException:
        stop_feeders(feeders)  # raises the feeder's error instead, when there is one
        raise
    stop_feeders(feeders)


def _fail(layout: Layout, reason: str, code: int) -> int:
    """Log ``reason`` and write it to ``output/failure`` (kept if a failure file already exists)."""
    logger.error("%s", reason)
    try:
        layout.output.mkdir(parents=True, exist_ok=True)
        failure = layout.output / "failure"
        if not failure.exists():
            failure.write_text(reason)
    except OSError as exc:  # the exit code still reports the failure
        logger.error("cannot write %s: %s", layout.output / "failure", exc)
    return code
