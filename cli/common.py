"""What several commands share: option types, flag parsing that fails with a one-line fix, and the clients of a
running service and of its Redis. The error mapping itself is in :mod:`banditroute.cli.errors`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from banditroute.cli.errors import UserError, redact

if TYPE_CHECKING:
    import httpx

    from banditroute.service.store import Store

RecordsOpt = Annotated[Path, typer.Option("--records", help="Record file (.parquet, .csv[.gz], .jsonl[.gz]).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output directory.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the split and of every generator.")]
TestFracOpt = Annotated[float, typer.Option(help="Share of queries held out for the test split.")]
ModelsOpt = Annotated[str | None, typer.Option(help="Comma-separated models to keep (default: all).")]
DimOpt = Annotated[int, typer.Option(help="Feature dimension.")]
UrlOpt = Annotated[str | None, typer.Option(help="Base URL of a running service, e.g. http://127.0.0.1:8000.")]
RedisOpt = Annotated[str | None, typer.Option(help="Talk to this Redis directly instead of a service.")]
KeyOpt = Annotated[str | None, typer.Option(envvar="BANDITROUTE_API_KEY", help="API key with the admin scope.")]


def split_csv(value: str | None) -> list[str] | None:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; ``None`` or an empty string -> ``None`` (meaning: all)."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def check_choice(value: str, allowed: Sequence[str], flag: str) -> str:
    """``value`` if it is one of ``allowed``.

    Raises:
        UserError: naming the flag, the value and the allowed values.
    """
    if value not in allowed:
        raise UserError(f"{flag} {value!r} is not one of {', '.join(allowed)}", f"pass one of them to {flag}")
    return value


def parse_json_object(value: str | None, flag: str) -> dict[str, Any]:
    """The JSON object given to ``flag`` (``{}`` when not given).

    Raises:
        UserError: the value is not JSON, or not a JSON object.
    """
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise UserError(f"{flag} is not valid JSON ({exc.msg} at character {exc.pos})", _json_fix(flag)) from exc
    if not isinstance(parsed, dict):
        raise UserError(f"{flag} must be a JSON object, got {type(parsed).__name__}", _json_fix(flag))
    return parsed


def _json_fix(flag: str) -> str:
    return f"""quote it for the shell, e.g. {flag} '{{"alpha": 0.1}}'"""


def http_client(url: str, api_key: str | None) -> httpx.Client:
    """A client of the service at ``url``, sending ``api_key`` as a bearer token."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def check_response(resp: httpx.Response, scope: str = "admin") -> None:
    """Nothing if ``resp`` succeeded; otherwise what went wrong, in one line.

    Args:
        resp: A response of the service.
        scope: The API-key scope the request needs (named when the key is refused).

    Raises:
        UserError: HTTP 401/403 (the key was refused; the key itself is never printed), 404 (unknown policy) or
            any other error status, with the service's own explanation.
    """
    if resp.status_code < 400:
        return
    where = redact(str(resp.request.url.copy_with(path="/", query=None)).rstrip("/"))
    if resp.status_code in (401, 403):
        given = "was refused" if resp.request.headers.get("Authorization") else "is missing"
        raise UserError(
            f"the API key {given} by {where} (HTTP {resp.status_code})",
            f"pass a key with the {scope!r} scope with --api-key or BANDITROUTE_API_KEY",
        )
    detail = _detail(resp)
    if resp.status_code == 404:
        raise UserError(f"{detail} at {where}", "check the policy id (GET /v1/policies lists them)")
    raise UserError(f"{where} answered HTTP {resp.status_code}: {detail}", "fix the request as the service says")


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200] or resp.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):  # the service's {"error": {...}}
        return str(error["message"])
    if isinstance(body, dict) and isinstance(body.get("detail"), str):  # FastAPI's own errors
        return str(body["detail"])
    return json.dumps(body)[:200]


@contextmanager
def redis_store(redis_url: str, flag: str = "--redis-url") -> Iterator[Store]:
    """A :class:`Store` on ``redis_url``, for use inside ``asyncio.run``; closing is the caller's (``store.r``).

    Raises:
        UserError: Redis is unreachable (the URL is named with its password masked).
    """
    import redis

    from banditroute.service.app import make_client
    from banditroute.service.config import Settings
    from banditroute.service.store import Store

    settings = Settings(redis_url=redis_url)  # a malformed BANDITROUTE_* variable is reported as such
    try:
        client = make_client(redis_url, settings)
    except ValueError as exc:  # redis-py refuses the URL's scheme or form
        raise UserError(f"{flag} {redact(redis_url)!r} is not a Redis URL ({exc})", "use redis://host:port/db") from exc
    try:
        yield Store(client)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise UserError(f"cannot reach Redis at {redact(redis_url)} ({exc})", f"start Redis or check {flag}") from exc
