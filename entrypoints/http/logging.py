"""Structured logs: one JSON object per line, and one line per HTTP request.

:class:`RequestLogMiddleware` gives every request an id (the client's
``X-Request-ID`` when it is a sensible token, else a new one), returns it in
the ``X-Request-ID`` response header, and logs one ``keel.access`` line when
the request ends: id, method, path, status, outcome and duration in
milliseconds. While the request runs, the id is in :data:`request_id`, and
:class:`RequestIdFilter` stamps it on every other record logged meanwhile (a
retry, a 503), so one request's lines can be found together. It also
stamps the correlation and causation ids being served (the request's id, or
a consumed message's ids) and, when tracing is on, the trace and span ids.

:class:`JsonFormatter` writes each record as one JSON line with the fields
passed through ``extra=`` kept as they are. It is hand-written rather than
taken from ``python-json-logger``: the whole job is ``json.dumps`` of the
record's fields, about twenty lines, and Keel needs one thing that library
does not do — scrubbing the database password from every line, whatever
code logged it. :func:`logging_config` is the ``dictConfig`` that
``keel serve`` hands to uvicorn.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters import tracing
from service_layer import correlation

REQUEST_ID_HEADER = "X-Request-ID"
ACCESS_LOGGER = "keel.access"

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "keel_request_id", default=None
)
"""The id of the request being served in this context, ``None`` outside one."""

_ACCEPTED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""An incoming id is echoed into headers and logs, so only a short plain token is taken."""

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@\"']*):[^\s@\"']*@")
"""``scheme://user:password@`` in any text: the password goes, whichever URL it was."""

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    # uvicorn's copy of the message with terminal colour codes, for its own formatter.
    "color_message",
}
"""A record's own attributes; anything else on it came from ``extra=`` and is logged as is."""

access_logger = logging.getLogger(ACCESS_LOGGER)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without any of ``secrets`` (also JSON- or URL-escaped) or URL password."""
    for secret in secrets:
        for form in {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, "***")
    return _URL_PASSWORD.sub(r"\g<head>:***@", text)


def database_secrets(database_url: str) -> list[str]:
    """The password in a database URL, the one secret every Keel process holds."""
    try:
        password = make_url(database_url).password
    except ArgumentError:
        return []
    # A one-character password would turn every line into asterisks; the URL
    # pattern in redact() still removes it from any URL it appears in.
    return [str(password)] if password and len(str(password)) > 1 else []


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, ``extra=`` fields, traceback."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((key, value) for key, value in vars(record).items() if key not in _RESERVED)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        line = json.dumps(entry, default=str, ensure_ascii=False)
        return redact(line, self.secrets)


class RequestIdFilter(logging.Filter):
    """Stamps the current request's id, correlation ids and trace ids on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            current = request_id.get()
            if current is not None:
                record.request_id = current
        context = correlation.current()
        if context is not None and getattr(record, "correlation_id", None) is None:
            record.correlation_id = context.correlation_id
            record.causation_id = context.causation_id
        if not hasattr(record, "trace_id") and (ids := tracing.current_ids()) is not None:
            record.trace_id, record.span_id = ids
        return True


def _outcome(status: int | None) -> str:
    if status is None:
        return "failed"
    if status < 400:
        return "ok"
    return "rejected" if status < 500 else "failed"


class RequestLogMiddleware:
    """Pure ASGI middleware: the request id, its response header, and the access line.

    It wraps the whole application, Starlette's last-resort error handler
    included (see ``create_app``), so that a 500 carries the id too. A request
    whose task is cancelled (the client went away, the server shuts down) is
    logged with the outcome ``cancelled`` before the cancellation goes on.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next(
            (
                value.decode("latin-1")
                for name, value in scope["headers"]
                if name == REQUEST_ID_HEADER.lower().encode()
            ),
            "",
        )
        rid = incoming if _ACCEPTED_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        token = request_id.set(rid)
        started = time.perf_counter()
        outcome: str | None = None
        try:
            # Events this request causes carry its id (contract, "v2: correlation").
            with correlation.caused_by(correlation.MessageContext(rid, rid)):
                await self.app(scope, receive, send_with_id)
        except BaseException as exc:
            outcome = "failed" if isinstance(exc, Exception) else "cancelled"
            raise
        finally:
            request_id.reset(token)
            elapsed = time.perf_counter() - started
            _log_request(scope, rid, status, outcome or _outcome(status), elapsed)


def _log_request(scope: Scope, rid: str, status: int | None, outcome: str, elapsed: float) -> None:
    level = {"ok": logging.INFO, "rejected": logging.INFO}.get(outcome, logging.WARNING)
    if status is not None and status >= 500:
        level = logging.ERROR
    if not access_logger.isEnabledFor(level):
        return
    method, path = scope["method"], scope["path"]
    access_logger.log(
        level,
        "%s %s %s",
        method,
        path,
        status if status is not None else "-",
        extra={
            "request_id": rid,
            "method": method,
            "path": path,
            "status": status,
            "outcome": outcome,
            "duration_ms": round(elapsed * 1000, 2),
        },
    )


def logging_config(database_url: str, level: str = "INFO") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of ``keel serve``: JSON lines on stderr.

    Stderr, where uvicorn logs by default, so that moving to JSON changes
    the format of the lines and not where operators (and tests) find them.

    Uvicorn's loggers keep their records but hand them to the root's JSON
    handler; its access log is left off, ``keel.access`` replaces it.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"json": {"()": JsonFormatter, "secrets": database_secrets(database_url)}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["request_id"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            name: {"level": level, "handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
