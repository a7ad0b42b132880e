"""The ASGI application: SageMaker's container routes plus the runtime API route.

| route                                      | answer                                                   |
|--------------------------------------------|----------------------------------------------------------|
| ``GET /ping``                              | 200, empty body (the model is loaded before serving)     |
| ``POST /invocations``                      | the model's answer, or a JSON error from the one table   |
| ``GET /execution-parameters``              | batch transform defaults (``MaxPayloadInMB``, ...)       |
| ``POST /endpoints/{name}/invocations``     | the runtime API (boto3's ``invoke_endpoint``): the answer |
|                                            | with the runtime headers; errors as ``ModelError`` (424) |

Predictions run in a worker thread under ``SAGEMAKER_MODEL_SERVER_TIMEOUT``, so ``/ping`` answers while
a long request runs.
"""

from __future__ import annotations

import json
import re
import uuid

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import PayloadTooLargeError, error_body
from .invocation import Answer, Invoker, error_answer

#: The runtime API's fixed request limit (botocore's InvokeEndpoint ``Body`` max, 6 MiB).
RUNTIME_MAX_BODY = 6_291_456
_ENDPOINT_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
_DRAIN_FACTOR = 16  # past this many times the limit an oversized body is no longer read, the connection drops


def create_app(invoker: Invoker, *, timeout: float = 60.0, workers: int = 1) -> Starlette:
    """The Starlette application serving ``invoker``'s model.

    Parameters
    ----------
    invoker : Invoker
        The model's in-process predict path.
    timeout : float
        Seconds an invocation may take before it is answered 500 (0: no limit).
    workers : int
        Worker processes of the server, reported as ``MaxConcurrentTransforms``.
    """

    async def ping(request: Request) -> Response:
        return Response(status_code=200)

    async def execution_parameters(request: Request) -> Response:
        limit = invoker.max_payload_bytes
        body = {"MaxConcurrentTransforms": max(1, workers), "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": max(1, limit // 2**20) if limit else 0}
        return Response(json.dumps(body), media_type="application/json")

    async def invocations(request: Request) -> Response:
        answer = await _answer(request, invoker, invoker.max_payload_bytes, timeout)
        return _response(answer)

    async def endpoint_invocations(request: Request) -> Response:
        name = request.path_params["endpoint_name"]
        request_id = str(uuid.uuid4())
        if not _ENDPOINT_NAME.fullmatch(name):
            return _runtime_error(400, "ValidationError", request_id,
                                  f"1 validation error detected: Value '{name}' at 'endpointName' failed to "
                                  f"satisfy constraint: Member must satisfy regular expression pattern: "
                                  f"^[a-zA-Z0-9](-*[a-zA-Z0-9])*")
        try:
            body = await _read_body(request, RUNTIME_MAX_BODY)
        except PayloadTooLargeError:
            return _runtime_error(400, "ValidationError", request_id,
                                  f"Request payload exceeds the maximum allowed size of {RUNTIME_MAX_BODY} bytes")
        answer = await _invoke(invoker, body, request, timeout)
        if not answer.ok:
            return _model_error(answer, name, request_id)
        headers = {"x-Amzn-Invoked-Production-Variant": "AllTraffic", "x-amzn-RequestId": request_id,
                   **answer.headers}
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type, headers=headers)

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/execution-parameters", execution_parameters, methods=["GET"]),
        Route("/endpoints/{endpoint_name}/invocations", endpoint_invocations, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_allowed,
                                                        Exception: _unexpected})


async def _answer(request: Request, invoker: Invoker, limit: int, timeout: float) -> Answer:
    try:
        body = await _read_body(request, limit)
    except PayloadTooLargeError as exc:
        return error_answer(exc)
    return await _invoke(invoker, body, request, timeout)


async def _invoke(invoker: Invoker, body: bytes, request: Request, timeout: float) -> Answer:
    """The invoker's answer, computed in a worker thread; past ``timeout`` seconds a 500 answer."""
    content_type = request.headers.get("content-type")
    accept = request.headers.get("accept")
    try:
        with anyio.fail_after(timeout or None):
            return await anyio.to_thread.run_sync(invoker.invoke, body, content_type, accept,
                                                  abandon_on_cancel=True)
    except TimeoutError:
        return error_answer(RuntimeError(f"the invocation took longer than {timeout:g} s "
                                         f"(SAGEMAKER_MODEL_SERVER_TIMEOUT)"))


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, or :class:`PayloadTooLargeError` once it passes ``limit`` bytes (0: no limit).

    An oversized body is still read (and dropped) up to a bound, so that the client, which is usually
    still sending, gets the 413 answer rather than a broken connection.
    """
    declared = request.headers.get("content-length", "")
    size, chunks, over = 0, [], False
    if limit and declared.isdigit() and int(declared) > limit:
        over = True
    async for chunk in request.stream():
        size += len(chunk)
        if limit and size > limit:
            over = True
        if over:
            chunks = []
            if size > _DRAIN_FACTOR * limit:
                break
            continue
        chunks.append(chunk)
    if over:
        shown = int(declared) if declared.isdigit() else size
        raise PayloadTooLargeError(f"the request body has {shown} bytes; the limit is {limit} bytes "
                                   f"({limit / 2**20:g} MiB)")
    return b"".join(chunks)


def _response(answer: Answer) -> Response:
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type,
                    headers=answer.headers)


def _runtime_error(status: int, code: str, request_id: str, message: str, **extra) -> Response:
    """An error as the runtime API sends it: botocore reads the code from ``x-amzn-ErrorType``."""
    body = {"message": message, **extra}
    return Response(json.dumps(body), status_code=status, media_type="application/json",
                    headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": request_id})


def _model_error(answer: Answer, endpoint: str, request_id: str) -> Response:
    """A container error wrapped as the runtime's ``ModelError`` (424), as SageMaker endpoints answer."""
    kind = "client" if answer.status < 500 else "server"
    original = answer.body.decode("utf-8", "replace")
    message = (f'Received {kind} error ({answer.status}) from primary with message "{original}". '
               f"See the sagelocal server log for more information.")
    return _runtime_error(424, "ModelError", request_id, message, OriginalStatusCode=answer.status,
                          OriginalMessage=original,
                          LogStreamArn=f"arn:aws:logs:local:000000000000:log-group:/aws/sagemaker/Endpoints/{endpoint}")


async def _not_found(request: Request, exc) -> Response:
    return _json_error(404, f"no route {request.method} {request.url.path}; routes: GET /ping, POST /invocations, "
                            f"GET /execution-parameters, POST /endpoints/<name>/invocations")


async def _not_allowed(request: Request, exc) -> Response:
    return _json_error(405, f"method {request.method} is not allowed on {request.url.path}")


async def _unexpected(request: Request, exc: Exception) -> Response:
    return _response(error_answer(exc))


def _json_error(status: int, message: str) -> Response:
    return Response(json.dumps(error_body(status, message)), status_code=status, media_type="application/json")
