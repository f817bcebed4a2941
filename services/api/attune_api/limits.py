"""Request bodies: bounded however they arrive, and JSON that says what it means.

A pure ASGI middleware in front of every route (before authentication, before any
handler): it reads the body itself, counting the bytes as they stream in, and answers
413 as soon as they pass ``api.max_body_bytes``, whether the client sent a
Content-Length, a chunked body or a Content-Length that lies. The handler then gets the
whole body at once from memory: at most ``max_body_bytes`` are ever held per request.

JSON bodies (``application/json``, ``application/*+json``, or no content type, which
the API reads as JSON) are checked for numbers JSON cannot hold: ``NaN``,
``Infinity``, ``-Infinity`` and literals that overflow a double (``1e999``). Python's
parser accepts them and they would be stored as ``null``; here they are a 422.
A body that is not JSON at all goes on to the route, which answers as it always has.

A body must also arrive whole within ``api.body_timeout_seconds`` (408 otherwise), so
that a client announcing a body and sending it a byte at a time does not hold a
connection and a request slot forever.
"""

from __future__ import annotations

import asyncio
import email.message
import json
import math
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attune.config import ApiSettings, VersionsSettings
from attune.errors import AttuneError

# Pack archives (issue 17) are streamed to the route, never held here: a limit of their own.
UPLOADS = re.compile(r"^/api/v1/packs/[^/]+/versions/?$")


class UploadTooLarge(AttuneError):
    status_code = 413


class UploadTooSlow(AttuneError):
    status_code = 408


class NonFiniteNumber(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise NonFiniteNumber(name)


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise NonFiniteNumber(literal[:40])
    return value


def refused_json(body: bytes) -> str | None:
    """Why a JSON body is refused before its route, or None (also for a document that is
    not JSON: its route reports that): a non-finite number literal, or a string (or key)
    that no column can store: one holding a NUL character or a lone surrogate (``\\ud800``
    to ``\\udfff`` without its pair). Postgres refuses those in text and JSONB (a 422 from the
    database), and the embedded mode's SQLite stored them."""
    try:
        doc = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except NonFiniteNumber as exc:
        return (f"Invalid JSON body: the number {exc} is not finite "
                "(NaN, Infinity and numbers beyond a double's range are refused)")  # fmt: skip
    except (ValueError, RecursionError):
        return None
    if b"\\u" in body:  # JSON writes either only as an escape
        return _unstorable_string(doc)
    return None


def _unstorable_string(doc: Any) -> str | None:
    stack = [doc]
    while stack:
        value = stack.pop()
        if type(value) is str:
            if "\x00" in value:
                return "Invalid JSON body: a string holds a NUL character (\\u0000), which cannot be stored"
            if not value.isascii():
                try:
                    value.encode()
                except UnicodeEncodeError:
                    return (
                        "Invalid JSON body: a string holds a lone surrogate (\\ud800 to \\udfff without "
                        "its pair), which is not a character and cannot be stored"
                    )
        elif type(value) is dict:
            stack.extend(value)  # its keys
            stack.extend(value.values())
        elif type(value) is list:
            stack.extend(value)
    return None


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    """The content types FastAPI parses as JSON (none at all included)."""
    value = next((v.decode("latin-1") for k, v in headers if k == b"content-type"), None)
    if not value:
        return True
    message = email.message.Message()
    message["content-type"] = value
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


async def _answer(send: Send, status: int, body: dict[str, Any], close: bool = True) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if close:  # the rest of the body is never read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class BodyLimit:
    """Reads at most ``api.max_body_bytes`` of any request body (413 past it) within
    ``api.body_timeout_seconds`` (408), then replays the body to the app; JSON bodies
    with non-finite numbers or strings no column can store are a 422 (``refused_json``)."""

    def __init__(self, app: ASGIApp, settings: ApiSettings, uploads: VersionsSettings | None = None) -> None:
        self.app = app
        self.max_bytes = settings.max_body_bytes
        self.timeout = settings.body_timeout_seconds
        self.uploads = uploads or VersionsSettings()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["method"] == "POST" and UPLOADS.match(scope["path"]) is not None
        limit = self.uploads.max_upload_bytes if upload else self.max_bytes
        too_large = {"error": f"Request body too large (limit {limit} bytes)"}
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None:
            if not length.isdigit():  # uvicorn refuses these first; another server might not
                await _answer(send, 400, {"error": "Invalid Content-Length header"})
                return
            if int(length) > limit:
                await _answer(send, 413, too_large)
                return
        if upload:
            await self.app(scope, _streamed(receive, limit, self.uploads.upload_timeout_seconds), send)
            return
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0))
            except TimeoutError:
                await _answer(send, 408, {"error": f"Request body not received within {self.timeout:g} seconds"})
                return
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _answer(send, 413, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        del chunks
        if body and _is_json(scope["headers"]):
            error = refused_json(body)
            if error is not None:
                await _answer(send, 422, {"error": error}, close=False)
                return
        await self.app(scope, _replay(body, receive), send)


def _streamed(receive: Receive, limit: int, timeout: float) -> Receive:
    """The body as it arrives, counted: the route reading it gets UploadTooLarge (413) past
    ``limit`` bytes and UploadTooSlow (408) past ``timeout`` seconds."""
    size = 0
    deadline = time.monotonic() + timeout

    async def counted() -> Message:
        nonlocal size
        try:
            message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0))
        except TimeoutError:
            raise UploadTooSlow(f"Request body not received within {timeout:g} seconds") from None
        size += len(message.get("body", b""))
        if size > limit:
            raise UploadTooLarge(f"Request body too large (limit {limit} bytes)")
        return message

    return counted


def _replay(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # afterwards: http.disconnect when the client goes

    return replayed
