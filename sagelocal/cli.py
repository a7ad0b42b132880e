"""The ``sagelocal`` command: ``train``, ``serve``, ``transform``, ``predict``, ``demo``."""

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
    """Answer one request file through the same path as the endpoint (algorithm codecs included)."""
    from . import load
    from .base.errors import SagelocalError
    from .serving.invocation import Invoker

    try:
        model = load(args.model, allow_pickle=args.allow_pickle)
        with open(args.input, "rb") as stream:
            body = stream.read()
    except (SagelocalError, OSError) as exc:
        print(f"sagelocal predict: {exc}", file=sys.stderr)
        return 1
    answer = Invoker(model, max_payload_bytes=0).invoke(body, args.content_type, args.accept)
    if not answer.ok:
        print(f"sagelocal predict: HTTP {answer.status}: {answer.message}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(answer.body)
    if answer.body and not answer.body.endswith(b"\n") and not answer.content_type.endswith("protobuf"):
        sys.stdout.buffer.write(b"\n")
    return 0


def _serve(args) -> int:
    from .base.errors import SagelocalError
    from .container import Layout
    from .serving.server import ServerSettings, serve

    model_dir = args.model_dir or str(Layout.at(args.root).model)
    try:
        settings = ServerSettings.from_environment(
            model_dir=model_dir, host=args.host, port=args.port, workers=args.workers, timeout=args.timeout,
            max_payload_bytes=None if args.max_payload_mb is None else int(args.max_payload_mb * 2**20),
            default_accept=args.default_accept, allow_pickle=args.allow_pickle or None,
            access_log=args.access_log or None, log_level=args.log_level)
        serve(settings)
    except SagelocalError as exc:
        print(f"sagelocal serve: {exc}", file=sys.stderr)
        return 1
    return 0


def _transform(args) -> int:
    from .base.errors import SagelocalError
    from .serving.transform import transform

    try:
        result = transform(
            args.model, args.input, args.output, content_type=args.content_type, split_type=args.split_type,
            batch_strategy=args.batch_strategy, max_payload_mb=args.max_payload_mb,
            assemble_with=args.assemble_with, accept=args.accept, input_filter=args.input_filter,
            output_filter=args.output_filter, join_source=args.join_source, compression=args.compression,
            allow_pickle=args.allow_pickle)
    except SagelocalError as exc:
        print(f"sagelocal transform: {exc}", file=sys.stderr)
        return 1
    for error in result.errors:
        print(f"sagelocal transform: {error}", file=sys.stderr)
    failed = sum(not f.ok for f in result.files)
    print(f"transformed {len(result.files) - failed} of {len(result.files)} files into {args.output}"
          + (f"; {failed} failed (outputs kept as .out.partial)" if failed else ""))
    return 1 if failed else 0


def _add_serve_parser(commands) -> None:
    serve = commands.add_parser("serve", help="run the inference server (SageMaker hosting contract)")
    serve.add_argument("--model-dir", help="model directory or model.tar.gz (default: ROOT/model, /opt/ml/model)")
    serve.add_argument("--root", help="layout root (default: $SAGEMAKER_BASE_DIR or /opt/ml)")
    serve.add_argument("--host", help="address to bind (default: $SAGELOCAL_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: $SAGEMAKER_BIND_TO_PORT or 8080)")
    serve.add_argument("--workers", type=int,
                       help="worker processes (default: $SAGEMAKER_MODEL_SERVER_WORKERS or the CPU count)")
    serve.add_argument("--timeout", type=float,
                       help="seconds per invocation (default: $SAGEMAKER_MODEL_SERVER_TIMEOUT or 60)")
    serve.add_argument("--max-payload-mb", type=float,
                       help="request size limit in MiB (default: $MAX_CONTENT_LENGTH bytes or 6)")
    serve.add_argument("--default-accept",
                       help="Accept for requests without one (default: $SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT)")
    serve.add_argument("--allow-pickle", action="store_true",
                       help="allow pickled model payloads (only for models you trust)")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(run=_serve)


def _add_transform_parser(commands) -> None:
    job = commands.add_parser("transform", help="run a batch transform job over a file or folder")
    job.add_argument("--model", required=True, help="model directory or model.tar.gz")
    job.add_argument("--input", required=True, help="input file or folder (read recursively)")
    job.add_argument("--output", required=True, help="output folder for <input file>.out")
    job.add_argument("--content-type", help="Content-Type of every request (e.g. text/csv)")
    job.add_argument("--accept", help="Accept of every request (default: the algorithm's)")
    job.add_argument("--split-type", default="None", choices=["None", "Line", "RecordIO"])
    job.add_argument("--batch-strategy", default="MultiRecord", choices=["SingleRecord", "MultiRecord"])
    job.add_argument("--max-payload-mb", type=float, default=6, help="request size limit in MiB (0: none)")
    job.add_argument("--assemble-with", default="None", choices=["None", "Line"])
    job.add_argument("--input-filter", default="$", help="JSONPath selecting what is sent to the model")
    job.add_argument("--output-filter", default="$", help="JSONPath selecting what is written")
    job.add_argument("--join-source", default="None", choices=["None", "Input"])
    job.add_argument("--compression", default="None", choices=["None", "Gzip"], help="input compression")
    job.add_argument("--allow-pickle", action="store_true",
                     help="allow pickled model payloads (only for models you trust)")
    job.set_defaults(run=_transform)


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

    _add_serve_parser(commands)
    _add_transform_parser(commands)

    predict = commands.add_parser("predict", help="print SageMaker-format responses for a file")
    predict.add_argument("--model", required=True, help="model directory or model.tar.gz")
    predict.add_argument("--input", required=True, help="request file")
    predict.add_argument("--content-type", default="text/csv", help="request content type")
    predict.add_argument("--accept", help="response content type (default: the algorithm's, as the endpoint)")
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
