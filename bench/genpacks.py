#!/usr/bin/env python3
"""The project's pack generator: synthetic pack trees for `make bench` and the scale tests.

    python bench/genpacks.py OUT --packs 3 --workflows 2000 --actions 40 --invalid 0.02 --seed 7

Writes ``OUT/<prefix>_<n>/`` for each pack: ``pack.yaml``, ``actions/act_<i>.yaml`` and
``workflows/wf_<i>.yaml`` (every tenth ``.yml``). A workflow is about 5 KB, as real ones
are: a parameter schema, vars, 5 to 11 tasks calling the pack's actions with inputs built
from expressions, retries, a ``with_items`` loop, a parallel block, ``next`` transitions
that publish results, and an output map. ``--invalid`` is the share of workflows broken on
purpose, one way each (``BROKEN``), so that the error paths are measured too:

- ``unknown_action``: one task calls ``<pack>.no_such_action``;
- ``dangling``: the second task's success transition goes to ``nowhere``;
- ``missing_version``: no ``version`` line;
- ``bad_yaml``: an unclosed flow sequence (``- name: [unclosed``) right after ``tasks:``.

Deterministic for a given seed; standard library only (runs before the project is installed).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

BROKEN = ("unknown_action", "dangling", "missing_version", "bad_yaml")
VERBS = ("fetch", "build", "check", "notify", "deploy", "render", "archive", "scan", "sync", "report")


def action_yaml(pack: str, name: str) -> str:
    return "\n".join(
        [
            f"ref: {pack}.{name}",
            f'label: "{name.replace("_", " ").capitalize()}"',
            f'description: "Generated action {name} of {pack}"',
            "runner_type: shell",
            f"entry_point: scripts/{name}.sh",
            "parameters:",
            "  type: object",
            "  properties:",
            "    message: {type: string}",
            "    target: {type: string}",
            "    count: {type: integer, default: 1, minimum: 1}",
            "    dry_run: {type: boolean, default: false}",
            "",
        ]
    )


def _task(rng: random.Random, pack: str, name: str, action: str, i: int) -> list[str]:
    lines = [
        f"  - name: {name}",
        f"    action: {pack}.{action}",
        "    input:",
        f'      message: "{{{{ parameters.environment }}}}: step {i} of {{{{ workflow.name }}}}"',
        '      target: "{{ parameters.target }}"',
        f"      count: {rng.randint(1, 9)}",
        '      dry_run: "{{ parameters.dry_run }}"',
    ]
    if i % 4 == 2:
        lines += ["    retry:", "      count: 3", "      delay: 2", "      backoff: exponential", "      max_delay: 60"]
    if i % 6 == 3:
        lines += ['    with_items: "{{ vars.hosts }}"', "    concurrency: 5", "    batch_size: 10"]
    if i % 5 == 1:
        lines.append(f"    timeout: {rng.choice((30, 60, 300, 900))}")
    return lines


def workflow_yaml(rng: random.Random, pack: str, name: str, actions: list[str], broken: str | None) -> str:
    n = rng.randint(5, 11)
    names = [f"{rng.choice(VERBS)}_{i}" for i in range(n)]
    lines = [
        f"ref: {pack}.{name}",
        f'label: "{name.replace("_", " ").capitalize()}"',
        f'description: "Generated workflow {name}: {n} tasks, retries, a loop, a parallel block"',
    ]
    if broken != "missing_version":
        lines.append(f'version: "{rng.randint(1, 3)}.{rng.randint(0, 9)}.{rng.randint(0, 30)}"')
    lines += [
        "tags: [generated, bench, " + rng.choice(("deploy", "ops", "report", "maintenance")) + "]",
        "parameters:",
        "  type: object",
        "  properties:",
        "    target: {type: string, description: Host or service to act on}",
        "    environment: {type: string, enum: [dev, staging, production], default: dev}",
        "    dry_run: {type: boolean, default: false}",
        "    max_failures: {type: integer, minimum: 0, default: 2}",
        "  required: [target]",
        "output:",
        "  type: object",
        "  properties:",
        "    summary: {type: string}",
        "    failures: {type: integer}",
        "vars:",
        "  hosts: [alpha, beta, gamma]",
        "  failures: 0",
        "  results: []",
        "tasks:",
    ]
    for i, task in enumerate(names):
        action = "no_such_action" if broken == "unknown_action" and i == n // 2 else rng.choice(actions)
        lines += _task(rng, pack, task, action, i)
        fan = f"fan_{i}" if i == n // 3 else None
        if i + 1 < n:
            following = "nowhere" if broken == "dangling" and i == 1 else names[i + 1]
            lines += [
                "    next:",
                '      - when: "{{ succeeded() }}"',
                "        publish:",
                f'          - result_{i}: "{{{{ result().stdout }}}}"',
                '          - failures: "{{ vars.failures }}"',
                "        do:",
                f"          - {following}",
                *([f"          - {fan}"] if fan else []),
                '      - when: "{{ failed() and vars.failures < parameters.max_failures }}"',
                "        do:",
                f"          - {names[-1]}",
            ]
        if fan:  # a parallel block: its sub-tasks are a list of their own
            lines += [
                f"  - name: {fan}",
                "    type: parallel",
                "    tasks:",
                *(f"      - {{name: branch_{b}, action: {pack}.{rng.choice(actions)}}}" for b in range(3)),
            ]
    lines += [
        "output_map:",
        '  summary: "{{ vars.results }}"',
        '  failures: "{{ vars.failures }}"',
        "",
    ]
    text = "\n".join(lines)
    if broken == "bad_yaml":
        text = text.replace("tasks:\n", "tasks:\n  - name: [unclosed\n", 1)
    return text


def generate(
    out: Path, *, packs: int = 1, workflows: int = 1000, actions: int = 40, invalid: float = 0.0, seed: int = 7,
    prefix: str = "bench",
) -> list[Path]:  # fmt: skip
    """Writes the packs; returns their directories."""
    rng = random.Random(seed)
    made = []
    for p in range(packs):
        pack = f"{prefix}_{p}"
        root = out / pack
        (root / "actions").mkdir(parents=True, exist_ok=True)
        (root / "workflows").mkdir(parents=True, exist_ok=True)
        (root / "pack.yaml").write_text(
            f'ref: {pack}\nlabel: "Generated pack {p}"\ndescription: "Made by bench/genpacks.py"\nversion: "1.0.0"\n'
        )
        action_names = [f"act_{i}" for i in range(max(actions, 1))]
        for name in action_names:
            (root / "actions" / f"{name}.yaml").write_text(action_yaml(pack, name))
        for w in range(workflows):
            name = f"wf_{w:05d}"
            broken = rng.choice(BROKEN) if rng.random() < invalid else None
            ext = ".yml" if w % 10 == 9 else ".yaml"
            (root / "workflows" / (name + ext)).write_text(workflow_yaml(rng, pack, name, action_names, broken))
        made.append(root)
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--packs", type=int, default=1)
    ap.add_argument("--workflows", type=int, default=1000, help="workflows per pack")
    ap.add_argument("--actions", type=int, default=40, help="actions per pack")
    ap.add_argument("--invalid", type=float, default=0.0, help="share of workflows broken on purpose (0..1)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--prefix", default="bench", help="packs are named <prefix>_<n>")
    a = ap.parse_args()
    generate(a.out, packs=a.packs, workflows=a.workflows, actions=a.actions, invalid=a.invalid, seed=a.seed,
             prefix=a.prefix)  # fmt: skip


if __name__ == "__main__":
    main()
