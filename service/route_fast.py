"""``POST /v1/route`` without FastAPI's per-request machinery: the same endpoint, answered from an ASGI layer.

Under load a route spent about a quarter of its CPU in FastAPI's routing, dependency solving and response
plumbing around the endpoint (py-spy under wrk, benchmarks/throughput.py). :class:`RouteFastPath` sits inside
:class:`~service.middleware.ServiceMiddleware` (body limits, metrics and the access log still apply) and answers
``POST /v1/route`` itself, doing what FastAPI does for that operation, in its order:

1. the body is read and, when its content type is JSON, decoded (a decode error is FastAPI's 422 ``json_invalid``,
   before the key is looked at, as FastAPI reads the body before solving dependencies);
2. the API key is checked (``require_fast("route")``'s check);
3. the body is validated as :class:`RouteRequest` (errors located under ``body``, as FastAPI's);
4. the endpoint function :func:`service.routes.route.route` runs;

and an exception goes to the app's own exception handlers (:mod:`service.errors`), looked up as Starlette's
``ExceptionMiddleware`` does; one without a handler propagates to the server-error middleware. The FastAPI
operation stays registered: it is the OpenAPI document's, and answers any request this layer passes on.
"""

from __future__ import annotations

import email.message
import json
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request

from banditroute.service.deps import check_scope
from banditroute.service.routes import route as route_module
from banditroute.service.schemas import RouteRequest

PATH = "/v1/route"


def _is_json(content_type: str | None) -> bool:
    """FastAPI's test (strict content type): ``application/json`` or ``application/*+json``; none is not JSON."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _body_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]


class RouteFastPath:
    """ASGI middleware answering ``POST /v1/route`` (see the module); everything else goes to ``app``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        # the FastAPI operation: the request's scope names it, so its metrics are labelled with its path template
        self._route = next(r for r in route_module.router.routes if getattr(r, "path", None) == PATH)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        scope["route"] = self._route
        request = Request(scope, receive)
        try:
            response = await self._answer(app, request)
        except Exception as exc:
            handler = _handler(app, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    async def _answer(self, app: Any, request: Request) -> Any:
        body: Any = None
        try:
            raw = await request.body()
            if raw:
                body = raw
                if _is_json(request.headers.get("content-type")):
                    body = json.loads(raw)
        except json.JSONDecodeError as e:
            error = {"type": "json_invalid", "loc": ("body", e.pos), "msg": "JSON decode error", "input": {}}
            raise RequestValidationError([{**error, "ctx": {"error": e.msg}}], body=e.doc) from e
        except Exception as e:  # as FastAPI: anything else reading or decoding the body (too deeply nested JSON)
            raise HTTPException(status_code=400, detail="There was an error parsing the body") from e
        check_scope(app.state.settings, request, "route")
        if body is None:
            missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
            raise RequestValidationError([missing])
        try:
            req = RouteRequest.model_validate(body, from_attributes=True)  # FastAPI's way
        except ValidationError as exc:
            raise RequestValidationError(_body_errors(exc), body=body) from exc
        return await route_module.route(req, request)


def _handler(app: Any, exc: Exception) -> Any:
    """The app's handler of ``exc``: the first of its classes (most specific first) that has one."""
    handlers = app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None
