"""`attune validate PATH`: offline, CI-friendly output and exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "corpus"
GENPACKS = ROOT / "bench" / "genpacks.py"
LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning) (?P<code>\S+) (?P<msg>.+)$")


def attune(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attune_cli.main", *args], capture_output=True, text=True, cwd=cwd)


def test_corpus_text_output_and_exit_1():
    r = attune("validate", str(CORPUS), "--known-action", "core.local")
    assert r.returncode == 1, r.stderr
    lines = r.stdout.strip().splitlines()
    summary = lines[-1]
    assert summary.startswith("corpus: 27 workflows checked, 20 with errors")
    diags = [LINE.match(line) for line in lines[:-1]]
    assert all(diags), [line for line, m in zip(lines, diags, strict=False) if not m]
    # file names are clickable: the pack path as given, then the file
    assert all(Path(m["file"]).is_file() for m in diags)
    assert any(
        m["code"] == "undefined-action" and m["msg"] == "Task 'step1' references undefined action 'invalid.action'"
        for m in diags
    )


def test_json_output():
    """The shape of the server's validate answer (and `attune pack validate --json`)."""
    r = attune("validate", str(CORPUS), "--format", "json", "-a", "core.local")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["message"] == "Pack workflows validated"
    data = doc["data"]
    assert set(data) == {"pack_ref", "validated_count", "error_count", "errors", "diagnostics", "warning_count",
                         "notes", "pack_dir", "job_id"}  # fmt: skip
    assert data["pack_ref"] == "corpus"
    assert data["validated_count"] == 27
    assert data["error_count"] == 20 == len(data["errors"])
    assert data["errors"]["corpus.missing_version"] == ["Missing required field: version"]
    d = data["diagnostics"]["corpus.missing_version"][0]
    assert d == {
        "severity": "error",
        "code": "missing-field",
        "message": "Missing required field: version",
        "file": "workflows/missing_version.yaml",
        "line": 2,
        "column": 1,
        "path": "",
    }
    assert "corpus.valid_minimal" not in data["errors"]


def test_clean_pack_exits_0(tmp_path):
    pack = tmp_path / "clean"
    (pack / "workflows").mkdir(parents=True)
    (pack / "workflows" / "w.yaml").write_text('version: "1"\ntasks:\n  - {name: a, action: core.local}\n')
    r = attune("validate", str(pack), "-a", "core.local")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 workflows checked, 0 with errors" in r.stdout


def test_warnings_alone_exit_0(tmp_path):
    pack = tmp_path / "warned"
    (pack / "workflows").mkdir(parents=True)
    (pack / "workflows" / "w.yaml").write_text('version: "1"\nextra: 1\ntasks:\n  - {name: a, action: core.local}\n')
    r = attune("validate", str(pack), "-a", "core.local")
    assert r.returncode == 0
    assert "warning unknown-field" in r.stdout
    quiet = attune("validate", str(pack), "-a", "core.local", "--no-warnings")
    assert "warning unknown-field" not in quiet.stdout
    assert quiet.returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "/definitely/not/here"],
        ["validate"],
        ["validate", ".", "--format", "xml"],
    ],
)
def test_usage_errors_exit_2(args, tmp_path):
    assert attune(*args).returncode == 2


def test_dir_without_workflow_files_says_so(tmp_path):
    # issue 13: a pack without workflows/ (Attune's action-linked layout keeps them in
    # actions/workflows/) is read, and a pack with no workflow file at all is a warning,
    # never a silent "0 workflows checked".
    (tmp_path / "empty_pack" / "workflows").mkdir(parents=True)
    r = attune("validate", str(tmp_path / "empty_pack"))
    assert r.returncode == 0
    assert "warning no-workflows" in r.stdout
    assert "0 workflows checked" in r.stdout


def test_invalid_pack_ref_is_usage_error(tmp_path):
    (tmp_path / "Bad.Name" / "workflows").mkdir(parents=True)
    r = attune("validate", str(tmp_path / "Bad.Name"))
    assert r.returncode == 2
    assert "--pack-ref" in r.stderr
    ok = attune("validate", str(tmp_path / "Bad.Name"), "--pack-ref", "good")
    assert ok.returncode == 0


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    subprocess.run(
        [sys.executable, str(GENPACKS), str(out), "--workflows", "400", "--invalid", "0.05", "--seed", "11"],
        check=True,
    )
    return out / "bench_0"


def test_generated_pack_with_broken_files(generated):
    r = attune("validate", str(generated), "--format", "json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    broken = {}
    for path in sorted((generated / "workflows").iterdir()):
        text = path.read_text()
        lines = text.splitlines()
        if "[unclosed" in text:
            broken[path.stem] = ("yaml-syntax", lines.index("  - name: [unclosed") + 2)
        elif "no_such_action" in text:
            broken[path.stem] = (
                "undefined-action",
                next(i for i, s in enumerate(lines, 1) if "no_such_action" in s),
            )
        elif "- nowhere" in text:
            broken[path.stem] = ("undefined-task", lines.index("          - nowhere") + 1)
        elif not any(s.startswith("version:") for s in lines):
            broken[path.stem] = ("missing-field", 1)
    assert broken, "the generator made no broken file"
    data = doc["data"]
    assert data["error_count"] == len(broken) and data["validated_count"] == 400
    for path in sorted((generated / "workflows").iterdir()):
        ref = f"bench_0.{path.stem}"
        if path.stem in broken:
            code, line = broken[path.stem]
            errors = [d for d in data["diagnostics"][ref] if d["severity"] == "error"]
            assert [(d["code"], d["line"]) for d in errors] == [(code, line)], ref
        else:
            assert ref not in data["errors"] and ref not in data["diagnostics"], ref


def test_generated_clean_pack_exits_0(tmp_path):
    subprocess.run([sys.executable, str(GENPACKS), str(tmp_path), "--workflows", "200"], check=True)
    r = attune("validate", str(tmp_path / "bench_0"))
    assert r.returncode == 0, r.stdout[-2000:]


def test_generator_makes_realistic_packs(tmp_path):
    """bench/genpacks.py, the project's own: many packs, actions, workflows of about 5 KB, a share broken."""
    subprocess.run(
        [sys.executable, str(GENPACKS), str(tmp_path), "--packs", "3", "--workflows", "60", "--actions", "7",
         "--invalid", "0.2", "--seed", "3", "--prefix", "gen"],
        check=True,
    )  # fmt: skip
    packs = sorted(p.name for p in tmp_path.iterdir())
    assert packs == ["gen_0", "gen_1", "gen_2"]
    for name in packs:
        root = tmp_path / name
        assert len(list((root / "actions").glob("*.yaml"))) == 7
        files = sorted((root / "workflows").iterdir())
        assert len(files) == 60 and {f.suffix for f in files} == {".yaml", ".yml"}
        mean = sum(f.stat().st_size for f in files) / len(files)
        assert 4000 <= mean <= 6500, mean
        r = attune("validate", str(root), "--format", "json")
        doc = json.loads(r.stdout)
        assert r.returncode == 1 and 3 <= doc["data"]["error_count"] <= 25, doc["data"]["error_count"]
        assert doc["data"]["validated_count"] == 60
