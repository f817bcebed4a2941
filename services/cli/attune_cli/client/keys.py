"""`attune key create|list|revoke`: API keys for pipelines (log in as a user first)."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import typer

from attune_cli.client.commands import JsonOpt, ServerOpt, _client, _print_json, _table, err, out

key_app = typer.Typer(no_args_is_help=True, help="API keys for pipelines (log in as a user first: attune login).")


class KeyRole(enum.StrEnum):
    viewer = "viewer"
    editor = "editor"
    admin = "admin"


@key_app.command("create")
def key_create(
    name: str,
    role: Annotated[KeyRole, typer.Option("--role", help="viewer, editor or admin (at most yours)")],
    pack: Annotated[
        list[str] | None, typer.Option("--pack", help="Only this pack (repeatable; default every pack)")
    ] = None,
    expires_in_days: Annotated[int | None, typer.Option("--expires-in-days", min=1, help="Default: never")] = None,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make an API key. Its secret is printed once, alone on stdout (for a CI secret store)."""
    body: dict[str, Any] = {"name": name, "role": role.value}
    if pack:
        body["packs"] = pack
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    with _client(server) as client:
        created = client.request("POST", "/api/v1/keys", ok=(201,), json=body).json()
    if as_json:
        return _print_json(created)
    key = created["data"]
    scope = ", ".join(key["packs"]) if key["packs"] else "every pack"
    expiry = key["expires_at"][:19] if key["expires_at"] else "never"
    err.print(f"API key '{key['name']}' (id {key['id']}): {key['role']} on {scope}, expires {expiry}")
    err.print("Its secret follows, shown this once: keep it now (send it as ATTUNE_TOKEN or a Bearer token)")
    out.print(key["secret"])


@key_app.command("list")
def key_list(
    server: ServerOpt = None,
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Keys per page")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Keys to skip")] = 0,
) -> None:
    """Your API keys (an admin: every key), with their last use. Secrets are never shown."""
    with _client(server) as client:
        body = client.get("/api/v1/keys", limit=limit, offset=offset)
    if as_json:
        return _print_json(body)
    rows = [
        [k["id"], k["name"], k["owner"], k["role"], k["packs"] or "every pack",
         (k["expires_at"] or "never")[:19], "revoked" if k["revoked_at"] else "active",
         (k["last_used_at"] or "never")[:19], k["last_used_from"]]
        for k in body["data"]
    ]  # fmt: skip
    _table(["ID", "NAME", "OWNER", "ROLE", "PACKS", "EXPIRES", "STATE", "LAST USED", "FROM"], rows)
    total = body["pagination"]["total"]
    err.print(
        f"{len(rows)} of {total} API keys"
        + (f" (--offset {offset + len(rows)} for more)" if total > offset + len(rows) else "")
    )


@key_app.command("revoke")
def key_revoke(key_id: str, server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke an API key: its next use is refused."""
    with _client(server) as client:
        body = client.request("DELETE", f"/api/v1/keys/{key_id}").json()
    if as_json:
        return _print_json(body)
    out.print(body["message"])
