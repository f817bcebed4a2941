"""``python -m attune_api [--host H] [--port P] [--reload]``: serve the HTTP API (what ``attune api`` runs)."""

from __future__ import annotations

import argparse

import uvicorn

from attune.config import get_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="attune api", description="Serve the HTTP API.")
    parser.add_argument("--host", default=None, help="Interface to bind (default: api.host)")
    parser.add_argument("--port", type=int, default=None, help="Port (default: api.port, 8080)")
    parser.add_argument("--reload", action="store_true", help="Reload on code changes (development)")
    args = parser.parse_args(argv)
    settings = get_settings()
    trusted = settings.api.forwarded_allow_ips.strip()
    uvicorn.run(
        "attune_api.main:app",
        host=args.host or settings.api.host,
        port=args.port or settings.api.port,
        reload=args.reload,
        log_level=settings.log_level.lower(),
        # JSON logs: the API's own access lines (with request ids) replace uvicorn's
        access_log=not settings.json_logs,
        # X-Forwarded-* believed from api.forwarded_allow_ips only, else from no one (uvicorn's
        # own default believed 127.0.0.1: any local client chose its address)
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )


if __name__ == "__main__":
    main()
