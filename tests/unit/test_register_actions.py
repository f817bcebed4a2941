"""A pack's actions registered in one statement on Postgres (actions/repository.REGISTER_PG,
issue 15) against the four statements SQLAlchemy builds (registrar.register_generic, what
SQLite runs): the same rows and the same answer for any sequence of packs' action sets,
refs another pack holds included; and a row that already says what its file says is not
written again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import Session

from attune.workflows.checker import ActionResult
from attune.workflows.registrar import register_actions, register_generic
from tests.unit.test_engine import _pack, db_engine, session

__all__ = ["db_engine", "session"]  # fixtures of test_engine, used here

REFS = ["a.x", "a.y", "b.x", "shared.z", "a.long"]
COLUMNS = (
    "ref, pack_id, label, description, runner_type, entry_point, CAST(parameters AS TEXT), source_file, content_hash"
)


@pytest.fixture
def pg(session: Session) -> Session:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the one-statement registration is Postgres's")
    return session


def _action(ref: str, variant: int, readable: bool) -> ActionResult:
    meta = None
    if readable:
        meta = {
            "label": None if variant == 0 else f"Label {variant}",
            "description": ["", None, "d\u00e9j\u00e0 'quoted'"][variant % 3],
            "runner_type": None if variant == 1 else "python",
            "entry_point": f"run_{variant}.py",
            "parameters": [None, {}, {"n": {"type": "integer", "default": 1 << 70}}, {"s": {"enum": ["a", None]}}][
                variant % 4
            ],
        }
    return ActionResult(ref, ref.split(".")[-1], f"actions/{ref}.yaml", f"h{variant}", meta, [])


def _rows(session: Session) -> list[tuple]:
    return [tuple(r) for r in session.execute(text(f"SELECT {COLUMNS} FROM actions ORDER BY ref"))]


step = st.tuples(
    st.sampled_from(["a", "b"]),
    st.lists(st.tuples(st.sampled_from(REFS), st.integers(0, 3), st.booleans()), max_size=5, unique_by=lambda t: t[0]),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=6))
def test_one_statement_registers_what_the_four_do(pg: Session, steps) -> None:
    pg.execute(text("DELETE FROM actions"))
    pg.execute(text("DELETE FROM packs"))
    pg.commit()
    packs = {ref: _pack(pg, ref).id for ref in ("a", "b")}
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for i, (pack, drawn) in enumerate(steps):
        actions = [_action(ref, variant, readable) for ref, variant, readable in drawn]
        at = now + timedelta(minutes=i)
        before = {r[0]: r for r in _rows(pg)}
        stamps = dict(pg.execute(text("SELECT ref, updated_at FROM actions")).all())
        nested = pg.begin_nested()
        expected = register_generic(pg, packs[pack], actions, at)
        wanted = _rows(pg)
        nested.rollback()
        got = register_actions(pg, packs[pack], actions, at)
        assert got == expected
        assert _rows(pg) == wanted
        for ref, updated in pg.execute(text("SELECT ref, updated_at FROM actions")).all():
            if before.get(ref) == next(r for r in wanted if r[0] == ref):
                assert updated == stamps[ref], f"{ref} rewritten though its row already said it"
            else:
                assert updated == at
        pg.commit()


# Any text an action file's fields can hold once checked (no NUL, no lone surrogate: the
# checker refuses both): quotes, backslashes, control characters, any script. The rows
# travel as one JSON document; each field must arrive as the four statements write it.
field_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(label=field_text, description=st.one_of(st.none(), field_text), entry=field_text, name=field_text)
def test_any_text_arrives_as_the_four_statements_write_it(pg: Session, label, description, entry, name) -> None:
    pg.execute(text("DELETE FROM actions"))
    pg.execute(text("DELETE FROM packs"))
    pg.commit()
    pack = _pack(pg, "a").id
    meta = {"label": label, "description": description, "runner_type": "python", "entry_point": entry,
            "parameters": {name: {"type": "string", "default": label}}}  # fmt: skip
    actions = [ActionResult("a.x", "x", "actions/x.yaml", "h", meta, [])]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    nested = pg.begin_nested()
    expected = register_generic(pg, pack, actions, at)
    wanted = _rows(pg)
    nested.rollback()
    assert register_actions(pg, pack, actions, at) == expected
    assert _rows(pg) == wanted
    pg.rollback()
