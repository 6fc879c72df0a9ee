"""Domain errors of the service and their one mapping to HTTP.

    ServiceError
    ├── (400)                     a body that is not parseable JSON (framework-raised; same body shape)
    ├── NotFound (404)            unknown policy, experiment, or decision (or an expired decision)
    ├── Conflict (409)            duplicate feedback, an id that exists, a stopped experiment
    ├── Invalid (422)             a request that is well-formed JSON but wrong (feature length, unknown model, ...)
    ├── TooLarge (413)            a query or body over the configured limit
    ├── Unauthorized (401)        missing or unknown API key
    ├── Forbidden (403)           a key without the scope the endpoint needs
    └── Unavailable (503)         Redis unreachable or slower than its deadline

A policy that needs an optional dependency this server lacks (``bandit.MissingExtraError``, e.g. onnx-static
without the ``[onnx]`` extra) answers 501 with the pip command in the message.

Errors of the bandit package (``BanditError``: bad input, unknown model, tampered artifact) map to 422.
Every error body is ``{"error": {"type", "message"}}``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from banditroute.bandit.errors import BanditError, MissingExtraError

log = logging.getLogger("banditroute.service")


class ServiceError(Exception):
    status = 500
    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    status, kind = 404, "not_found"


class Conflict(ServiceError):
    status, kind = 409, "conflict"


class Invalid(ServiceError):
    status, kind = 422, "invalid"


class TooLarge(ServiceError):
    status, kind = 413, "too_large"


class Unauthorized(ServiceError):
    status, kind = 401, "unauthorized"


class Forbidden(ServiceError):
    status, kind = 403, "forbidden"


class Unavailable(ServiceError):
    status, kind = 503, "unavailable"


def error_body(kind: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"type": kind, "message": message}}


#: OpenAPI descriptions of the error responses, for the routes' ``responses=``.
ERROR_MODEL = {
    "content": {"application/json": {"example": error_body("invalid", "what is wrong")}},
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        401: "Missing or unknown API key",
        403: "The key lacks the scope",
        404: "Not found",
        409: "Conflict",
        413: "Too large",
        422: "Invalid request",
        503: "Redis unavailable",
    }
    return {c: {"description": text[c], **ERROR_MODEL} for c in codes}


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        if exc.status >= 500:
            log.warning("service error", extra={"status": exc.status, "error": exc.message})
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return JSONResponse(error_body(exc.kind, exc.message), status_code=exc.status, headers=headers)

    @app.exception_handler(BanditError)
    async def _bandit(request: Request, exc: BanditError) -> JSONResponse:
        return JSONResponse(error_body("invalid", str(exc)), status_code=422)

    @app.exception_handler(MissingExtraError)
    async def _extra(request: Request, exc: MissingExtraError) -> JSONResponse:
        log.warning("optional dependency missing", extra={"error": str(exc), "path": request.url.path})
        return JSONResponse(error_body("not_installed", str(exc)), status_code=501)

    async def _redis(request: Request, exc: Exception) -> JSONResponse:
        log.warning("redis unavailable", extra={"error": f"{type(exc).__name__}: {exc}", "path": request.url.path})
        return JSONResponse(
            error_body("unavailable", f"Redis unavailable or slower than the deadline: {type(exc).__name__}"),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    for exc_type in (RedisError, ConnectionError, TimeoutError):
        app.add_exception_handler(exc_type, _redis)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return JSONResponse(
            error_body(kind, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{loc or 'body'}: {e.get('msg')}")
        return JSONResponse(error_body("invalid", "; ".join(parts)[:2000]), status_code=422)
