"""A sync job's last writes (issue 15): its pack's stored state, its success and its lease
sent together (``pipeline.finish`` with the ``tail`` that ``sync_whole`` filled), on both
dialects; the Pipeline behind it running statements that return no rows; the groups a
bulk sync is cut into; the validator's fast test of values against ``check_values``."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import Session

from attune.broker.names import TaskName
from attune.db.pipeline import Pipeline
from attune.db.types import utcnow
from attune.jobs import bulk, leases
from attune.jobs import service as jobs
from attune.jobs.models import JobStatus
from attune.jobs.pipeline import finish
from attune.sync import engine
from attune.workflows.context import Known
from attune.workflows.expressions import NAMESPACES, analyse_template, unclosed
from attune.workflows.limits import INT_MAX, MAX_DEPTH
from attune.workflows.rules import clean
from attune.workflows.walker import Walker
from tests.conftest import workflow_yaml
from tests.unit.test_engine import _pack, _target, db_engine, session, write_pack

__all__ = ["db_engine", "session"]  # fixtures of test_engine, used here


def test_pipeline_runs_statements_without_rows_on_both_dialects(session: Session) -> None:
    """SQLite runs a Pipeline's statements one by one: one that returns no rows (a DELETE)
    answers [] there too (the embedded mode's syncs failed with ResourceClosedError)."""
    pack = _pack(session, "pl")
    p = Pipeline(session)
    gone = p.add(text("DELETE FROM packs WHERE ref = :r"), {"r": "nothing"})
    rows = p.add(text("SELECT ref FROM packs WHERE id = :i"), {"i": pack.id})
    assert p.run() == [[], [("pl",)]]
    assert gone == 0 and rows == 1
    assert Pipeline(session).run() == []


def test_statements_added_last_run_after_the_others(session: Session) -> None:
    """``add_last`` statements go after every ``add``-ed one, whenever queued (a group's next
    job marked running reads the finished_at its predecessor's success wrote); their rows
    are not answered."""
    p = Pipeline(session)
    p.add_last(text("UPDATE packs SET label = label || '-last' WHERE ref = 'ord'"), {})
    first = p.add(text("INSERT INTO packs (ref, label, version, tags, meta, created_at, updated_at) "
                       "VALUES ('ord', 'first', '1', '[]', '{}', :now, :now)"), {"now": utcnow()})  # fmt: skip
    read = p.add(text("SELECT label FROM packs WHERE ref = 'ord'"), {})
    assert p.run() == [[], [("first",)]] and (first, read) == (0, 1)
    assert session.execute(text("SELECT label FROM packs WHERE ref = 'ord'")).scalar_one() == "first-last"
    session.rollback()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ok=st.integers(-5, 5), given_ok=st.booleans(), extra=st.booleans())
def test_pipeline_binds_as_sqlalchemy_does(session: Session, ok: int, given_ok: bool, extra: bool) -> None:
    """A statement's own parameter values (``bindparam("ok", 3)``) apply unless the call gives
    one; typed parameters are converted by their types; keys the statement does not name are
    ignored: what ``session.execute`` binds, on both dialects."""
    from sqlalchemy import bindparam

    from attune.jobs.models import Job

    stmt = text("SELECT :ok + 1, :j, :name").bindparams(
        bindparam("ok", 3),
        bindparam("j", type_=Job.__table__.c.id.type),  # type: ignore[attr-defined]
    )
    job_id = uuid.uuid4()
    params = {"j": job_id, "name": "x", **({"ok": ok} if given_ok else {}), **({"unused": 1} if extra else {})}
    p = Pipeline(session)
    at = p.add(stmt, params)
    assert p.run()[at] == [tuple(session.execute(stmt, params).one())]
    session.rollback()


