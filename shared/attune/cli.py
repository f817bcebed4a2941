"""The ``attune`` command (SPEC section 7)."""

from __future__ import annotations

import enum
import getpass
import importlib
import os
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Attune pack-workflow service.")
db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
user_app = typer.Typer(no_args_is_help=True, help="User accounts.")
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: api.host)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: api.port, 8080)")] = None,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development)")] = False,
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    from attune.config import get_settings

    settings = get_settings()
    uvicorn.run(
        "attune_api.main:app",
        host=host or settings.api.host,
        port=port or settings.api.port,
        reload=reload,
        log_level=settings.log_level.lower(),
    )


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Worker processes (default: number of CPUs)")] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO",
    pool: Annotated[str | None, typer.Option(help="Celery pool (prefork, solo, threads)")] = None,
    hostname: Annotated[str | None, typer.Option("--hostname", "-n", help="Worker node name")] = None,
) -> None:
    """Run a Celery worker."""
    from attune.config import get_settings

    celery_app = importlib.import_module("attune_worker.celery_app").app
    argv = ["worker", f"--loglevel={loglevel}", "-Q", get_settings().celery.task_queue]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if pool:
        argv.append(f"--pool={pool}")
    if hostname:
        argv.append(f"--hostname={hostname}")
    celery_app.worker_main(argv)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
    create: Annotated[bool, typer.Option(help="Create the Postgres database first if it is missing")] = False,
) -> None:
    """Apply database migrations."""
    from attune.config import get_settings
    from attune.db.migrate import ensure_database, upgrade

    url = get_settings().database.url
    if create and ensure_database(url):
        typer.echo("created database")
    upgrade(url, revision=revision)
    typer.echo(f"database upgraded to {revision}")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            _fail("passwords do not match", 2)
    return password


@user_app.command("create")
def user_create(
    login: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Create a user (the password is read from stdin or prompted for)."""
    from attune.db.engine import session_scope
    from attune.errors import AttuneError
    from attune.users.service import create_user

    password = _read_password(password_stdin)
    try:
        with session_scope() as session:
            user = create_user(session, login, password)
    except AttuneError as exc:
        _fail(exc.message)
    typer.echo(f"created user '{user.login}' (id {user.id})")


@user_app.command("bootstrap")
def user_bootstrap(
    login: Annotated[str, typer.Option(help="Login of the first user")] = "admin",
    credentials_file: Annotated[Path, typer.Option(help="Where the generated password is kept (mode 0600)")] = Path(
        ".attune/initial-admin.txt"
    ),
) -> None:
    """Create a first user with a random password when there is none, and say how to log in."""
    from attune.db.engine import session_scope
    from attune.users.service import create_user, has_users

    with session_scope() as session:
        if has_users(session):
            if credentials_file.is_file():
                typer.echo(credentials_file.read_text().rstrip())
            else:
                typer.echo("Users exist already: log in with yours (attune user create LOGIN adds one).")
            return
        password = secrets.token_urlsafe(18)
        create_user(session, login, password)
    credentials_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    body = (
        f"First user created: login '{login}', password '{password}'\n"
        f"Log in with:\n"
        f"  curl -s -X POST http://localhost:8080/auth/login -H 'Content-Type: application/json' \\\n"
        f'       -d \'{{"login": "{login}", "password": "{password}"}}\'\n'
        f"(kept in {credentials_file}; change it by creating your own user)"
    )
    with os.fdopen(fd, "w") as fh:
        fh.write(body + "\n")
    typer.echo(body)


class OutputFormat(enum.StrEnum):
    text = "text"
    json = "json"


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="A pack directory (holding workflows/ and actions/)")],
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format")] = OutputFormat.text,
    pack_ref: Annotated[
        str | None,
        typer.Option("--pack-ref", help="Pack ref (default: pack.yaml's ref, else the directory name)"),
    ] = None,
    known_action: Annotated[
        list[str] | None,
        typer.Option("--known-action", "-a", help="An action ref registered elsewhere (repeatable)"),
    ] = None,
    max_file_size: Annotated[int, typer.Option(help="Largest file read, in bytes")] = 1024 * 1024,
    warnings: Annotated[bool, typer.Option("--warnings/--no-warnings", help="Show warnings")] = True,
) -> None:
    """Validate a pack directory offline (no server, no database). Exit 1 on errors, 2 on usage errors."""
    from attune.workflows.offline import validate_path

    code = validate_path(
        path,
        output_format=format.value,
        pack_ref=pack_ref,
        known_actions=known_action or [],
        max_file_size=max_file_size,
        show_warnings=warnings,
    )
    raise typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
