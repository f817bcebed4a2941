"""One place that turns every failure into ``{"error": ...}`` with the right status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from attune.errors import AttuneError
from attune.observability.logs import request_id_var
from attune.refs import PACK_REF_HELP, WORKFLOW_REF_MAX, WORKFLOW_REF_PATTERN

log = logging.getLogger("attune.api")


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "path", "query", "header")]
    return ".".join(parts) or "body"


def _validation_message(errors: list[dict[str, Any]]) -> str:
    first = errors[0] if errors else {}
    loc = tuple(first.get("loc", ()))
    if loc and loc[-1] == "ref" and first.get("type") in ("string_pattern_mismatch", "string_too_long"):
        value = str(first.get("input", ""))[:100]
        ctx = first.get("ctx", {})
        if ctx.get("pattern") == WORKFLOW_REF_PATTERN or ctx.get("max_length") == WORKFLOW_REF_MAX:
            return f"Invalid workflow ref '{value}': <pack ref>.<workflow name>, e.g. my_pack.deploy_app"
        return f"Invalid pack ref '{value}': {PACK_REF_HELP}"
    if first.get("type") == "json_invalid":
        return "Malformed JSON body: " + str(first.get("ctx", {}).get("error", "could not parse"))
    if first.get("type") == "extra_forbidden":
        return f"Unknown field: {_loc(loc)}"
    if first.get("type") == "missing":
        missing = [_loc(tuple(e.get("loc", ()))) for e in errors if e.get("type") == "missing"]
        return f"Missing required field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}"
    msg = first.get("msg", "invalid value")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"Invalid {_loc(loc)}: {msg}{more}"


def _clean(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        item = {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
        out.append(item)
    return out


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def internal_error_body() -> dict[str, Any]:
    """What a caller learns of a failure nobody foresaw: that it happened and the request id
    to quote. The exception itself (SQL, parameters, traceback) goes to the log only."""
    request_id = request_id_var.get()
    if request_id is None:  # outside the request-id middleware (a failure in a middleware)
        return {"error": "Internal error: the details are in the server log"}
    return {"error": f"Internal error (request id {request_id}): the details are in the server log",
            "request_id": request_id}  # fmt: skip


def internal_error() -> JSONResponse:
    return JSONResponse(internal_error_body(), status_code=500)


def install(app: FastAPI) -> None:
    @app.exception_handler(AttuneError)
    async def _domain(_: Request, exc: AttuneError) -> JSONResponse:
        extra = dict(exc.extra)
        retry_after = extra.pop("retry_after", None)
        resp = error_response(exc.status_code, exc.message, **extra)
        if exc.status_code == 401:
            resp.headers["WWW-Authenticate"] = "Bearer"
        if retry_after is not None:
            resp.headers["Retry-After"] = str(retry_after)
        return resp

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
            # valid JSON nested deeper than the parser goes (FastAPI's generic 400): malformed
            # input like any other JSON the service cannot read, a 422 that says why
            return error_response(422, "Malformed JSON body: nested too deeply")
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            return error_response(400, "The body is not UTF-8 text")
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
        return error_response(exc.status_code, detail)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        message = _validation_message(errors)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        whole_body = any(tuple(e.get("loc", ())) == ("body",) for e in errors)
        if whole_body and media and media != "application/json" and not media.endswith("+json"):
            # FastAPI reads a body of another type as text, which "should be a valid dictionary"
            message = f"Invalid body: send JSON with 'Content-Type: application/json' (got '{media[:100]}')"
        return error_response(422, message, details=_clean(errors))

    # Database errors: the driver's message quotes the statement and its parameters, so
    # the body says only what kind of failure it was; the log has the rest.
    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", _first_line(exc))
        return error_response(503, "Database unavailable, try again later")

    @app.exception_handler(DataError)
    async def _bad_value(_: Request, exc: DataError) -> JSONResponse:
        # A value the database cannot hold (out of range, bad encoding) that validation let through.
        log.warning("database refused a value: %s", _first_line(exc))
        # 422 as every wrong value (README); was 400, which the README keeps for non-UTF-8 bodies
        return error_response(
            422, "Invalid value: the database cannot store it (a NUL character, or a number too large)"
        )

    @app.exception_handler(DBAPIError)
    async def _db_error(_: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            log.warning("database connection lost: %s", _first_line(exc))
            return error_response(503, "Database unavailable, try again later")
        log.error("database error", exc_info=exc)
        return internal_error()

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return internal_error()


def _first_line(exc: DBAPIError) -> str:
    """The driver's own message without the statement and parameters SQLAlchemy appends."""
    text = str(exc.orig) if exc.orig is not None else type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__
