"""One file can never fail a pack: hostile files beside valid ones (property-based).

Each generated hostile workflow or action file must get an error diagnostic, the
valid files must stay valid, nothing may raise, offline `attune validate` must
answer without a traceback, and whatever the checker accepts fits the database.
"""

from __future__ import annotations

import io
import json

from hypothesis import HealthCheck, given, settings

from attune.workflows.checker import check_pack
from attune.workflows.loader import load_pack_dir
from attune.workflows.offline import validate_path
from tests.hostile import PACK, VALID_FILES, WORKFLOW, assert_fits_db, hostile_actions, hostile_workflows, write_pack

_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


@_SETTINGS
@given(wf=hostile_workflows(), act=hostile_actions())
def test_a_hostile_file_fails_alone(tmp_path_factory, wf, act):
    pack = write_pack(tmp_path_factory.mktemp("packs"), PACK, [*VALID_FILES, wf, act])
    files = load_pack_dir(pack, PACK)
    report = check_pack(files)

    workflows = {w.ref: w for w in report.workflows}
    assert workflows[f"{PACK}.ok"].ok, workflows[f"{PACK}.ok"].diagnostics
    hostile = [w for w in report.workflows if w.ref != f"{PACK}.ok"]
    assert len(hostile) == 1, f"{wf.why}: {[w.ref for w in report.workflows]}"
    assert not hostile[0].ok and hostile[0].errors, f"{wf.why}: accepted"

    actions = {a.file: a for a in report.actions}
    assert actions["actions/act.yaml"].meta is not None, actions["actions/act.yaml"].diagnostics
    bad = [a for a in report.actions if a.file != "actions/act.yaml"]
    assert len(bad) == 1 and bad[0].meta is None, f"{act.why}: accepted"
    assert any(d.is_error for d in bad[0].diagnostics), act.why

    assert_fits_db(report)

    for fmt in ("text", "json"):
        out, err = io.StringIO(), io.StringIO()
        assert validate_path(pack, output_format=fmt, pack_ref=PACK, out=out, err=err) == 1, err.getvalue()
        if fmt == "json":
            doc = json.loads(out.getvalue())
            assert doc["data"]["error_count"] == 1
        else:
            assert out.getvalue().count("\n") == len(out.getvalue().splitlines())  # one line each


def test_the_strategies_make_files_the_old_checker_let_through(tmp_path):
    """The generators are not toothless: a few fixed hostile files, each refused."""
    from tests.hostile import HostileFile, _workflow

    files = [
        HostileFile(WORKFLOW, b"h1.yaml", _workflow(description='"a\\0b"'), "nul"),
        HostileFile(WORKFLOW, b"h2.yaml", _workflow(var_value="&r [*r]"), "recursive alias"),
        HostileFile(WORKFLOW, b"h3.yaml", _workflow(description="!foo x"), "unknown tag"),
    ]
    pack = write_pack(tmp_path, PACK, [*VALID_FILES, *files])
    report = check_pack(load_pack_dir(pack, PACK))
    assert [w.ok for w in report.workflows] == [False, False, False, True]
    assert_fits_db(report)
