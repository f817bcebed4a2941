"""An action whose ref another pack holds is never taken over (actions/repository.py); the
sync's result listed it under ``actions.registered`` all the same, with no error. Such a
row comes from before refs had to start with their pack's ref (a database upgraded in
place); here it is written as such a deployment left it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.e2e.test_sync import create_pack, sync

pytestmark = pytest.mark.e2e


def _hold(ref: str, by_pack: str) -> None:
    from attune.db.engine import session_scope

    with session_scope() as s:
        s.execute(
            text("UPDATE actions SET ref = :ref WHERE pack_id = (SELECT id FROM packs WHERE ref = :pack)"),
            {"ref": ref, "pack": by_pack},
        )


def test_an_action_ref_held_by_another_pack_is_an_error_not_registered(worker, client, auth, packs) -> None:
    packs.make("holder", {}, {"echo": "runner_type: shell\n"})
    create_pack(client, auth, "holder")
    _hold("taker.x", "holder")  # holder's one action row now says taker.x
    packs.make("taker", {}, {"echo": "runner_type: shell\n", "x": "runner_type: shell\n"})
    create_pack(client, auth, "taker")

    for _ in range(2):  # the second sync reads again (nothing stored to replay) and says the same
        data = sync(client, auth, "taker").json()["data"]
        assert data["actions"]["registered"] == ["taker.echo"]
        assert data["actions"]["errors"] == [
            "Action taker.x (actions/x.yaml): Action ref 'taker.x' is registered by another pack: "
            "it stays that pack's, this file is not registered"
        ]
        [diag] = data["actions"]["diagnostics"]["taker.x"]
        assert (diag["code"], diag["severity"], diag["file"]) == ("ref-taken", "error", "actions/x.yaml")
    got = client.get("/api/v1/packs/holder", headers=auth).json()["data"]
    assert got["ref"] == "holder"

    # the holder's file edited and synced: it registers holder.echo, the old row goes; the
    # taker's file then registers
    packs.make("holder", {}, {"echo": "runner_type: shell\ndescription: edited\n"})
    sync(client, auth, "holder")
    data = sync(client, auth, "taker").json()["data"]
    assert data["actions"]["registered"] == ["taker.echo", "taker.x"]
    assert data["actions"]["errors"] == [] and data["actions"]["diagnostics"] == {}
