from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from attune.config import Settings


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    import os

    for key in list(os.environ):
        if key.startswith("ATTUNE__") or key == "ATTUNE_CONFIG":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_defaults(clean_env):
    s = Settings()
    assert s.packs_base_dir == Path("/opt/attune/packs")
    assert s.max_file_size == 1024 * 1024
    assert s.env == "development"
    assert s.using_dev_secret and len(s.auth.jwt_secret) >= 32


def test_spec_environment_names(clean_env):
    clean_env.setenv("ATTUNE__PACKS_BASE_DIR", "/srv/packs")
    clean_env.setenv("ATTUNE__DATABASE__URL", "postgresql+psycopg://u@h/db")
    clean_env.setenv("ATTUNE__CELERY__BROKER_URL", "redis://b:6379/0")
    clean_env.setenv("ATTUNE__CELERY__RESULT_BACKEND", "redis://b:6379/1")
    clean_env.setenv("ATTUNE__AUTH__JWT_SECRET", "s" * 40)
    s = Settings()
    assert s.packs_base_dir == Path("/srv/packs")
    assert s.database.url == "postgresql+psycopg://u@h/db"
    assert s.celery.broker_url == "redis://b:6379/0"
    assert s.celery.result_backend == "redis://b:6379/1"
    assert s.auth.jwt_secret == "s" * 40
    assert not s.using_dev_secret


def test_yaml_file_and_env_override(clean_env, tmp_path):
    cfg = tmp_path / "custom.yaml"
    cfg.write_text("packs_base_dir: /from/file\ndatabase:\n  url: sqlite:///x.db\ncelery:\n  result_wait_seconds: 5\n")
    clean_env.setenv("ATTUNE_CONFIG", str(cfg))
    clean_env.setenv("ATTUNE__DATABASE__URL", "postgresql+psycopg://env/db")
    s = Settings()
    assert s.packs_base_dir == Path("/from/file")
    assert s.celery.result_wait_seconds == 5
    assert s.database.url == "postgresql+psycopg://env/db"  # environment wins


def test_config_yaml_in_cwd(clean_env, tmp_path):
    (tmp_path / "config.yaml").write_text("max_file_size: 2048\n")
    assert Settings().max_file_size == 2048


def test_missing_explicit_config_is_an_error(clean_env, tmp_path):
    clean_env.setenv("ATTUNE_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(FileNotFoundError):
        Settings()


@pytest.mark.parametrize("secret", [None, "", "changeme", "short-secret"])
def test_production_refuses_weak_secret(clean_env, secret):
    clean_env.setenv("ATTUNE__ENV", "production")
    if secret is not None:
        clean_env.setenv("ATTUNE__AUTH__JWT_SECRET", secret)
    with pytest.raises(ValidationError, match="production mode needs a real JWT secret"):
        Settings()


def test_production_accepts_real_secret(clean_env):
    clean_env.setenv("ATTUNE__ENV", "production")
    clean_env.setenv("ATTUNE__AUTH__JWT_SECRET", "0123456789abcdef" * 4)
    assert Settings().env == "production"


def test_example_config_documents_every_key(clean_env):
    import yaml

    root = Path(__file__).resolve().parents[2]
    example = yaml.safe_load((root / "config.example.yaml").read_text())

    def keys(model, prefix=""):
        out = set()
        for name, field in type(model).model_fields.items():
            if field.exclude:
                continue
            value = getattr(model, name)
            if hasattr(type(value), "model_fields") and not isinstance(value, type):
                out |= keys(value, f"{prefix}{name}.")
            else:
                out.add(prefix + name)
        return out

    def flat(d, prefix=""):
        out = set()
        for k, v in d.items():
            if isinstance(v, dict) and k != "meta":
                out |= flat(v, f"{prefix}{k}.")
            else:
                out.add(prefix + k)
        return out

    assert keys(Settings()) == flat(example)
    # and the example itself loads
    clean_env.setenv("ATTUNE_CONFIG", str(root / "config.example.yaml"))
    Settings()


def test_lease_renewed_within_its_length(clean_env):
    """A renewal interval as long as the lease would let a working task's lease expire."""
    from pydantic import ValidationError

    from attune.config import Settings

    clean_env.setenv("ATTUNE__CELERY__LEASE_SECONDS", "10")
    clean_env.setenv("ATTUNE__CELERY__LEASE_RENEW_SECONDS", "10")
    with pytest.raises(ValidationError, match="lease_renew_seconds must be shorter"):
        Settings()
    clean_env.setenv("ATTUNE__CELERY__LEASE_RENEW_SECONDS", "3")
    assert Settings().celery.lease_renew_seconds == 3
