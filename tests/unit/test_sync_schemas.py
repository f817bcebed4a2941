"""The typed results' fast paths equal their slow, validated forms.

The engine builds a result entry per workflow without validation (``trusted_entry``), a
worker stores the result as JSON text straight from pydantic-core (``dump_result``), the
API splices that text into its envelope (``envelope_json``), and a staged row carries the
definition's canonical JSON and its hash (``checked_row``). Each must equal what the
models and the revisions' hash would give.
"""

from __future__ import annotations

import uuid

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from attune.sync.schemas import (
    ActionsSummary,
    SyncResult,
    WorkflowSyncEntry,
    dump_result,
    envelope_json,
    trusted_entry,
)

_text = st.text(max_size=30)
_diagnostic = st.fixed_dictionaries(
    {"severity": st.sampled_from(["warning", "error"]), "code": _text, "message": _text, "line": st.integers(1, 99)}
)


@settings(max_examples=60, deadline=None)
@given(ref=_text, created=st.booleans(), wf_id=st.integers(1, 2**31), diags=st.lists(_diagnostic, max_size=3),
       changed=st.booleans())  # fmt: skip
def test_a_trusted_entry_equals_the_validated_model(ref, created, wf_id, diags, changed) -> None:
    fast = trusted_entry(ref=ref, created=created, workflow_def_id=wf_id, diagnostics=diags, changed=changed)
    slow = WorkflowSyncEntry(
        ref_name=ref, ref=ref, created=created, workflow_def_id=wf_id,
        warnings=[d["message"] for d in diags], diagnostics=diags, changed=changed,
    )  # fmt: skip
    assert fast == slow
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast.model_fields_set == slow.model_fields_set


def _result(n: int) -> SyncResult:
    entries = [
        trusted_entry(ref=f"p.w{i}", created=i % 2 == 0, workflow_def_id=i + 1,
                      diagnostics=[{"severity": "warning", "message": f"m\u00e9 {i}", "code": "x"}], changed=True)
        for i in range(n)
    ]  # fmt: skip
    return SyncResult(
        pack_ref="p", loaded_count=n + 1, registered_count=n, workflows=entries, errors=["Validation failed for p.bad"],
        error_diagnostics={"p.bad": [{"severity": "error", "message": "no"}]}, removed=["p.gone"], unchanged_count=0,
        actions=ActionsSummary(registered=["p.a"], errors=[], diagnostics={}), notes=[], job_id=uuid.uuid4(),
    )  # fmt: skip


def test_the_stored_result_is_the_models_json() -> None:
    from attune.db.engine import dumps_json

    result = _result(50)
    stored = dumps_json(dump_result(result))  # what the engine's JSON serialiser writes
    assert orjson.loads(stored) == result.model_dump(mode="json")
    assert SyncResult.model_validate_json(stored) == result


def test_the_envelope_bytes_equal_the_envelope_models() -> None:
    from attune_api.schemas import Envelope

    result = _result(3)
    fast = envelope_json(result.model_dump_json(), 'Pack workflows synced \u2713 "quoted"')
    slow = Envelope[SyncResult](data=result, message='Pack workflows synced \u2713 "quoted"')
    assert orjson.loads(fast) == orjson.loads(slow.model_dump_json())


def test_a_staged_rows_definition_and_hash_are_the_revisions() -> None:
    from attune.revisions.content import definition_hash
    from attune.sync.store import COLUMNS, checked_row
    from attune.workflows.checker import check_workflow
    from attune.workflows.context import Known
    from attune.workflows.loader import SourceFile

    text = (
        "version: '1.0'\nlabel: L\ndescription: d\ntags: [b, a]\n"
        "tasks:\n  - name: one\n    action: core.echo\n    input: {z: 1, a: 2}\n"
    )
    r = check_workflow(text.encode(), file="workflows/w.yaml", pack_ref="p", name="w", known=Known({"core.echo"}))
    assert r.definition is not None, r.diagnostics
    f = SourceFile("w", "p.w", "workflows/w.yaml", text.encode(), "h", len(text), None, "k", False)
    row = dict(zip(COLUMNS, checked_row(uuid.uuid4(), 0, 0, f, r, []), strict=True))
    assert orjson.loads(row["definition"]) == r.definition
    assert row["definition_hash"] == definition_hash(r.definition)
