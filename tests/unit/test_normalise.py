"""The stored definition is the normalised form (SPEC section 3)."""

from __future__ import annotations

from attune.workflows.checker import Known, check_workflow
from attune.workflows.diagnostics import render_path

KNOWN = {"p.echo", "p.deploy"}


def _check(text: str, name: str = "wf"):
    return check_workflow(text.encode(), file=f"workflows/{name}.yaml", pack_ref="p", name=name, known=Known(KNOWN))


def test_legacy_transitions_become_next():
    r = _check(
        """
version: "1"
tasks:
  - name: a
    action: p.echo
    on_success: b
    on_failure: c
    on_complete: d
    on_timeout: c
  - {name: b, action: p.echo}
  - {name: c, action: p.echo}
  - {name: d, action: p.echo}
"""
    )
    assert r.ok
    assert r.definition["tasks"][0]["next"] == [
        {"when": "{{ succeeded() }}", "publish": [], "do": ["b"]},
        {"when": "{{ failed() }}", "publish": [], "do": ["c"]},
        {"publish": [], "do": ["d"]},
        {"when": "{{ timed_out() }}", "publish": [], "do": ["c"]},
    ]
    assert "on_success" not in r.definition["tasks"][0]
    assert {d.code for d in r.warnings} == {"legacy-transition"}


def test_next_wins_over_legacy():
    r = _check(
        """
version: "1"
tasks:
  - name: a
    action: p.echo
    on_success: b
    next:
      - when: "{{ failed() }}"
        do: [c]
  - {name: b, action: p.echo}
  - {name: c, action: p.echo}
"""
    )
    assert r.definition["tasks"][0]["next"] == [{"when": "{{ failed() }}", "publish": [], "do": ["c"]}]
    assert "ignored because 'next' is present" in r.warnings[0].message


def test_decision_becomes_conditional_next():
    r = _check(
        """
version: "1"
tasks:
  - name: a
    action: p.echo
    decision:
      - when: "{{ x == 1 }}"
        next: b
      - when: "y > 2"
        next: c
      - default: d
  - {name: b, action: p.echo}
  - {name: c, action: p.echo}
  - {name: d, action: p.echo}
"""
    )
    assert r.ok, r.diagnostics
    assert r.definition["tasks"][0]["next"] == [
        {"when": "{{ x == 1 }}", "publish": [], "do": ["b"]},
        {"when": "y > 2", "publish": [], "do": ["c"]},
        {"when": "{{ not ((x == 1) or (y > 2)) }}", "publish": [], "do": ["d"]},
    ]


def test_defaults_filled_and_unknown_dropped():
    r = _check(
        """
version: "1"
colour: blue
tasks:
  - name: a
    action: p.echo
    flavour: vanilla
"""
    )
    d = r.definition
    assert d["ref"] == "p.wf" and d["name"] == "wf" and d["label"] == "wf"
    assert d["cancellation_policy"] == "allow_finish"
    assert d["tags"] == [] and d["vars"] == {} and d["output_map"] == {}
    assert "colour" not in d
    assert d["tasks"] == [{"name": "a", "type": "action", "action": "p.echo", "input": {}, "next": []}]


def test_do_string_and_publish_mapping_are_refused_as_attune_refuses_them():
    # Attune's parser.rs reads TaskTransition.do as Option<Vec<String>> and publish as
    # Vec<PublishDirective>: a scalar do and a mapping publish do not parse there
    # (docs/agent-personas/workflow-author.md: "do not use scalar do").
    r = _check(
        """
version: "1"
tasks:
  - name: a
    action: p.echo
    next:
      - publish: {x: "{{ result() }}"}
        do: b
  - {name: b, action: p.echo}
"""
    )
    assert r.definition is None
    assert sorted((d.code, render_path(d.path)) for d in r.errors) == [
        ("type", "tasks[0].next[0].do"),
        ("type", "tasks[0].next[0].publish"),
    ]


def test_definition_is_plain_json():
    import json

    r = _check(
        """
version: "1"
vars:
  day: 2024-01-01
  when: 12:30:00
tasks:
  - {name: a, action: p.echo, input: {n: 0x1F, f: 1.5e3, none: ~}}
"""
    )
    assert r.ok
    assert json.loads(json.dumps(r.definition, allow_nan=False)) == r.definition
    assert r.definition["vars"]["day"] == "2024-01-01"


def test_parallel_subtasks_normalised_recursively():
    r = _check(
        """
version: "1"
tasks:
  - name: par
    type: parallel
    tasks:
      - {name: x, action: p.echo, on_success: y}
      - {name: y, action: p.deploy}
"""
    )
    assert r.ok
    sub = r.definition["tasks"][0]["tasks"]
    assert sub[0]["next"] == [{"when": "{{ succeeded() }}", "publish": [], "do": ["y"]}]
    assert "action" not in r.definition["tasks"][0]
