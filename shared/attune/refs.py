"""What a valid pack ref is, defined once (SPEC section 2): the loader, the API's path and
query parameters, the workflow-ref parameter and the error messages all import it."""

from __future__ import annotations

import re

PACK_REF_MAX = 100
# A lowercase letter, then lowercase letters, digits, '_' or '-'.
_PACK = r"[a-z][a-z0-9_-]*"
# For pydantic and FastAPI (a Rust regex engine: '$' is the end of the text there).
PACK_REF_PATTERN = rf"^{_PACK}$"
# For Python: use with fullmatch ('$' would also match before a final newline).
PACK_REF = re.compile(rf"[a-z][a-z0-9_-]{{0,{PACK_REF_MAX - 1}}}")
PACK_REF_HELP = (
    "must start with a lowercase letter and contain only lowercase letters, digits, '_' or '-' "
    f"(at most {PACK_REF_MAX} characters)"
)
PACK_REF_DESCRIPTION = "Pack reference: a lowercase letter, then lowercase letters, digits, '_' or '-'"
# A workflow ref: <pack ref>.<name>, the name being the workflow file's stem.
WORKFLOW_NAME_MAX = 200
WORKFLOW_REF_PATTERN = rf"^{_PACK}\.[A-Za-z0-9_][A-Za-z0-9_-]*$"
WORKFLOW_REF_MAX = PACK_REF_MAX + 1 + WORKFLOW_NAME_MAX


def is_pack_ref(text: str) -> bool:
    return PACK_REF.fullmatch(text) is not None
