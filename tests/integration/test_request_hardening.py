"""Hostile request bodies and failures nobody foresaw, through HTTP (the app in process):
non-finite JSON numbers anywhere in any body, bodies that stream past the limit, the
size limits of pack meta and tags, and 500s that tell the caller nothing but a request id."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EMBEDDED

PACK = {"ref": "hard_pack", "label": "Hard", "version": "1.0.0"}
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1E400", "123456789e999999"]
LEAKS = re.compile(r"INSERT|SELECT|UPDATE|\[SQL|\[parameters|Traceback|psycopg|sqlite3|sqlalchemy|boom-", re.I)

# JSON values (as text) with one non-finite number literal somewhere inside
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20)
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def _with_non_finite(draw: st.DrawFn) -> str:
    """A JSON object whose text holds one non-finite literal at a random place (the
    marker string is replaced by the bare literal, outside any string)."""
    marker = "__NON_FINITE_MARKER__"
    value = draw(_json)
    literal = draw(st.sampled_from(NON_FINITE))
    path_keys = draw(st.lists(st.text(min_size=1, max_size=6), max_size=3))
    node: object = marker
    for key in reversed(path_keys):
        node = draw(st.sampled_from([{key: node}, [value, node], {key: node, "other": value}]))
    return json.dumps({"meta": node, "extra": value}).replace(json.dumps(marker), literal)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_with_non_finite())
def test_non_finite_numbers_anywhere_are_422(client, auth, document):
    body = json.loads(document)  # Python's parser takes them: the service must not
    body = {**PACK, "meta": body["meta"]}
    text = json.dumps(body)  # NaN/inf are written back as bare literals
    r = client.post("/api/v1/packs", content=text, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 422, (text, r.status_code, r.text)
    assert "not finite" in r.json()["error"]
    assert client.get(f"/api/v1/packs/{PACK['ref']}", headers=auth).status_code == 404


@pytest.mark.parametrize("literal", NON_FINITE)
@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/merge-patch+json", None]
)
def test_non_finite_numbers_in_every_json_body(client, user, auth, literal, content_type):
    """Any route, before authentication too, whatever JSON content type (or none)."""
    headers = {"Content-Type": content_type} if content_type else {}
    cases = [
        ("POST", "/auth/login", '{"login": "alice", "password": "x", "n": %s}', {}),
        ("POST", "/auth/refresh", '{"refresh_token": [%s]}', {}),
        ("POST", "/api/v1/packs", '{"ref": "p", "label": "l", "version": "1", "meta": {"a": [1, {"b": %s}]}}', {}),
        ("PUT", "/api/v1/packs/p", '{"meta": {"x": %s}}', auth),
        ("POST", "/api/v1/packs", '{"ref": "p", "label": "l", "version": "1", "meta": {"x": %s}}', auth),
    ]
    if content_type is None:
        client.headers.pop("content-type", None)
    for method, path, template, extra in cases:
        r = client.request(method, path, content=(template % literal).encode(), headers={**headers, **extra})
        assert r.status_code == 422, (method, path, r.status_code, r.text)
        assert "not finite" in r.json()["error"]


def test_finite_numbers_and_lookalikes_still_pass(client, auth):
    meta = {"big": 1e308, "small": -1e-320, "int": 10**30, "text": "NaN Infinity 1e999", "nested": [0.5, {"k": -2}]}
    r = client.post("/api/v1/packs", json={**PACK, "meta": meta}, headers=auth)
    assert r.status_code == 201, r.text
    stored = client.get("/api/v1/packs/hard_pack", headers=auth).json()["data"]["meta"]
    assert float(stored.pop("big")) == meta.pop("big")  # jsonb writes 1e308 out in digits: an int to Python
    assert stored == meta


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    yield b'{"login": "alice", "password": "'
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}'


def test_streamed_body_past_the_limit_is_413_before_authentication(client, db):
    """No Content-Length (a generator body goes out in chunks): the limit counts the bytes."""
    r = client.post("/auth/login", content=_chunks(3 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["error"].startswith("Request body too large")
    r = client.post("/api/v1/packs", content=_chunks(3 * 1024 * 1024), headers={"Content-Type": "text/plain"})
    assert r.status_code == 413


def test_streamed_body_under_the_limit_reaches_the_route(client, user):
    body = json.dumps(user).encode()
    r = client.post("/auth/login", content=iter([body[:5], body[5:]]), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text


def test_meta_and_tags_have_limits(client, auth):
    from attune.packs.schemas import META_MAX_BYTES, META_MAX_DEPTH, TAG_MAX_LENGTH, TAGS_MAX

    filler = "x" * (META_MAX_BYTES - len('{"a":""}'))
    assert client.post("/api/v1/packs", json={**PACK, "meta": {"a": filler}}, headers=auth).status_code == 201
    too_big = {"a": filler + "y"}
    deep: object = 1
    for _ in range(META_MAX_DEPTH + 1):  # meta itself is a level
        deep = {"d": deep}
    refused = [
        {"meta": too_big},
        {"meta": {"a": "é" * (META_MAX_BYTES // 2)}},  # bytes, not characters
        {"meta": deep},
        {"tags": ["t"] * (TAGS_MAX + 1)},
        {"tags": ["t" * (TAG_MAX_LENGTH + 1)]},
        {"tags": [""]},
    ]
    for change in refused:
        r = client.put("/api/v1/packs/hard_pack", json=change, headers=auth)
        assert r.status_code == 422, (list(change), r.text)
        r = client.post("/api/v1/packs", json={**PACK, "ref": "other", **change}, headers=auth)
        assert r.status_code == 422, (list(change), r.text)
    stored = client.get("/api/v1/packs/hard_pack", headers=auth).json()["data"]
    assert stored["meta"] == {"a": filler} and stored["tags"] == []


@contextmanager
def refusing_trigger(name: str, table: str, pg_raise: str, sqlite_raise: str | None = None) -> Iterator[None]:
    """A trigger refusing every INSERT into ``table``: on Postgres a plpgsql function that runs
    ``pg_raise``; on SQLite (``sqlite_raise``: its RAISE) a trigger body."""
    from sqlalchemy import text

    from attune.db.engine import get_engine

    with get_engine().begin() as conn:
        if EMBEDDED:
            assert sqlite_raise is not None
            conn.execute(text(f"CREATE TRIGGER {name} BEFORE INSERT ON {table} BEGIN SELECT {sqlite_raise}; END"))
        else:
            conn.execute(text(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                              f"$$ BEGIN {pg_raise}; END $$"))  # fmt: skip
            conn.execute(text(f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()"))
    try:
        yield
    finally:
        with get_engine().begin() as conn:
            conn.execute(text(f"DROP TRIGGER {name}" + ("" if EMBEDDED else f" ON {table}")))
            if not EMBEDDED:
                conn.execute(text(f"DROP FUNCTION {name}()"))


@pytest.fixture
def failing_job_insert(configured) -> Iterator[None]:
    """The database itself refuses to record jobs, with a message naming the statement's
    values: a real database error the API did not foresee."""
    with refusing_trigger(
        "refuse_jobs", "jobs", "RAISE EXCEPTION 'boom-%', NEW.pack_ref", "RAISE(ABORT, 'boom-refused')"
    ):
        yield


def test_database_error_is_internal_error_with_request_id_and_no_sql(client, auth, failing_job_insert, caplog):
    r = client.post(
        "/api/v1/packs", json={**PACK, "ref": "secret_ref_9"}, headers={**auth, "X-Request-ID": "trace-db-1"}
    )
    assert r.status_code == 500, r.text
    body = r.json()
    assert body == {"error": "Internal error (request id trace-db-1): the details are in the server log",
                    "request_id": "trace-db-1"}  # fmt: skip
    assert r.headers["x-request-id"] == "trace-db-1"
    assert not LEAKS.search(r.text) and "secret_ref_9" not in r.text
    # the details went to the log, under the request id
    logged = [rec for rec in caplog.records if rec.levelname == "ERROR" and rec.exc_info]
    assert logged and "boom-" in str(logged[-1].exc_info[1])
    assert client.get("/api/v1/packs/secret_ref_9", headers=auth).status_code == 404  # rolled back


@pytest.fixture
def data_error_on_pack_insert(configured) -> Iterator[None]:
    """Postgres refuses a pack's row with a data exception (SQLSTATE 22003, a number out of
    range): a value that validation let through and the database cannot store."""
    with refusing_trigger("refuse_packs", "packs", "RAISE EXCEPTION 'boom-%', NEW.ref USING ERRCODE = '22003'"):
        yield


@pytest.mark.server_only
def test_value_postgres_refuses_is_422_without_sql(client, auth, data_error_on_pack_insert):
    """A value the database refuses (a data exception): 422, a wrong value, as the README
    says (found from outside: it was 400, which the README keeps for bodies that are not
    UTF-8), with nothing of the statement in the answer."""
    r = client.post("/api/v1/packs", json=PACK, headers=auth)
    assert r.status_code == 422, r.text
    assert r.json() == {"error": "Invalid value: the database cannot store it (a NUL character, or a number too large)"}
    assert not LEAKS.search(r.text)


UNSTORABLE = {"\\u0000": "NUL character", "\\ud800": "lone surrogate", "\\uDFFF": "lone surrogate"}


@pytest.mark.parametrize("escape", list(UNSTORABLE))
@pytest.mark.parametrize(
    "template",
    [
        '{"ref": "nul_pack", "label": "L", "version": "1.0.0", "description": "a%sb"}',
        '{"ref": "nul_pack", "label": "L", "version": "1.0.0", "meta": {"k": ["x", {"y": "a%s"}]}}',
        '{"ref": "nul_pack", "label": "L", "version": "1.0.0", "meta": {"k%s": 1}}',
        '{"ref": "nul_pack", "label": "L%s", "version": "1.0.0"}',
    ],
)
def test_strings_no_column_can_store_are_422_in_both_modes(client, auth, template, escape):
    """A NUL character or a lone surrogate in any string or key of a JSON body: Postgres
    refused them (the database's 422, whose words name neither) while the embedded mode's
    SQLite stored them. Both modes now refuse them before the route, saying which."""
    r = client.post("/api/v1/packs", content=(template % escape).encode(),
                    headers={**auth, "Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 422, r.text
    assert UNSTORABLE[escape] in r.json()["error"], r.text
    assert client.get("/api/v1/packs/nul_pack", headers=auth).status_code == 404


@st.composite
def _meta_with_unstorable(draw: st.DrawFn) -> tuple[object, str]:
    """A pack's meta (nested mappings and lists of text) with one NUL or lone surrogate put
    into one of its strings or keys, at any place in it; and the error's words for it."""
    bad = draw(st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"]))
    words = "NUL character" if bad == "\x00" else "lone surrogate"
    leaf = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=10)
    meta = draw(st.recursive(st.dictionaries(leaf, leaf, min_size=1, max_size=3),
                             lambda inner: st.dictionaries(leaf, st.one_of(inner, st.lists(inner, max_size=2)),
                                                           min_size=1, max_size=3),
                             max_leaves=8))  # fmt: skip
    strings: list[tuple[object, object, bool]] = []  # (container, key or index, whether the key itself)
    stack: list[object] = [meta]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)  # type: ignore[union-attr]
        for k, v in list(items):
            if isinstance(node, dict):
                strings.append((node, k, True))
            if isinstance(v, str):
                strings.append((node, k, False))
            elif isinstance(v, (dict, list)):
                stack.append(v)
    node, k, is_key = draw(st.sampled_from(strings))
    old = str(k) if is_key else node[k]  # type: ignore[index]
    at = draw(st.integers(0, len(old)))
    new = old[:at] + bad + old[at:]
    if is_key:
        node[new] = node.pop(k)  # type: ignore[union-attr]
    else:
        node[k] = new  # type: ignore[index]
    return meta, words


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_meta_with_unstorable())
def test_an_unstorable_character_anywhere_in_a_body_is_422(client, auth, case):
    meta, words = case
    text = json.dumps({"ref": "nul_pack", "label": "L", "version": "1.0.0", "meta": meta})  # escapes them
    r = client.post("/api/v1/packs", content=text.encode(), headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 422, (text, r.text)
    assert words in r.json()["error"], r.text
    assert client.get("/api/v1/packs/nul_pack", headers=auth).status_code == 404


def test_escapes_of_storable_characters_still_pass(client, auth):
    """A pair of surrogates (one character), other escapes, and the six characters \\u0000
    written as text (its backslash escaped) are stored as they are."""
    body = '{"ref": "esc_pack", "label": "\\u00e9\\ud83d\\ude00", "version": "1.0.0", "meta": {"\\u00fc": "\\\\u0000\\u0001"}}'
    r = client.post("/api/v1/packs", content=body.encode(), headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["label"] == "\u00e9\U0001f600" and data["meta"] == {"\u00fc": "\\u0000\u0001"}


def test_unforeseen_exception_is_internal_error_with_request_id(client, auth, monkeypatch):
    from attune.packs import service

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("SELECT password_hash FROM users WHERE login = 'alice'")

    monkeypatch.setattr(service, "list_packs", broken)
    r = client.get("/api/v1/packs", headers=auth)
    assert r.status_code == 500
    request_id = r.headers["x-request-id"]
    assert r.json() == {
        "error": f"Internal error (request id {request_id}): the details are in the server log",
        "request_id": request_id,
    }
    assert not LEAKS.search(r.text) and "password_hash" not in r.text


@pytest.mark.parametrize("path", ["/api/v1/packs/sync", "/api/v1/packs"])
def test_json_nested_too_deeply_is_a_422_that_says_so(client, auth, path):
    """Valid JSON nested deeper than Python's parser goes got FastAPI's generic 400 "There was
    an error parsing the body", where the README promises 400 for a body that is not UTF-8
    only and 422 for JSON the service cannot read (found from outside, on the bulk sync)."""
    deep = '{"packs": ' + "[" * 100_000 + "]" * 100_000 + "}"
    r = client.post(path, content=deep, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "Malformed JSON body: nested too deeply"
    not_utf8 = client.post(path, content=b'{"packs": ["\xff"]}', headers={**auth, "Content-Type": "application/json"})
    assert not_utf8.status_code == 400, not_utf8.text
    assert not_utf8.json()["error"] == "The body is not UTF-8 text"


@pytest.mark.parametrize("path", ["/api/v1/workflows/q_0", "/api/v1/workflows/q_0/revisions"])
def test_a_malformed_workflow_ref_is_named_as_one(client, auth, path):
    """Found from outside: 'q_0' (no '.name') was refused as an invalid *pack* ref, though
    it is a valid pack ref."""
    r = client.get(path, headers=auth)
    assert r.status_code == 422
    assert r.json()["error"].startswith("Invalid workflow ref 'q_0': <pack ref>.<workflow name>"), r.text


def test_the_logout_documentation_says_what_logout_does(client):
    """The OpenAPI document said access tokens stay valid after a logout; they stop (401)."""
    text = client.get("/openapi.json").json()["paths"]["/auth/logout"]["post"]["description"]
    assert "stay valid" not in text and "stop working" in text


@pytest.mark.parametrize("media", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_json_body_sent_as_another_type_says_so(client, auth, media):
    """Found from outside: a valid JSON object sent as text/plain got 'Invalid body: Input
    should be a valid dictionary', which does not say what was wrong."""
    body = json.dumps({"ref": "typed", "label": "t", "version": "1"})
    r = client.post("/api/v1/packs", content=body, headers={**auth, "Content-Type": media})
    assert r.status_code == 422
    assert r.json()["error"] == f"Invalid body: send JSON with 'Content-Type: application/json' (got '{media}')"
    r = client.post("/api/v1/packs", content=body, headers={**auth, "Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/packs/hard_pack/workflows/sync",
        "/api/v1/packs/hard_pack/workflows/validate",
        "/api/v1/packs/hard_pack/versions/00000000-0000-0000-0000-000000000000/activate",
    ],
)
def test_a_wait_that_is_not_a_finite_number_says_so(client, auth, path, value):
    """``wait=nan`` was told "should be less than or equal to 3600" (NaN compares false with
    every bound): it is now told that it must be a finite number, like an infinite one."""
    r = client.post(path, params={"wait": value}, headers=auth)
    assert r.status_code == 422, r.text
    assert "finite number" in r.text, r.text
    assert "less than or equal" not in r.text
