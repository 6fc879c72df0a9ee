"""Dependencies of the routes: settings, the store, the policy cache, and API-key scopes.

Every one is ``async``: FastAPI runs a plain function dependency in its thread pool, a thread switch and a GIL
hand-off per request for what is an attribute read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from banditroute.service.config import Settings
from banditroute.service.errors import Forbidden, Unauthorized
from banditroute.service.runtime import PolicyCache
from banditroute.service.store import Store


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_cache(request: Request) -> PolicyCache:
    cache: PolicyCache = request.app.state.cache
    return cache


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[Store, Depends(get_store)]
CacheDep = Annotated[PolicyCache, Depends(get_cache)]


#: the API key as the OpenAPI document declares it (Swagger UI's lock and "Authorize" button); the check below
#: reads the headers itself, so ``X-API-Key: KEY`` keeps working and an absent key is the service's own 401
API_KEY = HTTPBearer(
    scheme_name="APIKey",
    bearerFormat="API key",
    description="An API key from BANDITROUTE_API_KEYS, sent as `Authorization: Bearer KEY` (or `X-API-Key: KEY`).",
    auto_error=False,
)


def require(scope: str) -> Any:
    """A dependency that admits keys with ``scope`` (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``).
    With no keys configured, auth is off (local development)."""

    async def check(
        settings: SettingsDep,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
        x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
        _declared: Annotated[HTTPAuthorizationCredentials | None, Security(API_KEY)] = None,
    ) -> None:
        scopes = key_scopes(settings, authorization, x_api_key)
        if scopes is not None and scope not in scopes:
            raise Forbidden(f"this API key lacks the {scope!r} scope")

    return Depends(check)


def check_scope(settings: Settings, request: Request, scope: str) -> None:
    """``require(scope)``'s check, called by an endpoint itself (its OpenAPI operation declares the key with
    ``openapi_extra={"security": [{"APIKey": []}]}``): the hot endpoints skip FastAPI's dependency resolution.

    Raises:
        Unauthorized: no key, or an unknown one. Forbidden: the key lacks ``scope``.
    """
    if not settings.api_keys:
        return
    headers = request.headers
    scopes = key_scopes(settings, headers.get("authorization"), headers.get("x-api-key"))
    if scopes is not None and scope not in scopes:
        raise Forbidden(f"this API key lacks the {scope!r} scope")


def require_fast(scope: str) -> Any:
    """``require(scope)`` for the hot endpoints: a dependency on the request alone (no header, settings or security
    sub-dependencies for FastAPI to resolve per request); the operation declares the key itself with
    ``openapi_extra=SECURED``. Still a dependency, so a missing key is a 401 before the body is looked at."""

    async def check(request: Request) -> None:
        check_scope(request.app.state.settings, request, scope)

    return Depends(check)


#: the OpenAPI security requirement ``require()`` declares, for operations that use :func:`require_fast`
SECURED: dict[str, Any] = {"security": [{"APIKey": []}]}


def key_scopes(settings: Settings, authorization: str | None, x_api_key: str | None) -> list[str] | None:
    """The scopes of the request's API key (``X-API-Key: KEY`` or ``Authorization: Bearer KEY``); None when auth
    is off (no keys configured).

    Raises:
        Unauthorized: no key, or a key that is not configured.
    """
    if not settings.api_keys:
        return None
    key = x_api_key
    if key is None and authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    if not key:
        raise Unauthorized("missing API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
    scopes = settings.api_keys.get(key)
    if scopes is None:
        raise Unauthorized("unknown API key")
    return list(scopes)
