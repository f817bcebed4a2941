"""A task's transitions: ``next``, and the legacy fields and decisions folded into it."""

from __future__ import annotations

from typing import Any

from attune.workflows.diagnostics import Path, render_path
from attune.workflows.rules import (
    CHART_META,
    DECISION_FIELDS,
    LEGACY_TRANSITIONS,
    MISSING,
    NOT_NEXT_TRANSITIONS,
    TRANSITION_FIELDS,
    clean,
    strip_braces,
    var_name_ok,
)
from attune.workflows.walker import Walker


class TransitionWalker(Walker):
    # -- transitions -------------------------------------------------------
    def target(self, value: Any, path: Path, label: str, siblings: dict[str, int]) -> str | None:
        value = self.text(value, path)
        if type(value) is not str or not value:
            self.wrong_type(path, "a task name", value)
            return None
        if value not in siblings:
            self.err("undefined-task", f"{label} transitions to undefined task '{value}'", path)
        return value

    def transitions(
        self, task: dict[str, Any], path: Path, label: str, siblings: dict[str, int]
    ) -> list[dict[str, Any]]:
        has_next = "next" in task
        if has_next and NOT_NEXT_TRANSITIONS.isdisjoint(task):
            return self.next_list(task["next"], (*path, "next"), label, siblings)
        legacy = [k for k in LEGACY_TRANSITIONS if k in task]
        for k in legacy:
            note = " and ignored because 'next' is present" if has_next else ": use 'next'"
            self.warn("legacy-transition", f"{label}: field '{k}' is deprecated{note}", (*path, k), key=True)
        if "decision" in task:
            note = " and ignored because 'next' is present" if has_next else ": use 'next' with 'when'"
            self.warn(
                "legacy-transition",
                f"{label}: field 'decision' is deprecated{note}",
                (*path, "decision"),
                key=True,
            )
        if "publish" in task:
            note = (
                " and ignored because 'next' is present"
                if has_next
                else ": moved onto its success transition (publish belongs in 'next')"
            )
            self.warn(
                "legacy-transition", f"{label}: task-level 'publish' is deprecated{note}", (*path, "publish"), key=True
            )

        if has_next:
            return self.next_list(task["next"], (*path, "next"), label, siblings)

        out: list[dict[str, Any]] = []
        for k in legacy:
            target = self.target(task[k], (*path, k), label, siblings)
            if target is not None:
                cond = LEGACY_TRANSITIONS[k]
                out.append({"when": cond, "publish": [], "do": [target]} if cond else {"publish": [], "do": [target]})
        if "decision" in task:
            out.extend(self.decision(task["decision"], (*path, "decision"), label, siblings))
        if "publish" in task:
            self.legacy_publish(self.publish(task["publish"], (*path, "publish")), out)
        return out

    @staticmethod
    def legacy_publish(pub: list[str | dict[str, Any]], out: list[dict[str, Any]]) -> None:
        """A task-level publish goes onto the first success transition, else onto a new
        publish-only one when there is no transition, else onto the first (Attune's
        normalize_transitions, parser.rs)."""
        if not pub:
            return
        for tr in out:
            if "succeeded()" in (tr.get("when") or ""):
                tr["publish"] = pub
                return
        if out:
            out[0]["publish"] = pub
        else:
            out.append({"when": "{{ succeeded() }}", "publish": pub, "do": []})

    def next_list(self, nxt: Any, path: Path, label: str, siblings: dict[str, int]) -> list[dict[str, Any]]:
        if nxt is None:
            return []
        if type(nxt) is not list:
            self.wrong_type(path, "a list of transitions", nxt)
            return []
        out = []
        for i, tr in enumerate(nxt):
            if type(tr) is not dict:
                self.wrong_type((*path, i), "a transition mapping", tr)
                continue
            if not TRANSITION_FIELDS.issuperset(tr):
                for key in tr:
                    if key not in TRANSITION_FIELDS:
                        self.unknown_key(key, (*path, i), f"in {label}'s transition")
            item: dict[str, Any] = {}
            when = tr.get("when", MISSING)
            if when is not MISSING:
                if type(when) is str and self.sound_expression(when):
                    item["when"] = when  # the common case, without building its path
                else:
                    item["when"] = self.check_expression(when, (*path, i, "when"))
            pub = tr.get("publish")
            if pub is None:
                item["publish"] = []
            elif type(pub) is list and self.sound_publish(pub):
                item["publish"] = list(pub)  # what ``publish`` returns when it has nothing to say
            else:
                item["publish"] = self.publish(pub, (*path, i, "publish"))
            do = tr.get("do")
            if do is None:
                item["do"] = []
            elif type(do) is not list:
                # Attune's parser reads `do` as a list only ("do not use scalar do")
                self.wrong_type((*path, i, "do"), "a list of task names (write do: [name])", do)
                item["do"] = []
            else:
                for t in do:
                    if type(t) is not str or t not in siblings:  # report, with paths
                        item["do"] = [
                            u for j, t in enumerate(do) if (u := self.target(t, (*path, i, "do", j), label, siblings))
                        ]
                        break
                else:
                    item["do"] = list(do)
            if CHART_META in tr:
                self.check_values(tr[CHART_META], (*path, i, CHART_META))
                item[CHART_META] = tr[CHART_META]
            out.append(item)
        return out

    def sound_publish(self, pub: list[Any]) -> bool:
        """Whether ``publish`` keeps every item as it is, silently."""
        for item in pub:  # noqa: SIM110 - a loop is faster than all() on this hot path
            if not self.silent_item(item):
                return False
        return True

    def silent_item(self, item: Any) -> bool:
        """A ``{name: value}`` that ``publish`` keeps as it is, with nothing to report."""
        if type(item) is not dict or len(item) != 1:
            return False
        ((k, v),) = item.items()
        return type(k) is str and var_name_ok(k) and clean(v, 0, self.names)

    def publish(self, pub: Any, path: Path) -> list[str | dict[str, Any]]:
        if pub is None:
            return []
        if type(pub) is not list:
            # Attune's parser reads `publish` as a list only
            self.wrong_type(path, "a list of names or {name: value} (write publish: [{name: value}])", pub)
            return []
        out: list[str | dict[str, Any]] = []
        for i, item in enumerate(pub):
            if self.silent_item(item):
                out.append(item)  # the common case
                continue
            p = (*path, i)
            if type(item) is str:
                if not var_name_ok(item):  # a name published from the result
                    self.err(
                        "invalid-name",
                        f"Published name '{item}' may only hold letters, digits, '_' and '-'",
                        p,
                    )
                out.append(item)
            elif type(item) is dict and len(item) == 1:
                ((k, v),) = item.items()
                if type(k) is not str or not var_name_ok(k):
                    self.err(
                        "invalid-name",
                        f"Published name '{k}' may only hold letters, digits, '_' and '-'",
                        (*p, k),
                        key=True,
                    )
                self.check_values(v, (*p, k), names=True)
                out.append(item)
            else:
                self.wrong_type(p, "a name or a one-key mapping {name: value}", item)
        return out

    def decision(self, dec: Any, path: Path, label: str, siblings: dict[str, int]) -> list[dict[str, Any]]:
        if type(dec) is not list:
            self.wrong_type(path, "a list of branches", dec)
            return []
        branches: list[tuple[str | None, str]] = []
        default: str | None = None
        defaults = 0
        for i, br in enumerate(dec):
            p = (*path, i)
            if type(br) is not dict:
                self.wrong_type(p, "a branch mapping {when, next} or {default}", br)
                continue
            for key in br:
                if key not in DECISION_FIELDS:
                    self.unknown_key(key, p, f"in {label}'s decision")
            is_default = "default" in br
            if is_default:
                defaults += 1
                if defaults == 2:
                    self.err("decision-defaults", f"{label}: decision has more than one default branch", p)
                target_value = br.get("next", br["default"])
                target = self.target(target_value, (*p, "next" if "next" in br else "default"), label, siblings)
                if target and defaults == 1:
                    default = target
            elif "when" not in br:
                self.err("decision-branch", f"{label}: decision branch {i} has neither 'when' nor 'default'", p)
            else:
                self.check_expression(br["when"], (*p, "when"))
                if "next" not in br:
                    self.err("missing-field", f"Missing required field: {render_path((*p, 'next'))}", p)
                    continue
                target = self.target(br["next"], (*p, "next"), label, siblings)
                if target and type(br["when"]) is str:
                    branches.append((br["when"], target))
        out: list[dict[str, Any]] = [{"when": w, "publish": [], "do": [t]} for w, t in branches]
        if default is not None:
            if branches:
                others = " or ".join(f"({strip_braces(w)})" for w, _ in branches if w)
                out.append({"when": f"{{{{ not ({others}) }}}}", "publish": [], "do": [default]})
            else:
                out.append({"publish": [], "do": [default]})
        return out
