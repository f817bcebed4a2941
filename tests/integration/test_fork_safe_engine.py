"""A forked process never uses the database connections it inherited (db/engine.py).

A Celery pool process that dies is replaced by a fork of the worker's main process, whose
lease sweep keeps a connection in the pool: the replacement used that very connection,
and both processes sent statements over one socket, each inside the other's transactions
("can't change 'autocommit' now", "the connection is lost"; found by killing a pool process
during bulk syncs). Here a real fork of a process whose pool holds a connection, on the
test database (Postgres, or the embedded SQLite file)."""

from __future__ import annotations

import os
import signal

from sqlalchemy import text

from tests.conftest import EMBEDDED


def _identity(conn) -> str:  # type: ignore[no-untyped-def]
    """Which session a connection is: the server's backend pid, or the SQLite handle."""
    if EMBEDDED:
        return str(id(conn.connection.dbapi_connection))
    return str(conn.execute(text("SELECT pg_backend_pid()")).scalar())


def _in_child(write_fd: int) -> None:
    """The child's own checkout: its identity, written to the pipe; then exit at once."""
    code = 1
    try:
        from attune.db.engine import get_engine

        with get_engine().connect() as conn:
            conn.execute(text("SELECT count(*) FROM jobs")).scalar()
            os.write(write_fd, _identity(conn).encode())
        code = 0
    finally:
        os._exit(code)


def test_a_forked_process_opens_its_own_connection_and_leaves_the_parents_alone(db) -> None:
    from attune.db.engine import get_engine

    get_engine().dispose()  # the sessions earlier tests left in the pool: one session only below
    with get_engine().connect() as conn:  # the parent's session, back in its pool after this
        parent = _identity(conn)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _in_child(write_fd)
    os.close(write_fd)
    status = None
    try:
        child = os.read(read_fd, 100).decode()
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(read_fd)
        if status is None:  # never left hanging
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child and child != parent  # the child had a session of its own
    # the child's exit (and its dropping the inherited pool) did not end the parent's session
    with get_engine().connect() as conn:
        assert _identity(conn) == parent
        assert conn.execute(text("SELECT 1")).scalar() == 1
