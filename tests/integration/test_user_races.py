"""Users changed by two requests at once (found from outside, on a live stack): the last
two admins demoting each other both succeeded, leaving no admin (8 runs in 10); two
creations of one login answered 500 (a unique violation) instead of 409. Each test holds
the first transaction open while the second runs, so the interleaving is the one that
broke, every time."""

from __future__ import annotations

import threading
import time

import pytest

from attune.access.roles import Role
from attune.db.engine import session_scope
from attune.errors import Conflict
from attune.users import service as users


def _in_thread(fn) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except Exception as exc:
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, out


def test_two_admins_demoting_each_other_at_once_leave_one_admin(db):
    with session_scope() as s:
        users.create_user(s, "first", "password-1")
        users.create_user(s, "second", "password-2")

    def demote_first() -> None:
        with session_scope() as s:
            users.update_user(s, "first", role=Role.VIEWER, active=None)

    with session_scope() as s:
        users.update_user(s, "second", role=Role.VIEWER, active=None)  # not committed yet
        t, out = _in_thread(demote_first)
        time.sleep(0.5)  # the other request runs meanwhile (it waits for this one's rows)
    t.join(30)
    assert isinstance(out.get("error"), Conflict), out
    assert "last active admin" in out["error"].message
    with session_scope() as s:
        admins = [u.login for u in users.list_users(s) if u.role == Role.ADMIN and u.is_active]
    assert admins == ["first"]


@pytest.mark.parametrize("change", [{"role": Role.EDITOR, "active": None}, {"role": None, "active": False}])
def test_a_deactivation_racing_a_demotion_leaves_one_admin(db, change):
    with session_scope() as s:
        users.create_user(s, "first", "password-1")
        users.create_user(s, "second", "password-2")

    def change_first() -> None:
        with session_scope() as s:
            users.update_user(s, "first", **change)

    with session_scope() as s:
        users.update_user(s, "second", role=None, active=False)
        t, out = _in_thread(change_first)
        time.sleep(0.5)
    t.join(30)
    assert isinstance(out.get("error"), Conflict), out
    with session_scope() as s:
        assert sum(1 for u in users.list_users(s) if u.role == Role.ADMIN and u.is_active) == 1


def test_two_creations_of_one_login_at_once_are_one_user_and_a_409(db):
    def create_again() -> None:
        with session_scope() as s:
            users.create_user(s, "racer", "password-2")

    with session_scope() as s:
        users.create_user(s, "racer", "password-1")  # not committed yet
        t, out = _in_thread(create_again)
        time.sleep(0.5)  # the second insert waits on the first's unique key
    t.join(30)
    assert isinstance(out.get("error"), Conflict), out
    assert out["error"].message == "User 'racer' already exists"
    with session_scope() as s:
        assert [u.login for u in users.list_users(s)] == ["racer"]


def test_a_login_equal_to_another_but_for_case_is_refused(db):
    """Found from outside: an admin could create a viewer 'ADMIN' beside 'admin' (one
    person twice in every log, and one login throttle for both, which counts without case)."""
    with session_scope() as s:
        users.create_user(s, "admin", "password-1")
    for login in ("ADMIN", "Admin", "aDmIn"):
        with pytest.raises(Conflict) as refused, session_scope() as s:
            users.create_user(s, login, "password-2", Role.VIEWER)
        assert refused.value.message == f"Login '{login}' is taken: user 'admin' differs only in case"
    with session_scope() as s:
        assert [u.login for u in users.list_users(s)] == ["admin"]


def test_two_creations_of_logins_equal_but_for_case_at_once_are_one_user(db):
    def create_other_case() -> None:
        with session_scope() as s:
            users.create_user(s, "CASED", "password-2")

    with session_scope() as s:
        users.create_user(s, "cased", "password-1")  # not committed yet
        t, out = _in_thread(create_other_case)
        time.sleep(0.5)  # the second waits for the first's lock on the login (Postgres)
    t.join(30)
    assert isinstance(out.get("error"), Conflict), out
    assert out["error"].message == "Login 'CASED' is taken: user 'cased' differs only in case"
    with session_scope() as s:
        assert [u.login for u in users.list_users(s)] == ["cased"]


def test_a_pair_made_before_the_check_is_told_apart(db):
    """Logins equal but for case made before the check existed stay; creating one of them
    again says it exists (not that another differs in case)."""
    from attune.users import repository
    from attune.users.models import User

    with session_scope() as s:
        for login in ("Pair", "pair"):
            repository.add(s, User(login=login, password_hash="x", role=Role.VIEWER.value))
    with pytest.raises(Conflict) as refused, session_scope() as s:
        users.create_user(s, "pair", "password-2")
    assert refused.value.message == "User 'pair' already exists"
    with pytest.raises(Conflict) as refused, session_scope() as s:
        users.create_user(s, "PAIR", "password-2")
    assert refused.value.message == "Login 'PAIR' is taken: user 'Pair' differs only in case"
