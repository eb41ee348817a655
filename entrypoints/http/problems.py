"""Every error the HTTP API answers, as an RFC 9457 ``application/problem+json`` body.

The body is ``{"type", "title", "status", "detail", "code"}``; validation
failures add ``errors``, one item per bad field. ``code`` is the stable word a
client switches on; ``type`` is a URN built from it, stable too, that names
the kind of problem without pretending to be a web page.

Domain errors are mapped by their :class:`~domain.errors.ErrorKind`, never by
class or code, so a bounded context adds error classes without touching this
module. No handler ever puts an exception's text or a traceback into a 5xx
body: those go to the log.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.outages import is_database_unavailable, is_statement_timeout
from domain.errors import ConcurrencyError, DomainError, ErrorKind

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 5
"""What a 503 tells the client to wait: long enough for a pool or a failover to recover."""

KIND_STATUS: Mapping[ErrorKind, int] = {
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.REFUSED: 422,
    ErrorKind.INVALID: 422,
}
"""The HTTP status of each kind of domain error."""

HTTP_CODES: Mapping[int, str] = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "content_too_large",
    415: "unsupported_media_type",
}


class ValidationIssue(BaseModel):
    """One field that failed validation."""

    field: str = Field(description="Dotted name of the bad field, e.g. 'amount'.")
    location: str = Field(description="Where the field was: body, path, query or header.")
    message: str
    type: str = Field(description="Pydantic's machine-readable error type, e.g. 'int_type'.")


class Problem(BaseModel):
    """An RFC 9457 problem document, as every error of this API answers."""

    type: str = Field(examples=["urn:keel:problem:insufficient_funds"])
    title: str = Field(examples=["Insufficient funds"])
    status: int = Field(examples=[409])
    detail: str = Field(examples=["account 6f1c... holds 500, cannot withdraw 900"])
    code: str = Field(examples=["insufficient_funds"])
    errors: list[ValidationIssue] | None = Field(
        default=None, description="Only on 422 validation_error: one item per bad field."
    )


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


class HttpProblem(Exception):
    """Raise to answer a problem document from anywhere a request is handled (a dependency).

    For refusals that belong to HTTP itself — a missing token, a scope, a rate
    — rather than to a domain rule.
    """

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title
        self.headers = dict(headers or {})


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[ValidationIssue] | None = None,
) -> ProblemResponse:
    """Build a problem response; ``title`` defaults to the code in words."""
    body: dict[str, Any] = {
        "type": f"urn:keel:problem:{code}",
        "title": title or code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = [issue.model_dump() for issue in errors]
    return ProblemResponse(body, status_code=status, headers=dict(headers or {}))


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem bodies for ``statuses``."""
    return {
        status: {
            "model": Problem,
            "description": _phrase(status),
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }


# -- handlers -----------------------------------------------------------------------------


async def _domain_error(request: Request, exc: DomainError) -> Response:
    status = KIND_STATUS[exc.kind]
    return problem(status, exc.code, exc.detail)


async def _http_problem(request: Request, exc: HttpProblem) -> Response:
    return problem(exc.status, exc.code, exc.detail, title=exc.title, headers=exc.headers)


async def _concurrency_error(request: Request, exc: ConcurrencyError) -> Response:
    # The service layer already retried; the client may simply send it again.
    return problem(
        409,
        exc.code,
        "another request changed the same data at the same time and retries ran out; "
        "nothing was applied, the request can be sent again",
    )


def _issue(error: Mapping[str, Any]) -> ValidationIssue:
    location, *path = [str(part) for part in error.get("loc", ())] or ["body"]
    if error.get("type") == "json_invalid":
        # The "field" of a JSON syntax error is a character offset; the body is what's bad.
        path = []
    return ValidationIssue(
        field=".".join(path) or location,
        location=location,
        message=str(error.get("msg", "invalid value")),
        type=str(error.get("type", "value_error")),
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    issues = [_issue(error) for error in exc.errors()]
    names = ", ".join(dict.fromkeys(issue.field for issue in issues))
    return problem(
        422,
        "validation_error",
        f"the request is not valid: check {names}",
        title="Request validation failed",
        errors=issues,
    )


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    status = exc.status_code
    if status == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        # FastAPI's 400 for a body that json.loads cannot read although it is no
        # JSONDecodeError: bytes that are not UTF-8, an integer of 4300+ digits,
        # brackets nested deeper than the parser's recursion limit. To the
        # client that is just invalid input, answered like any other.
        issue = ValidationIssue(
            field="body",
            location="body",
            message="the body is not a readable JSON document",
            type="json_invalid",
        )
        return problem(
            422,
            "validation_error",
            "the request is not valid: check body",
            title="Request validation failed",
            errors=[issue],
        )
    phrase = _phrase(status)
    detail = str(exc.detail) if exc.detail and exc.detail != phrase else phrase
    if status == 404 and detail == phrase:
        detail = f"no resource at {request.url.path}"
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        detail = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
    code = HTTP_CODES.get(status, "_".join(phrase.lower().split()) or "http_error")
    return problem(status, code, detail, title=phrase, headers=exc.headers)


def database_unavailable() -> ProblemResponse:
    """The 503 every database outage answers, with a ``Retry-After``.

    The detail does not claim "nothing was applied": when the connection
    drops during ``COMMIT`` nobody can know. What is safe to say is what the
    client should do: send it again, and a write with the same ``reference``
    is applied at most once.
    """
    return problem(
        503,
        "database_unavailable",
        "the database could not be reached; try again later (a write sent again "
        "with the same reference is applied at most once)",
        title="Service unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def broker_unavailable() -> ProblemResponse:
    """The 503 of ``/ready`` while the message broker does not answer."""
    return problem(
        503,
        "broker_unavailable",
        "the message broker could not be reached; events wait in the outbox meanwhile",
        title="Service unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def database_timeout() -> ProblemResponse:
    """The 503 of a statement that outlived ``DB_STATEMENT_TIMEOUT_MS``: rolled back, retryable."""
    return problem(
        503,
        "database_timeout",
        "the database did not finish in time; nothing was applied, try again later",
        title="Service unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _unavailable(request: Request, exc: Exception) -> Response:
    if is_statement_timeout(exc):
        logger.warning("statement timeout while serving %s %s", request.method, request.url.path)
        return database_timeout()
    if not is_database_unavailable(exc):
        return await _unexpected(request, exc, log=True)
    # The type only: driver messages can name hosts and users, and that is enough to debug.
    logger.warning(
        "database unavailable while serving %s %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
    )
    return database_unavailable()


async def _unexpected(request: Request, exc: Exception, *, log: bool = False) -> Response:
    if log:
        # Starlette logs what reaches its last-resort handler; this one we caught earlier.
        logger.error(
            "unexpected error serving %s %s", request.method, request.url.path, exc_info=exc
        )
    return problem(
        500,
        "internal_error",
        "an unexpected error occurred; it has been logged",
        title="Internal Server Error",
    )


ProblemHandler = Callable[[Request, Any], Coroutine[Any, Any, Response]]


def problem_handlers() -> dict[int | type[Exception], ProblemHandler]:
    """The ``exception_handlers=`` for ``FastAPI(...)``: every error becomes a problem.

    ``Exception`` is handled by Starlette's outermost middleware, which still
    re-raises after answering so that the server logs the traceback.
    """
    return {
        DomainError: _domain_error,
        HttpProblem: _http_problem,
        ConcurrencyError: _concurrency_error,
        RequestValidationError: _validation_error,
        StarletteHTTPException: _http_error,
        OSError: _unavailable,
        sa_exc.DBAPIError: _unavailable,
        sa_exc.TimeoutError: _unavailable,
        Exception: _unexpected,
    }


__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "HttpProblem",
    "Problem",
    "ProblemResponse",
    "broker_unavailable",
    "database_timeout",
    "database_unavailable",
    "problem",
    "problem_handlers",
    "problem_responses",
]
