"""The ``attune`` command (SPEC section 7)."""

from __future__ import annotations

import enum
import getpass
import os
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from attune_cli.client import commands as client_commands
from attune_cli.client import history as client_history
from attune_cli.client import keys as client_keys
from attune_cli.client import push as client_push

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Attune pack-workflow service.")
db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
user_app = typer.Typer(no_args_is_help=True, help="User accounts.")
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.command("login")(client_commands.login)
app.command("logout")(client_commands.logout)
app.add_typer(client_commands.pack_app, name="pack")
app.add_typer(client_commands.job_app, name="job")
client_commands.pack_app.command("plan")(client_history.pack_plan)
client_commands.pack_app.command("push")(client_push.pack_push)
client_commands.pack_app.command("versions")(client_push.pack_versions)
client_commands.pack_app.command("rollback")(client_push.pack_rollback)
app.add_typer(client_history.workflow_app, name="workflow")
app.add_typer(client_keys.key_app, name="key")


def _show_version(value: bool) -> None:
    if value:
        from attune import __version__

        typer.echo(f"attune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit")
    ] = False,
) -> None:
    """Attune pack-workflow service."""


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
    argv = [*(["--host", host] if host else []), *(["--port", str(port)] if port else [])]
    _exec_service("attune_api", [*argv, *(["--reload"] if reload else [])])


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Worker processes (default: number of CPUs)")] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO",
    pool: Annotated[str | None, typer.Option(help="Celery pool (prefork, solo, threads)")] = None,
    hostname: Annotated[str | None, typer.Option("--hostname", "-n", help="Worker node name")] = None,
) -> None:
    """Run a Celery worker (serving its metrics on metrics.worker_port)."""
    argv = [f"--loglevel={loglevel}"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if pool:
        argv.append(f"--pool={pool}")
    if hostname:
        argv.append(f"--hostname={hostname}")
    _exec_service("attune_worker", argv)


def _exec_service(module: str, argv: list[str]) -> None:
    """Becomes the service's process (same pid: signals and supervisors reach it directly).
    The CLI imports no service: it runs them."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", module, *argv])


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


@app.command()
def dev(
    port: Annotated[int | None, typer.Option(help="API port (default: api.port, 8080)")] = None,
    host: Annotated[
        str | None,
        typer.Option(help="Interface to bind (default: $ATTUNE__API__HOST, else 127.0.0.1: this machine only)"),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Worker processes")] = 1,
    packs_dir: Annotated[
        Path | None, typer.Option(help="Packs base directory (default: packs_base_dir from the configuration)")
    ] = None,
) -> None:
    """Everything in one command: migrate, make a first user, run a worker and the API.

    With no database or broker configured this is the embedded mode: SQLite and Celery's
    filesystem broker under data_dir (./.attune), no server needed. Configure
    database.url / celery.broker_url to use Postgres and Redis instead."""
    import signal
    import subprocess

    from attune.config import get_settings, reset_settings
    from attune.db.migrate import ensure_database, upgrade

    if packs_dir is not None:
        os.environ["ATTUNE__PACKS_BASE_DIR"] = str(packs_dir.absolute())
    if port is not None:
        os.environ["ATTUNE__API__PORT"] = str(port)
    if packs_dir is not None or port is not None:
        reset_settings()
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.using_dev_secret:
        # Tokens (and `attune login`) survive restarts: a random secret kept in data_dir
        os.environ["ATTUNE__AUTH__JWT_SECRET"] = _kept_secret(settings.data_dir / "jwt-secret")
        reset_settings()
        settings = get_settings()
    db = "SQLite " + settings.database.url.split("///", 1)[-1] if settings.embedded_database else "configured database"
    broker = f"filesystem broker in {settings.broker_folder}" if settings.embedded_broker else "configured broker"
    typer.echo(f"attune dev: {db}; {broker}; packs in {settings.packs_base_dir}")
    ensure_database(settings.database.url)
    upgrade(settings.database.url)
    user_bootstrap(credentials_file=settings.data_dir / "initial-admin.txt")
    log_path = settings.data_dir / "worker.log"
    cmd = [sys.executable, "-m", "attune_cli.main", "worker", "--concurrency", str(concurrency)]
    with log_path.open("a") as log:
        worker_proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    typer.echo(f"worker started (pid {worker_proc.pid}, log {log_path})")
    # development: this machine only, unless asked (--host, ATTUNE__API__HOST)
    host = host or os.environ.get("ATTUNE__API__HOST") or "127.0.0.1"
    shown = "localhost" if host in ("127.0.0.1", "localhost", "::1") else host
    wider = "  (this machine only: ATTUNE__API__HOST=0.0.0.0 listens on every interface)"
    wider = wider if shown == "localhost" else ""
    typer.echo(f"API on http://{shown}:{port or settings.api.port}  (docs: /docs; stop with Ctrl-C){wider}")
    try:
        api(host=host, port=port, reload=False)
    finally:
        worker_proc.send_signal(signal.SIGTERM)
        try:
            worker_proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker_proc.kill()


def _die_with_parent() -> None:
    """In the worker `attune dev` starts (Linux): SIGTERM when `attune dev` goes, however it
    goes (uvicorn ends its process by re-raising the signal it caught, past any finally)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # elsewhere the finally below stops the worker on a normal exit


def _kept_secret(path: Path) -> str:
    if path.is_file():
        return path.read_text().strip()
    secret = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            _fail("passwords do not match", 2)
    return password


class RoleName(enum.StrEnum):
    viewer = "viewer"
    editor = "editor"
    admin = "admin"


@user_app.command("create")
def user_create(
    login: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
    role: Annotated[RoleName, typer.Option("--role", help="viewer, editor or admin")] = RoleName.admin,
) -> None:
    """Create a user (the password is read from stdin or prompted for); an admin unless --role says otherwise."""
    from attune.access.roles import Role
    from attune.db.engine import session_scope
    from attune.errors import AttuneError
    from attune.users.service import create_user

    password = _read_password(password_stdin)
    try:
        with session_scope() as session:
            user = create_user(session, login, password, Role(role.value))
    except AttuneError as exc:
        _fail(exc.message)
    typer.echo(f"created user '{user.login}' (id {user.id}, {user.role})")


@user_app.command("role")
def user_role(login: str, role: Annotated[RoleName, typer.Argument(help="viewer, editor or admin")]) -> None:
    """Set a user's role (on the server's database); its next request has the new rights."""
    from attune.access.roles import Role
    from attune.db.engine import session_scope
    from attune.errors import AttuneError
    from attune.users.service import update_user

    try:
        with session_scope() as session:
            update_user(session, login, role=Role(role.value), active=None)
    except AttuneError as exc:
        _fail(exc.message)
    typer.echo(f"'{login}' is now {role.value}")


@user_app.command("password")
def user_password(
    login: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Set a user's password (read from stdin or prompted for)."""
    from attune.config import get_settings
    from attune.db.engine import session_scope
    from attune.errors import AttuneError
    from attune.users.service import set_password

    password = _read_password(password_stdin)
    try:
        with session_scope() as session:
            set_password(session, login, password)
    except AttuneError as exc:
        _fail(exc.message)
    typer.echo(f"password of '{login}' changed")
    kept = get_settings().data_dir / "initial-admin.txt"
    if kept.is_file() and kept.read_text().startswith(f"First user created: login '{login}',"):
        kept.unlink()  # the generated password no longer works: do not keep it around
        typer.echo(f"removed {kept} (it held the old password)")


@user_app.command("bootstrap")
def user_bootstrap(
    login: Annotated[str, typer.Option(help="Login of the first user")] = "admin",
    credentials_file: Annotated[
        Path | None,
        typer.Option(help="Where the generated password is kept, mode 0600 (default: data_dir/initial-admin.txt)"),
    ] = None,
) -> None:
    """Create a first user with a random password when there is none, and say how to log in."""
    from attune.config import get_settings
    from attune.db.engine import session_scope
    from attune.users.service import create_user, has_users

    if credentials_file is None:
        credentials_file = get_settings().data_dir / "initial-admin.txt"

    with session_scope() as session:
        if has_users(session):
            where = f" (the first user's password is in {credentials_file})" if credentials_file.is_file() else ""
            typer.echo(
                f"Users exist already: log in with yours{where}: attune login --user LOGIN\n"
                "(attune user create LOGIN adds a user; attune user password LOGIN changes a password)"
            )
            return
        password = secrets.token_urlsafe(18)
        create_user(session, login, password)
    credentials_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    port = get_settings().api.port
    body = (
        f"First user created: login '{login}', password '{password}'\n"
        f"Log in with:\n"
        f"  attune login --user {login}   (the CLI; or with curl:)\n"
        f"  curl -s -X POST http://localhost:{port}/auth/login -H 'Content-Type: application/json' \\\n"
        f'       -d \'{{"login": "{login}", "password": "{password}"}}\'\n'
        f"(kept in {credentials_file}; change it with: attune user password {login})"
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
