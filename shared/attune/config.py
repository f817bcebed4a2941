"""Settings: ``config.yaml`` overridden by ``ATTUNE__`` environment variables.

The file is read from ``$ATTUNE_CONFIG`` (else ``./config.yaml`` if it exists).
Environment variables use ``__`` between nesting levels, so
``ATTUNE__DATABASE__URL`` sets ``database.url``. Names are part of the product
contract (SPEC section 6); do not rename them.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEV_SECRET_NOTICE = "development secret (random per process; set ATTUNE__AUTH__JWT_SECRET to keep tokens)"
# Secrets that are obviously placeholders; refused in production.
_PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev", "development", "CHANGE_ME"}


class DatabaseSettings(BaseModel):
    # Empty: the embedded SQLite database ``attune.db`` under ``data_dir`` (no server).
    url: str = ""
    # Connections each process keeps open, and how many more it may open in a burst.
    pool_size: int = Field(default=10, ge=1, le=200)
    max_overflow: int = Field(default=10, ge=0, le=1000)
    # How long a thread waits for a free connection before the request fails with 503.
    pool_timeout_seconds: float = Field(default=30.0, gt=0)
    echo: bool = False

    @property
    def pool_capacity(self) -> int:
        """Connections one process may hold at once."""
        return self.pool_size + self.max_overflow


class CelerySettings(BaseModel):
    # Empty: Celery's filesystem broker under ``data_dir`` (no server; one machine).
    broker_url: str = ""
    # Empty: the broker's Redis when the broker is Redis, else a SQLite file under ``data_dir``.
    result_backend: str = ""
    # How long the manual sync/validate endpoints wait for the worker before
    # answering 202 with the job id to poll.
    result_wait_seconds: float = Field(default=120.0, gt=0)
    task_queue: str = "attune"
    # A task whose worker vanished (killed, host lost) goes back to the queue after this
    # long (Redis broker); sync tasks and chunks last seconds, far less than this.
    visibility_timeout_seconds: int = Field(default=900, ge=30)
    # A job still queued or running this long after it was created is marked failed
    # (no worker will finish it); checked by the API every sweep interval.
    job_stale_seconds: int = Field(default=3600, ge=60)
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    # A worker holds a lease on each task it runs, renewed every lease_renew_seconds while
    # it works. A lease not renewed for lease_seconds (its worker's host died) is taken back
    # by any live worker or the API, which look every lease_sweep_seconds, and its task is
    # sent again: a dead host's job resumes within lease_seconds + lease_sweep_seconds.
    lease_seconds: float = Field(default=30.0, ge=1)
    lease_renew_seconds: float = Field(default=10.0, gt=0)
    lease_sweep_seconds: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _renewed_within_the_lease(self) -> CelerySettings:
        if self.lease_renew_seconds >= self.lease_seconds:
            raise ValueError("celery.lease_renew_seconds must be shorter than celery.lease_seconds")
        return self


class AuthSettings(BaseModel):
    jwt_secret: str = ""
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    access_token_ttl_seconds: int = Field(default=3600, ge=10)
    refresh_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # Failed logins allowed per login and client address within the lockout window.
    login_max_failures: int = Field(default=10, ge=1)
    login_lockout_seconds: int = Field(default=300, ge=1)


class ApiSettings(BaseModel):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)
    # Largest request body accepted, in bytes (counted as they arrive: 413 past it).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # A request body must arrive whole within this many seconds (408 otherwise): a client
    # that announces a body and sends it a byte at a time does not hold a connection forever.
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    # Admission control: requests doing database work at once in one API process
    # (0: the database pool's capacity, pool_size + max_overflow, so that none waits for
    # a connection). Others wait in a queue; a sync or validate waiting for its worker
    # holds no place in it.
    max_concurrency: int = Field(default=0, ge=0, le=1000)
    # Requests waiting for admission beyond this many are refused at once (503, Retry-After).
    max_queue: int = Field(default=1000, ge=0)
    # Logins (one argon2 check each, about 0.5 s of CPU) at once, in their own line so that
    # a burst of logins never takes the places of other requests (0: the number of CPUs).
    max_concurrent_logins: int = Field(default=0, ge=0, le=1000)
    # A request still waiting after this many seconds is refused (503, Retry-After).
    queue_timeout_seconds: float = Field(default=30.0, gt=0)
    # The proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated
    # addresses or networks, "*" for any): the client address that login and API-key
    # throttling count, and that keys record, is then the one the proxy names. Empty (the
    # default): none; the address is the connection's (uvicorn's own default believed
    # 127.0.0.1, so that any local client chose its address, and its throttling budget).
    forwarded_allow_ips: str = Field(default="", max_length=4096)


class SyncSettings(BaseModel):
    # Packs with more workflow files than this are split into chunks of this
    # size, checked in parallel by the workers, then registered in one step.
    chunk_size: int = Field(default=1000, ge=10, le=1_000_000)
    # A bulk sync (POST /api/v1/packs/sync) hands a worker up to this many packs per task
    # (each still its own job, transaction and lock); fewer when the batch is small, so
    # that every worker gets a share.
    group_size: int = Field(default=50, ge=1, le=1000)


class RevisionsSettings(BaseModel):
    # The history of a deleted pack's workflows stays readable this long after its last
    # revision (the deletion's tombstones), then the API's sweep removes it.
    retention_days: float = Field(default=30.0, gt=0)
    sweep_interval_seconds: float = Field(default=3600.0, gt=0)


class VersionsSettings(BaseModel):
    """Packs pushed as archives (POST /api/v1/packs/{ref}/versions)."""

    # Largest archive accepted, in bytes (streamed to disk, counted as it arrives: 413 past it).
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    # An upload must arrive whole within this many seconds (408 otherwise).
    upload_timeout_seconds: float = Field(default=600.0, gt=0)
    # What an archive may hold (422 past it, naming the entry).
    max_entries: int = Field(default=100_000, ge=1)
    max_unpacked_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    max_ratio: float = Field(default=200.0, ge=2)
    # Versions kept per pack: the last N, plus the active one whatever its age.
    keep: int = Field(default=20, ge=1)
    # Each worker's local copies of versions, by sha256 (empty: <data_dir>/pack-cache),
    # least recently used removed past cache_max_bytes (unpacked size).
    cache_dir: Path | None = None
    cache_max_bytes: int = Field(default=2 * 1024 * 1024 * 1024, ge=1024 * 1024)


class MetricsSettings(BaseModel):
    # GET /metrics on the API (Prometheus text format).
    enabled: bool = True
    # Each worker serves its own metrics on this port (0: none).
    worker_port: int = Field(default=9808, ge=0, le=65535)


class YamlConfigSource(PydanticBaseSettingsSource):
    """Reads the YAML config file; missing file means no values."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None or not self.path.is_file():
            return {}
        with self.path.open("rb") as fh:
            data = yaml.safe_load(fh) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{self.path}: configuration must be a mapping")
        return data


