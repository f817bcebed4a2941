"""A small HTTP client of the Attune API, for the `attune` command line.

Keeps the token pair in the user's CLI configuration (see ``client.config``) and
refreshes the access token once when the server says it expired.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from attune_cli.client.config import CliConfig

# Exit codes the command line documents (README, "CLI reference"): stable for CI pipelines.
EXIT_OK = 0
EXIT_FOUND_ERRORS = 1  # the job ran and found invalid workflows, or failed
EXIT_USAGE = 2  # bad arguments (the argument parser's own code)
EXIT_AUTH = 3  # not logged in, bad credentials, token refused
EXIT_REFUSED = 4  # the server refused the request: not found, conflict, invalid input
EXIT_UNAVAILABLE = 5  # server unreachable, or it answered 5xx (a dependency down)
EXIT_TIMEOUT = 6  # the job was still running when --timeout ran out


class ClientError(Exception):
    def __init__(self, message: str, exit_code: int, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.status = status
        self.body = body


def _error_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return str(body)[:500]


def exit_code_for(status: int) -> int:
    if status == 401:
        return EXIT_AUTH
    if status >= 500:
        return EXIT_UNAVAILABLE
    return EXIT_REFUSED


class Client:
    def __init__(self, config: CliConfig, server: str | None = None, timeout: float = 30.0) -> None:
        self.config = config
        self.server = (server or config.server).rstrip("/")
        self.http = httpx.Client(base_url=self.server, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------
    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ClientError(f"{self.server} did not answer in time ({exc})", EXIT_UNAVAILABLE) from exc
        except httpx.HTTPError as exc:
            raise ClientError(f"Cannot reach {self.server}: {exc}", EXIT_UNAVAILABLE) from exc

    def request(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...] = (200,),
        headers_extra: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """An authenticated request; ClientError unless the status is in ``ok``."""
        token = self.config.token_for(self.server)
        if token is None:
            raise ClientError(f"Not logged in to {self.server}: run `attune login` first", EXIT_AUTH)
        extra = headers_extra or {}
        r = self._send(method, path, headers={"Authorization": f"Bearer {token}", **extra}, **kwargs)
        if r.status_code == 401 and self._refresh():
            token = self.config.token_for(self.server)
            r = self._send(method, path, headers={"Authorization": f"Bearer {token}", **extra}, **kwargs)
        if r.status_code == 401:
            # an API key (ATTUNE_TOKEN) revoked or expired: logging in does not mend it
            hint = "make a new API key" if (token or "").startswith("atk_") else "run `attune login` again"
            raise ClientError(f"{_error_of(r)} ({hint})", EXIT_AUTH, 401)
        if r.status_code not in ok:
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text
            raise ClientError(_error_of(r), exit_code_for(r.status_code), r.status_code, body)
        return r

    def _refresh(self) -> bool:
        refresh = self.config.refresh_token_for(self.server)
        if refresh is None:
            return False
        r = self._send("POST", "/auth/refresh", json={"refresh_token": refresh})
        if r.status_code != 200:
            return False
        data = r.json()["data"]  # the next refresh token too: the one sent is now used up
        self.config.save_tokens(self.server, self.config.login_for(self.server), data)
        return True

    # -- operations ------------------------------------------------------------
    def login(self, login: str, password: str) -> dict[str, Any]:
        r = self._send("POST", "/auth/login", json={"login": login, "password": password})
        if r.status_code != 200:
            code = EXIT_AUTH if r.status_code in (401, 422, 429) else exit_code_for(r.status_code)
            raise ClientError(_error_of(r), code, r.status_code)
        data = r.json()["data"]
        self.config.save_tokens(self.server, login, data)
        return data

    def logout(self) -> bool:
        """Revokes the kept refresh token's session on the server (best effort: an
        unreachable server or a token it already refused still ends in forgetting the
        tokens), then forgets them. True if tokens were kept for this server."""
        refresh = self.config.refresh_token_for(self.server)
        if refresh is not None:
            with contextlib.suppress(ClientError):
                self._send("POST", "/auth/logout", json={"refresh_token": refresh})
        return self.config.forget(self.server)

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def start_job(self, ref: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
        """POST sync/validate; returns the response body (200: the result; 202: the job to poll)."""
        r = self.request("POST", f"/api/v1/packs/{ref}/workflows/{action}", ok=(200, 202), params=params)
        return {"status_code": r.status_code, **r.json()}

    def push(self, ref: str, body: Iterator[bytes], params: dict[str, Any]) -> dict[str, Any]:
        """POST an archive (streamed from ``body``) as a version of the pack; the response body
        (200: the job's result; 202: the job to poll)."""
        r = self.request("POST", f"/api/v1/packs/{ref}/versions", ok=(200, 202), params=params, content=body,
                         headers_extra={"Content-Type": "application/gzip"})  # fmt: skip
        return {"status_code": r.status_code, **r.json()}

    def wait_job(
        self,
        job_id: str,
        timeout: float | None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        interval: float = 0.5,
    ) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(f"/api/v1/jobs/{job_id}")["data"]
            if on_progress is not None:
                on_progress(job)
            if job["status"] in ("succeeded", "failed"):
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise ClientError(
                    f"Job {job_id} still {job['status']} after {timeout:g} s: "
                    f"follow it with `attune job show {job_id}`",
                    EXIT_TIMEOUT,
                )
            time.sleep(interval)
