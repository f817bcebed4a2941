"""What happens after a pack is saved (the auto-sync seam, SPEC section 2).

Called after the commit, never before, so a worker never sees a pack that
does not exist yet. Returns text appended to the response message.
"""

from __future__ import annotations

from attune.packs.models import Pack
from attune.users.models import User


def after_pack_saved(pack: Pack, user: User) -> str:
    return ""
