"""Issue 18: every operation of the OpenAPI document x every kind of caller -> the status the
README's "Access" table says. The operations come from ``app.openapi()``: a route added
without a row in ``RULES`` fails here, and so does a route whose declared role
(``x-attune-role``) differs from the table's. A real worker runs the sync jobs."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest

from tests.archives import pack_files, tar_gz
from tests.conftest import workflow_yaml

pytestmark = pytest.mark.e2e

PUBLIC = {
    ("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"),
    ("POST", "/auth/login"), ("POST", "/auth/refresh"), ("POST", "/auth/logout"),
}  # fmt: skip
RANK = {"viewer": 0, "editor": 1, "admin": 2}


@dataclass(frozen=True)
class Rule:
    role: str  # the least role that may call it
    ok: int  # its status when allowed (with the request below)
    packs: str  # keys limited to packs: "path"/"handler" (on theirs only) or "none" (refused)
    keys: bool = True  # False: API keys are refused (key management takes a login)


# The README's table, written out: what each operation needs.
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/api/v1/packs"): Rule("viewer", 200, "none"),
    ("GET", "/api/v1/packs/{ref}"): Rule("viewer", 200, "path"),
    ("GET", "/api/v1/packs/{ref}/jobs"): Rule("viewer", 200, "path"),
    ("GET", "/api/v1/workflows"): Rule("viewer", 200, "handler"),
    ("GET", "/api/v1/workflows/{ref}"): Rule("viewer", 200, "path"),
    ("GET", "/api/v1/workflows/{ref}/revisions"): Rule("viewer", 200, "path"),
    ("GET", "/api/v1/workflows/{ref}/revisions/{number}"): Rule("viewer", 200, "path"),
    ("GET", "/api/v1/workflows/{ref}/revisions/{number}/diff"): Rule("viewer", 200, "path"),
    ("GET", "/api/v1/jobs/{job_id}"): Rule("viewer", 200, "handler"),
    ("GET", "/api/v1/jobs/batches/{batch_id}"): Rule("viewer", 200, "handler"),
    ("POST", "/api/v1/packs"): Rule("editor", 201, "handler"),
    ("PUT", "/api/v1/packs/{ref}"): Rule("editor", 200, "path"),
    ("POST", "/api/v1/packs/{ref}/workflows/sync"): Rule("editor", 200, "path"),
    ("POST", "/api/v1/packs/{ref}/workflows/validate"): Rule("editor", 200, "path"),
    ("POST", "/api/v1/packs/sync"): Rule("editor", 202, "handler"),
    ("POST", "/api/v1/packs/{ref}/versions"): Rule("editor", 200, "path"),
    ("GET", "/api/v1/packs/{ref}/versions"): Rule("viewer", 200, "path"),
    ("GET", "/api/v1/packs/{ref}/versions/{version_id}"): Rule("viewer", 200, "path"),
    ("GET", "/api/v1/packs/{ref}/versions/{version_id}/archive"): Rule("viewer", 200, "path"),
    ("POST", "/api/v1/packs/{ref}/versions/{version_id}/activate"): Rule("editor", 200, "path"),
    ("DELETE", "/api/v1/packs/{ref}"): Rule("admin", 204, "path"),
    ("GET", "/api/v1/users"): Rule("admin", 200, "none"),
    ("POST", "/api/v1/users"): Rule("admin", 201, "none"),
    ("PUT", "/api/v1/users/{login}"): Rule("admin", 200, "none"),
    ("GET", "/api/v1/keys"): Rule("viewer", 200, "none", keys=False),
    ("POST", "/api/v1/keys"): Rule("viewer", 201, "none", keys=False),
    ("DELETE", "/api/v1/keys/{key_id}"): Rule("viewer", 200, "none", keys=False),
}


@dataclass(frozen=True)
class Caller:
    name: str
    role: str | None  # None: no token
    key: bool = False
    packs: tuple[str, ...] | None = None  # a key limited to these packs


# The target pack of every pack operation is "matrix" (or "fresh", created by POST).
CALLERS = [
    Caller("no token", None),
    Caller("viewer", "viewer"),
    Caller("editor", "editor"),
    Caller("admin", "admin"),
    Caller("viewer key", "viewer", key=True),
    Caller("admin key on its packs", "admin", key=True, packs=("matrix", "fresh")),
    Caller("admin key on another pack", "admin", key=True, packs=("elsewhere",)),
]


def expected(caller: Caller, rule: Rule) -> int:
    if caller.role is None:
        return 401
    if RANK[caller.role] < RANK[rule.role]:
        return 403
    if caller.key and not rule.keys:
        return 403
    if caller.packs is not None and (rule.packs == "none" or "matrix" not in caller.packs):
        return 403
    return rule.ok


def why(caller: Caller, rule: Rule) -> str:
    """What a 403 must say: the role it needs, else why the key is refused."""
    assert caller.role is not None
    if RANK[caller.role] < RANK[rule.role]:
        return f"'{rule.role}' role"
    return "API keys cannot" if caller.key and not rule.keys else "is limited to packs"


def operations(app) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}


def test_every_operation_has_a_rule_and_declares_it(app):
    ops = operations(app)
    assert ops - PUBLIC - set(RULES) == set(), "a route without a row in RULES (and in the README's table)"
    assert set(RULES) - ops == set(), "RULES names a route that is gone"
    paths = app.openapi()["paths"]
    for (method, path), rule in RULES.items():
        op = paths[path][method.lower()]
        assert op["x-attune-role"] == rule.role, (method, path)
        assert op["x-attune-pack-scope"] == rule.packs, (method, path)
        assert op["x-attune-api-keys"] is rule.keys, (method, path)
        assert "403" in op["responses"], (method, path)
    for method, path in PUBLIC & ops:
        assert "x-attune-role" not in paths[path][method.lower()]


class World:
    """Users of each role, packs "matrix" (two revisions of matrix.hello) and "elsewhere",
    a job and a batch on "matrix"; made through HTTP by the admin."""

    def __init__(self, client, packs) -> None:
        from attune.db.engine import session_scope
        from attune.users.service import create_user

        self.client = client
        self.tokens: dict[str, str] = {}
        with session_scope() as s:
            for role in ("viewer", "editor", "admin"):
                create_user(s, role, f"{role} password 1", role)  # type: ignore[arg-type]
            create_user(s, "target", "target password 1", "viewer")  # type: ignore[arg-type]
        for role in ("viewer", "editor", "admin"):
            r = client.post("/auth/login", json={"login": role, "password": f"{role} password 1"})
            assert r.status_code == 200, r.text
            self.tokens[role] = r.json()["data"]["access_token"]
        admin = self.auth("admin")
        for ref in ("matrix", "elsewhere", "fresh"):
            packs.make(ref, {"hello.yaml": workflow_yaml(f"{ref}.echo")})
        for ref in ("matrix", "elsewhere"):
            assert client.post("/api/v1/packs", json={"ref": ref}, headers=admin).status_code == 201
            self.sync(ref)
        packs.make("matrix", {"hello.yaml": workflow_yaml("matrix.echo", desc="changed")})
        self.job_id = self.sync("matrix")  # revision 2
        r = client.post("/api/v1/packs/sync", json={"packs": ["matrix"]}, headers=admin)
        assert r.status_code == 202, r.text
        self.batch_id = r.json()["data"]["batch_id"]
        # a pushed version of "matrix", stored but not active (the same workflow as its directory)
        self.archive = tar_gz(pack_files("matrix", {"hello.yaml": workflow_yaml("matrix.echo", desc="changed")}))
        r = client.post("/api/v1/packs/matrix/versions", content=self.archive, params={"activate": "false"},
                        headers=admin)  # fmt: skip
        assert r.status_code == 200, r.text
        self.version_id = r.json()["data"]["version_id"]
        self.users = itertools.count()

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def sync(self, ref: str) -> str:
        r = self.client.post(f"/api/v1/packs/{ref}/workflows/sync", headers=self.auth("admin"))
        assert r.status_code == 200, r.text
        return r.json()["data"]["job_id"]

    def key(self, owner: str, role: str, packs: tuple[str, ...] | None) -> str:
        body: dict[str, Any] = {"name": f"k{next(self.users)}", "role": role}
        if packs is not None:
            body["packs"] = list(packs)
        r = self.client.post("/api/v1/keys", json=body, headers=self.auth(owner))
        assert r.status_code == 201, r.text
        return r.json()["data"]

    def headers_of(self, caller: Caller) -> dict[str, str]:
        if caller.role is None:
            return {}
        if not caller.key:
            return self.auth(caller.role)
        # a key of the admin (its role, not its creator's, is what it acts with)
        return {"Authorization": f"Bearer {self.key('admin', caller.role, caller.packs)['secret']}"}

    def request(self, method: str, path: str, caller: Caller) -> dict[str, Any]:
        n = next(self.users)
        # a key to revoke: the caller's own when it is a user, else the admin's
        owner = caller.role if caller.role and not caller.key else "admin"
        key_id = self.key(owner, "viewer", None)["id"] if "{key_id}" in path else ""
        ref = "matrix.hello" if path.startswith("/api/v1/workflows/{ref}") else "matrix"
        url = path.format(ref=ref, number=2, job_id=self.job_id, batch_id=self.batch_id, login="target",
                          key_id=key_id, version_id=self.version_id)  # fmt: skip
        bodies: dict[tuple[str, str], Any] = {
            ("POST", "/api/v1/packs"): {"ref": "fresh", "label": "Fresh", "version": "1.0.0"},
            ("PUT", "/api/v1/packs/{ref}"): {"description": f"edit {n}"},
            ("POST", "/api/v1/packs/sync"): {"packs": ["matrix"]},
            ("POST", "/api/v1/users"): {"login": f"made{n}", "password": "made password 1", "role": "viewer"},
            ("PUT", "/api/v1/users/{login}"): {"role": "editor"},
            ("POST", "/api/v1/keys"): {"name": f"made{n}", "role": "viewer"},
        }
        params = {"pack": "matrix"} if path == "/api/v1/workflows" else None
        if (method, path) == ("POST", "/api/v1/packs/{ref}/versions"):  # the same content: stored once, not activated
            return {"method": method, "url": url, "content": self.archive, "params": {"activate": "false"}}
        return {"method": method, "url": url, "json": bodies.get((method, path)), "params": params}


def _order(op: tuple[str, str]) -> tuple[int, str]:
    # the pack's deletion last: every other operation needs the pack
    return (1 if op == ("DELETE", "/api/v1/packs/{ref}") else 0, op[1])


@pytest.mark.parametrize("caller", CALLERS, ids=[c.name for c in CALLERS])
def test_role_matrix(worker, client, packs, caller):
    world = World(client, packs)
    ops = sorted(operations(client.app) - PUBLIC, key=_order)
    wrong = []
    for method, path in ops:
        rule = RULES[(method, path)]
        want = expected(caller, rule)
        headers = world.headers_of(caller)
        r = client.request(**world.request(method, path, caller), headers=headers)
        if r.status_code != want:
            wrong.append(f"{method} {path}: {r.status_code} (expected {want}) {r.text[:200]}")
            continue
        if want == 403 and why(caller, rule) not in r.json()["error"]:
            wrong.append(f"{method} {path}: 403 without saying why ({why(caller, rule)}): {r.text}")
    assert not wrong, "\n".join(wrong)
