"""The chosen model at inference: standardize, one affine map, the response mapping; and its ONNX graph.

Inference runs in float64 numpy (features arrive as float32), in the same order of operations as the
ONNX graph, so that an exported model answers what ``predict_records`` answers to rounding in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass
class LinearModel:
    """One fitted linear model and its pre/post-processing.

    Attributes
    ----------
    shift, scale : (features,) feature standardization ``(x - shift) * scale``.
    weights : (features, outputs); bias : (outputs,).
    label_shift, label_scale : predictions are mapped back to the label scale as ``z * scale + shift``.
    loss, predictor_type : what the outputs mean.
    threshold : the calibrated decision threshold (binary only), on the raw output: ``predicted_label``
        is 1 when the raw output (the logit under logistic loss) is at least this value, i.e. when
        ``score`` is at least ``score_threshold``.
    """

    shift: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    label_shift: float
    label_scale: float
    loss: str
    predictor_type: str
    threshold: float

    def __post_init__(self):
        f64 = np.float64
        self.shift, self.scale = self.shift.astype(f64), self.scale.astype(f64)
        self.weights, self.bias = np.ascontiguousarray(self.weights, dtype=f64), self.bias.astype(f64)
        self.threshold = float(self.threshold)

    # ---------------------------------------------------------------------------------- outputs
    def raw(self, X) -> np.ndarray:
        """Raw outputs (rows, outputs), on the label scale for a regressor."""
        if sp.issparse(X):  # fold the standardization into the weights: the batch stays sparse
            z = np.asarray(X @ (self.scale[:, None] * self.weights)) - (self.shift * self.scale) @ self.weights
            z = z + self.bias
        else:
            z = ((np.asarray(X, dtype=np.float64) - self.shift) * self.scale) @ self.weights + self.bias
        if self.predictor_type == "regressor":
            z = z * self.label_scale + self.label_shift
        return z

    def scores(self, raw: np.ndarray) -> np.ndarray:
        """The response ``score``: (rows,) or (rows, classes) for multiclass."""
        if self.loss == "softmax_loss":
            e = np.exp(raw - raw.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        if self.loss == "logistic":
            return 1.0 / (1.0 + np.exp(-raw[:, 0]))
        return raw[:, 0]

    @property
    def score_threshold(self) -> float:
        """The threshold on ``score`` (a probability under logistic loss)."""
        return float(1.0 / (1.0 + np.exp(-self.threshold))) if self.loss == "logistic" else self.threshold

    def labels(self, raw: np.ndarray) -> np.ndarray:
        """``predicted_label`` of classifiers (int64) from raw outputs."""
        if raw.shape[1] > 1:
            return np.argmax(raw, axis=1)
        return (raw[:, 0] >= self.threshold).astype(np.int64)

    def records(self, X) -> list[dict[str, Any]]:
        """SageMaker's response records: ``score`` (and ``predicted_label`` for classifiers)."""
        raw = self.raw(X)
        scores = self.scores(raw).tolist()
        if self.predictor_type == "regressor":
            return [{"score": value} for value in scores]
        return [{"score": s, "predicted_label": label} for s, label in zip(scores, self.labels(raw).tolist())]

    # ------------------------------------------------------------------------------------- onnx
    def to_onnx(self, path, opset: int = 17) -> str:
        """Write the model as an ONNX graph: input ``features`` (N, D) float32; outputs ``score``
        (float64, computed in float64 as ``predict_records`` does) and, for classifiers,
        ``predicted_label`` (int64), as in the JSON response."""
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        def const(name, array):
            return numpy_helper.from_array(np.asarray(array), name)

        init = [const("shift", self.shift), const("scale", self.scale), const("weights", self.weights),
                const("bias", self.bias)]
        nodes = [helper.make_node("Cast", ["features"], ["features64"], to=TensorProto.DOUBLE),
                 helper.make_node("Sub", ["features64", "shift"], ["centred"]),
                 helper.make_node("Mul", ["centred", "scale"], ["standardized"]),
                 helper.make_node("MatMul", ["standardized", "weights"], ["product"]),
                 helper.make_node("Add", ["product", "bias"], ["raw"])]
        last = "raw"
        if self.predictor_type == "regressor":
            init += [const("label_scale", np.float64(self.label_scale)),
                     const("label_shift", np.float64(self.label_shift))]
            nodes += [helper.make_node("Mul", ["raw", "label_scale"], ["scaled"]),
                      helper.make_node("Add", ["scaled", "label_shift"], ["unscaled"])]
            last = "unscaled"
        outputs = self._onnx_outputs(nodes, init, last, const, helper, TensorProto)
        graph = helper.make_graph(nodes, "linear_learner", [helper.make_tensor_value_info(
            "features", TensorProto.FLOAT, ["N", int(self.weights.shape[0])])], outputs, init)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="sagelocal")
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
        return str(path)

    def _onnx_outputs(self, nodes, init, last, const, helper, TensorProto):
        classes = int(self.weights.shape[1])
        if self.loss == "softmax_loss":
            nodes += [helper.make_node("Softmax", [last], ["score"], axis=1),
                      helper.make_node("ArgMax", [last], ["predicted_label"], axis=1, keepdims=0)]
            return [helper.make_tensor_value_info("score", TensorProto.DOUBLE, ["N", classes]),
                    helper.make_tensor_value_info("predicted_label", TensorProto.INT64, ["N"])]
        init.append(const("squeeze_axes", np.asarray([1], dtype=np.int64)))
        nodes.append(helper.make_node("Squeeze", [last, "squeeze_axes"], ["raw_row"]))
        if self.loss == "logistic":
            nodes.append(helper.make_node("Sigmoid", ["raw_row"], ["score"]))
        else:
            nodes.append(helper.make_node("Identity", ["raw_row"], ["score"]))
        outputs = [helper.make_tensor_value_info("score", TensorProto.DOUBLE, ["N"])]
        if self.predictor_type == "binary_classifier":
            init.append(const("threshold", np.float64(self.threshold)))
            nodes += [helper.make_node("GreaterOrEqual", ["raw_row", "threshold"], ["positive"]),
                      helper.make_node("Cast", ["positive"], ["predicted_label"], to=TensorProto.INT64)]
            outputs.append(helper.make_tensor_value_info("predicted_label", TensorProto.INT64, ["N"]))
        return outputs

    # ------------------------------------------------------------------------------------ state
    def arrays(self) -> dict[str, np.ndarray]:
        return {"shift": self.shift, "scale": self.scale, "weights": self.weights, "bias": self.bias,
                "label": np.asarray([self.label_shift, self.label_scale], dtype=np.float64),
                "threshold": np.asarray(self.threshold, dtype=np.float64)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], loss: str, predictor_type: str) -> LinearModel:
        return cls(arrays["shift"], arrays["scale"], arrays["weights"], arrays["bias"],
                   float(arrays["label"][0]), float(arrays["label"][1]), loss, predictor_type,
                   float(arrays["threshold"]))