def test_finish_writes_the_state_the_success_and_the_lease_together(session: Session, tmp_path: Path) -> None:
    root = tmp_path / "packs"
    write_pack(root, "fin", {"a.yaml": workflow_yaml(), "b.yaml": workflow_yaml()})
    pack = _pack(session, "fin")
    target = _target(session, root, pack)
    assert leases.claim(session, target.job_id, leases.RUN, TaskName.SYNC, [str(target.job_id)])
    session.commit()
    job = jobs.get_job(session, target.job_id)
    tail = Pipeline(session)
    result = engine.sync_whole(session, target, tail=tail)
    assert session.execute(text("SELECT count(*) FROM pack_sync_state")).scalar_one() == 0  # queued, not sent
    finish(session, job, result, task=leases.RUN, progress=(result.loaded_count, result.loaded_count), tail=tail)
    assert not session.dirty  # the ORM's job told, not made dirty
    if session.get_bind().dialect.name == "postgresql":
        # committed by finish's own round trip: another connection sees it before the scope ends
        assert session.connection().connection.driver_connection.info.transaction_status.name == "IDLE"
        with session.get_bind().connect() as other:
            seen = other.execute(text("SELECT status FROM jobs WHERE id = :j"), {"j": target.job_id}).scalar_one()
        assert seen == JobStatus.SUCCEEDED.value
    session.commit()
    session.expire_all()
    stored = jobs.get_job(session, target.job_id)  # read back from the row
    assert stored.status == JobStatus.SUCCEEDED.value and stored.finished_at is not None
    assert stored.progress_done == stored.progress_total == 2
    assert stored.result is not None and stored.result["loaded_count"] == 2
    assert stored.summary is not None and stored.summary["loaded_count"] == 2
    assert session.execute(text("SELECT count(*) FROM job_leases")).scalar_one() == 0
    assert session.execute(text("SELECT count(*) FROM pack_sync_state")).scalar_one() == 1


@given(total=st.integers(0, 6000), most=st.integers(1, 200))
def test_groups_cover_the_batch_in_order_the_tail_in_smaller_ones(total: int, most: int) -> None:
    size = bulk.group_size(total, most)
    bounds = bulk.group_bounds(total, size)
    assert [j for start, end in bounds for j in range(start, end)] == list(range(total))
    assert all(0 < end - start <= size for start, end in bounds)
    tail = total // 8 if total // 8 >= 2 * size else 0
    if tail:  # the last eighth of a large batch: groups a quarter the size
        assert all(end - start <= max(1, size // 4) for start, end in bounds if start >= total - tail)
    else:  # a small batch is cut as before
        assert bounds == [(s, min(s + size, total)) for s in range(0, total, size)]


# -- clean: what it answered before it checked strings inline (the reference) ------------
def _clean_before(v, depth, known=None) -> bool:
    t = type(v)
    if t is str:
        if "{" not in v:
            return True
        if "{%" in v:
            return False
        if "{{" in v:
            message, names = analyse_template(v)
            return message is None and (known is None or names <= known) and not unclosed(v)
        return True
    if t is bool or v is None:
        return True
    if t is int:
        return -INT_MAX <= v <= INT_MAX
    if t is float:
        return math.isfinite(v)
    if depth >= MAX_DEPTH:
        return False
    if t is dict:
        return all(type(k) is str and _clean_before(x, depth + 1, known) for k, x in v.items())
    if t is list:
        return all(_clean_before(x, depth + 1, known) for x in v)
    return False


texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["{{ parameters.x }}", "{{ vars.y }} and {{ nope }}", "{{ x", "{% if %}", "{ a }", "{{ 1 + }}", "a {{ b }} c"]
    ),
)
scalars = st.one_of(
    texts, st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.sets(st.integers(), max_size=2)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=4), st.integers(0, 3)), inner, max_size=4),
    ),
    max_leaves=30,
)


@given(value=values, depth=st.integers(0, MAX_DEPTH + 1), with_names=st.booleans())
def test_clean_answers_as_before_and_never_hides_a_diagnostic(value, depth: int, with_names: bool) -> None:
    known = NAMESPACES | {"b"} if with_names else None
    assert clean(value, depth, known) == _clean_before(value, depth, known)
    if clean(value, 0, known):
        w = Walker("p", "w", Known(), None)
        w.names = known if known is not None else NAMESPACES
        w.check_values(value, ("input",), names=with_names)
        assert w.diags == []