def config_path() -> Path | None:
    explicit = os.environ.get("ATTUNE_CONFIG")
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise FileNotFoundError(f"ATTUNE_CONFIG points to {p}, which is not a file")
        return p
    default = Path("config.yaml")
    return default if default.is_file() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ATTUNE__",
        env_nested_delimiter="__",
        extra="ignore",
        case_sensitive=False,
    )

    env: Literal["development", "production"] = "development"
    packs_base_dir: Path = Path("/opt/attune/packs")
    # Local state of the embedded mode (SQLite database, filesystem broker) and of `make run`.
    data_dir: Path = Path(".attune")
    max_file_size: int = Field(default=1024 * 1024, ge=1)
    log_level: str = "INFO"
    # json: one JSON object per line (with the request id); text: for people; auto: json in production.
    log_format: Literal["auto", "text", "json"] = "auto"
    database: DatabaseSettings = DatabaseSettings()
    celery: CelerySettings = CelerySettings()
    auth: AuthSettings = AuthSettings()
    api: ApiSettings = ApiSettings()
    sync: SyncSettings = SyncSettings()
    revisions: RevisionsSettings = RevisionsSettings()
    versions: VersionsSettings = VersionsSettings()
    metrics: MetricsSettings = MetricsSettings()

    # True when no secret was configured and a random development one is used.
    using_dev_secret: bool = Field(default=False, exclude=True)
    # True where no server was configured and the embedded default is used.
    embedded_database: bool = Field(default=False, exclude=True)
    embedded_broker: bool = Field(default=False, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlConfigSource(settings_cls, config_path()))

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        """No database or broker configured: the embedded ones, under ``data_dir``."""
        self.data_dir = self.data_dir.expanduser().absolute()
        if not self.database.url:
            self.database.url = f"sqlite:///{self.data_dir / 'attune.db'}"
        if not self.celery.broker_url:
            self.celery.broker_url = "filesystem://localhost/"
        self.embedded_database = self.database.url.startswith("sqlite")
        self.embedded_broker = self.celery.broker_url.startswith("filesystem://")
        if not self.celery.result_backend:
            broker = self.celery.broker_url
            redis = broker.startswith(("redis://", "rediss://"))
            self.celery.result_backend = broker if redis else f"db+sqlite:///{self.data_dir / 'celery-results.db'}"
        return self

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json" or (self.log_format == "auto" and self.env == "production")

    @property
    def version_cache_dir(self) -> Path:
        """Where this worker keeps its local copies of pushed versions."""
        return (self.versions.cache_dir or self.data_dir / "pack-cache").expanduser().absolute()

    @property
    def broker_folder(self) -> Path:
        """The filesystem broker's message folder (embedded mode)."""
        return self.data_dir / "broker"

    @model_validator(mode="after")
    def _secret_policy(self) -> Settings:
        secret = self.auth.jwt_secret
        if self.env == "production":
            if secret.strip() in _PLACEHOLDER_SECRETS or len(secret) < 32:
                raise ValueError(
                    "production mode needs a real JWT secret: set ATTUNE__AUTH__JWT_SECRET "
                    "to at least 32 random characters (for example: openssl rand -hex 32)"
                )
        elif not secret:
            self.auth.jwt_secret = _dev_secret()
            self.using_dev_secret = True
        return self


@lru_cache(maxsize=1)
def _dev_secret() -> str:
    # One per process: tokens issued by the API are checked by the same API.
    return secrets.token_hex(32)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests, reloads)."""
    get_settings.cache_clear()
