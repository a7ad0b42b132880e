"""Runtime settings of a training or serving process, read once from SageMaker's variable names.

Nothing here runs at import: the container builds a :class:`Runtime` and hands it to the estimator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Runtime:
    """Where a job runs and where it may write.

    Attributes
    ----------
    host : this host's name in ``resourceconfig.json`` (``algo-1`` locally).
    hosts : every host of the job.
    checkpoint_dir : where iterative algorithms save and resume checkpoints (None: no checkpoints).
    output_data_dir : where intermediate output goes (``/opt/ml/output/data``).
    """

    host: str = "algo-1"
    hosts: tuple[str, ...] = ("algo-1",)
    checkpoint_dir: str | None = None
    output_data_dir: str | None = None

    @classmethod
    def from_environment(cls, **overrides) -> Runtime:
        """Settings from the ``SM_*`` variables the training toolkit exports, then ``overrides``."""
        env = os.environ
        values = {"host": env.get("SM_CURRENT_HOST", "algo-1"),
                  "output_data_dir": env.get("SM_OUTPUT_DATA_DIR")}
        values.update(overrides)
        return cls(**values)
