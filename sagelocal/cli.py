"""The ``sagelocal`` command: ``train``, ``predict``, ``demo``."""

from __future__ import annotations

import argparse
import logging
import sys

from .base.training import LOG_DATEFMT, LOG_FORMAT


def _configure_logging(verbose: bool = True) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATEFMT))
    root = logging.getLogger("sagelocal")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    root.propagate = False


def _train(args) -> int:
    from .container import train

    return train(args.root, args.algorithm)


def _predict(args) -> int:
    from . import load
    from .base.errors import SagelocalError
    from .io import read
    from .io.batch import Batch
    from .serving.codecs import encode_response

    try:
        model = load(args.model, allow_pickle=args.allow_pickle)
        content_type = args.content_type
        if content_type.split(";")[0].strip().lower() == "text/csv" and "label_size" not in content_type:
            content_type += ";label_size=0"  # inference CSV carries no label column
        with open(args.input, "rb") as stream:
            batch = Batch.concat(list(read(stream, content_type, batch_size=65536)))
        body, _ = encode_response(model.predict_records(batch.features), args.accept, model.response_key)
    except (SagelocalError, OSError) as exc:
        print(f"sagelocal predict: {exc}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(body)
    if not body.endswith(b"\n") and args.accept != "application/x-recordio-protobuf":
        sys.stdout.buffer.write(b"\n")
    return 0


def _demo(args) -> int:
    from .demo import run_demo

    return run_demo(args.output)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sagelocal", description="SageMaker built-in algorithms, locally.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="run a training job over the SageMaker /opt/ml layout")
    train.add_argument("--root", help="layout root (default: $SAGEMAKER_BASE_DIR or /opt/ml)")
    train.add_argument("--algorithm", help="algorithm name (default: $SAGELOCAL_ALGORITHM)")
    train.set_defaults(run=_train)

    predict = commands.add_parser("predict", help="print SageMaker-format responses for a file")
    predict.add_argument("--model", required=True, help="model directory or model.tar.gz")
    predict.add_argument("--input", required=True, help="request file")
    predict.add_argument("--content-type", default="text/csv", help="request content type")
    predict.add_argument("--accept", default="application/json", help="response content type")
    predict.add_argument("--allow-pickle", action="store_true",
                         help="allow pickled model payloads (only for models you trust)")
    predict.set_defaults(run=_predict)

    demo = commands.add_parser("demo", help="train PCA on scikit-learn's digits through the container")
    demo.add_argument("--output", default="sagelocal-demo", help="folder for the demo's /opt/ml tree")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sagelocal`` console script."""
    args = build_parser().parse_args(argv)
    _configure_logging()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
