"""Names are matched whole: a trailing newline is not a valid name anywhere ("$" would let it through)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from attune.packs.schemas import PackRefStr
from attune.workflows.checker import Known, check_pack, check_workflow
from attune.workflows.loader import load_pack_dir, resolve_pack_dir
from attune.workflows.offline import validate_path

OK = b'version: "1"\ntasks:\n  - name: a\n    action: p.act\n'


def _pack(tmp_path: Path) -> Path:
    pack = tmp_path / "p"
    (pack / "workflows").mkdir(parents=True)
    (pack / "actions").mkdir()
    (pack / "actions" / "act.yaml").write_bytes(b"runner_type: shell\n")
    (pack / "workflows" / "ok.yaml").write_bytes(OK)
    return pack


def _check(text: str):
    return check_workflow(text.encode(), file="workflows/w.yaml", pack_ref="p", name="w", known=Known({"p.act"}))


def test_file_name_with_a_trailing_newline_is_refused(tmp_path):
    pack = _pack(tmp_path)
    (pack / "workflows" / "good\n.yaml").write_bytes(OK)
    (pack / "actions" / "act2\n.yaml").write_bytes(b"runner_type: shell\n")
    report = check_pack(load_pack_dir(pack, "p"))
    by_ref = {w.ref: w for w in report.workflows}
    assert by_ref["p.ok"].ok
    bad = [w for w in report.workflows if w.ref != "p.ok"]
    assert len(bad) == 1 and not bad[0].ok
    assert [d.code for d in bad[0].errors] == ["invalid-name"]
    # the newline is shown escaped: a diagnostic stays one line
    assert "\n" not in bad[0].errors[0].message and "\n" not in (bad[0].errors[0].file or "")
    assert [a.meta is None for a in report.actions] == [False, True]


@pytest.mark.parametrize(
    "text, code",
    [
        ('version: "1"\ntasks:\n  - name: "a\\n"\n    action: p.act\n', "invalid-name"),
        ('version: "1"\nvars:\n  "x\\n": 1\ntasks:\n  - name: a\n    action: p.act\n', "invalid-name"),
        ('version: "1"\ntasks:\n  - name: a\n    action: "p.act\\n"\n', "action-format"),
        (
            'version: "1"\ntasks:\n  - name: a\n    action: p.act\n    next:\n      - publish: ["x\\n"]\n',
            "invalid-name",
        ),
        (
            'version: "1"\ntasks:\n  - name: a\n    action: p.act\n    next:\n      - publish: [{"x\\n": 1}]\n',
            "invalid-name",
        ),
    ],
    ids=["task", "var", "action", "published-name", "published-mapping"],
)
def test_names_with_a_trailing_newline_are_errors(text, code):
    r = _check(text)
    assert not r.ok
    assert code in [d.code for d in r.errors]


def test_pack_ref_with_a_trailing_newline_never_reaches_the_file_system(tmp_path):
    with pytest.raises(ValueError):
        resolve_pack_dir(tmp_path, "p\n")
    with pytest.raises(ValidationError):
        TypeAdapter(PackRefStr).validate_python("p\n")


def test_offline_validate_refuses_a_pack_ref_with_a_trailing_newline(tmp_path):
    pack = _pack(tmp_path)
    err = io.StringIO()
    assert validate_path(pack, pack_ref="p\n", out=io.StringIO(), err=err) == 2
    assert "invalid" in err.getvalue()
