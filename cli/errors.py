"""A user's mistake, in one line: ``error: <what is wrong>; <how to fix it>`` on stderr, exit code 2, no traceback.

Every command runs inside :class:`ErrorMappingGroup` (the root app's click group), which maps the exceptions a user
can cause to that line and lets everything else (a bug) raise as usual:

    UserError                      raised by the CLI itself (bad flag value, unknown policy, refused API key, ...)
    └── MissingExtraError          an optional dependency is missing (cli/extras.py)
    TyperException                 a flag typer refused (missing option, bad type), also ``typer.BadParameter``
    ImportError of an extra's module                        -> the extra to install
    BanditError, RecordsError, PriceTableError, FeaturizerError -> their message, plus a hint if it has none
    pydantic_settings.SettingsError, pydantic.ValidationError of Settings -> the BANDITROUTE_* variable and its shape
    httpx.ConnectError / TimeoutException                   -> the URL, and to start the service or check --url
    redis.ConnectionError / TimeoutError                    -> to start Redis or check the Redis URL
    OSError with a file name (missing, unreadable)          -> the path

Messages never contain a secret: API keys are never echoed, and passwords in URLs are masked (``redact``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

if TYPE_CHECKING:
    # typer vendors click (typer._click) and exports its Context only as the narrower typer.Context
    from typer._click import Context as ClickContext


class UserError(Exception):
    """A mistake in what the user asked for, with the way to fix it.

    Args:
        problem: What is wrong, e.g. ``"unknown policy 'main' at http://127.0.0.1:8000"``.
        fix: How to fix it, e.g. ``"check the id with GET /v1/policies"``.
    """

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem, self.fix = problem, fix


# the shapes of the settings that are JSON (service/config.py); a SettingsError only names the field
_JSON_SHAPES = {
    "api_keys": '{"<key>": ["route", "feedback", "admin"]}',
    "source_weights": '{"user": 1.0, "evaluator": 1.0}',
}


def redact(url: str) -> str:
    """``url`` with the password of its user-info replaced by ``***`` (Redis and HTTP URLs may carry one)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _hint(exc: Exception) -> str:
    """A fix for the project's domain errors, whose messages say what is wrong but not always what to do."""
    from banditroute.bandit.errors import ArtifactError, InvalidHyperparameterError, UnknownModelError
    from banditroute.env.costs import PriceTableError
    from banditroute.env.features import FeaturizerError
    from banditroute.env.records import RecordsError

    hints: list[tuple[type[Exception], str]] = [
        (RecordsError, "fix the records file or pass another with --records"),
        (PriceTableError, "fix the price table (prices.csv beside the records)"),
        (FeaturizerError, "check the featurizer options (--dim, --features)"),
        (ArtifactError, "export the artifact again (banditroute fit, or banditroute policy export)"),
        (InvalidHyperparameterError, "change the value (--hyper, or the policy's defaults)"),
        (UnknownModelError, "use a model the records or the policy have (--models)"),
    ]
    return next((hint for cls, hint in hints if isinstance(exc, cls)), "check the command's inputs (--help)")


def _settings_message(exc: Exception) -> str | None:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    if isinstance(exc, SettingsError):
        m = re.search(r'field "(\w+)"', str(exc))  # the message names the field, never the value
        field = m.group(1) if m else "?"
        shape = _JSON_SHAPES.get(field, "valid JSON")
        return f"BANDITROUTE_{field.upper()} is not valid JSON; set it to JSON like {shape}, or unset it"
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        # errors()' "msg" only: str(exc) would include the input, which may hold API keys
        err = exc.errors(include_input=False, include_url=False)[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        if field in _JSON_SHAPES:  # the message of api_keys may quote part of a key: give the shape instead
            return f"BANDITROUTE_{field.upper()} has the wrong shape; set it to JSON like {_JSON_SHAPES[field]}"
        return f"BANDITROUTE_{field.upper()}: {err['msg']}; fix or unset the variable (see service/config.py)"
    return None


def describe(exc: BaseException, command: str) -> str | None:
    """The one-line message for a user's mistake, or ``None`` if ``exc`` is not one (a bug: let it raise).

    Args:
        exc: The exception a command raised.
        command: The command as the user typed it, e.g. ``"policy export"`` (names a missing extra's feature).
    """
    import httpx
    import redis

    from banditroute.bandit.errors import BanditError
    from banditroute.cli.extras import missing_extra
    from banditroute.env.costs import PriceTableError
    from banditroute.env.features import FeaturizerError
    from banditroute.env.records import RecordsError

    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, TyperException):  # UsageError, BadParameter, MissingParameter, NoSuchOption ...
        ctx = getattr(exc, "ctx", None)
        return f"{exc.format_message().rstrip('.')}; see '{ctx.command_path if ctx else 'banditroute'} --help'"
    if isinstance(exc, ImportError) and (missing := missing_extra(exc, command)) is not None:
        return str(missing)
    if isinstance(exc, BanditError | RecordsError | PriceTableError | FeaturizerError):
        msg = str(exc)
        return msg if "; " in msg else f"{msg}; {_hint(exc)}"
    if isinstance(exc, Exception) and (settings := _settings_message(exc)) is not None:
        return settings
    if isinstance(exc, httpx.ConnectError | httpx.TimeoutException):
        try:
            url = redact(str(exc.request.url.copy_with(path="/", query=None)).rstrip("/"))
        except RuntimeError:  # an error raised without a request (not by a client call)
            url = "the service"
        what = "timed out" if isinstance(exc, httpx.TimeoutException) else "refused or unreachable"
        return f"cannot reach {url} ({what}); start the service (banditroute serve) or check --url"
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return f"cannot reach Redis ({exc}); start Redis or check the Redis URL (--redis-url)"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"cannot open {exc.filename} ({exc.strerror}); check the path and its permissions"
    return None


class ErrorMappingGroup(TyperGroup):
    """The root command group: runs the chosen command and turns a user's mistake into one line (see module doc).

    Sub-groups (``policy``) run inside this ``invoke``, so one handler covers every command.
    """

    def invoke(self, ctx: ClickContext) -> Any:
        """Run the command; on a user's mistake print ``error: ...`` to stderr and exit with code 2."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            message = describe(exc, ctx.invoked_subcommand or "banditroute")
            if message is None:
                raise
            typer.echo(f"error: {_one_line(message)}", err=True)
            raise typer.Exit(2) from exc
