from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from attune.system.health import check_broker, check_database
from attune_api.deps import SettingsDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "A dependency is down"}})
async def ready(settings: SettingsDep) -> JSONResponse:
    """The database and the broker are reachable."""
    db = await run_in_threadpool(check_database)
    broker = await run_in_threadpool(check_broker, settings)
    checks = {"database": "ok" if db is None else db, "broker": "ok" if broker is None else broker}
    down = [name for name, err in (("database", db), ("broker", broker)) if err is not None]
    if down:
        return JSONResponse({"error": f"Not ready: {' and '.join(down)} unreachable", "checks": checks}, 503)
    return JSONResponse({"status": "ready", "checks": checks})
