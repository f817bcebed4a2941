"""Docker cannot run here: check the compose file and Dockerfile by reading them."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC_ENV = {
    "ATTUNE__PACKS_BASE_DIR",
    "ATTUNE__DATABASE__URL",
    "ATTUNE__CELERY__BROKER_URL",
    "ATTUNE__CELERY__RESULT_BACKEND",
    "ATTUNE__AUTH__JWT_SECRET",
}


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


class _Reset:
    """Compose's ``!reset`` tag: the override drops the base file's value."""

    def __init__(self, value: object) -> None:
        self.value = value


class _ComposeLoader(yaml.SafeLoader):
    pass


_ComposeLoader.add_constructor("!reset", lambda loader, node: _Reset(loader.construct_sequence(node)))  # type: ignore[arg-type, attr-defined]


def _merge(base: object, override: object) -> object:
    """Compose's merge of an override file: mappings merged key by key, sequences
    appended (volumes, ports, ...), scalars replaced, ``!reset`` values replacing."""
    if isinstance(override, _Reset):
        return override.value
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: _merge(base[k], v) if k in base else v for k, v in override.items()} | {
            k: v for k, v in base.items() if k not in override
        }
    if isinstance(base, list) and isinstance(override, list):
        return base + [v for v in override if v not in base]
    return override


def _pushed() -> dict:
    """docker compose -f docker-compose.yml -f docker-compose.pushed.yml, as Compose merges them."""
    override = yaml.load((ROOT / "docker-compose.pushed.yml").read_text(), Loader=_ComposeLoader)
    merged = _merge(_compose(), override)
    assert isinstance(merged, dict)
    return merged


def test_services_present():
    assert set(_compose()["services"]) == {"postgres", "redis", "migrate", "api", "worker"}


def test_every_service_has_what_it_needs():
    services = _compose()["services"]
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        if "build" in svc:
            assert (ROOT / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file(), name
            assert f"AS {svc['build']['target']}" in dockerfile, name
    for name in ("migrate", "api", "worker"):
        svc = services[name]
        assert svc["command"][0] == "attune", name
        assert set(svc["environment"]) >= SPEC_ENV, name
        assert svc["environment"]["ATTUNE__ENV"] == "production"
    assert services["migrate"]["command"] == ["attune", "db", "upgrade"]
    for name in ("api", "worker"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"
        assert "/opt/attune/packs:ro" in " ".join(services[name]["volumes"])
        assert "healthcheck" in services[name]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("postgres", "redis"):
        assert "healthcheck" in services[name]


def test_worker_can_scale():
    worker = _compose()["services"]["worker"]
    # --scale worker=N needs no fixed container name and no published port
    assert "container_name" not in worker
    assert "ports" not in worker


def test_api_publishes_8080():
    assert "8080:8080" in _compose()["services"]["api"]["ports"]


def test_packs_mount_defaults_to_the_example_packs_and_can_be_changed():
    """The default mount exists in a fresh clone; ATTUNE_PACKS_DIR points it elsewhere."""
    services = _compose()["services"]
    for name in ("api", "worker"):
        (mount,) = [v for v in services[name]["volumes"] if v.endswith(":/opt/attune/packs:ro")]
        source = mount.removesuffix(":/opt/attune/packs:ro")
        m = re.fullmatch(r"\$\{ATTUNE_PACKS_DIR:-(?P<default>[^}]+)\}", source)
        assert m, source
        assert (ROOT / m.group("default") / "hello" / "pack.yaml").is_file(), m.group("default")


def test_readme_admin_creation_pipes_the_password_into_the_container():
    """`docker compose exec` without -T gives the command a terminal, not the piped password;
    a variable quoted for the container's shell is unset there (the old example)."""
    readme = (ROOT / "README.md").read_text()
    production = readme.split("## Production", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [line for line in production.splitlines() if "attune user create" in line]
    assert lines == ['echo "$ADMIN_PASSWORD" | docker compose exec -T api attune user create admin --password-stdin']


def test_the_pushed_override_runs_workers_without_the_packs_mount():
    """All packs pushed: workers need Postgres and Redis, no packs directory (issue 17)."""
    base, merged = _compose()["services"], _pushed()["services"]
    assert set(merged) == set(base)
    worker = merged["worker"]
    assert not [v for v in worker.get("volumes", []) if "/opt/attune/packs" in v]
    assert worker["environment"] == base["worker"]["environment"]
    assert worker["depends_on"] == base["worker"]["depends_on"] and "healthcheck" in worker
    assert set(worker["depends_on"]) == {"migrate", "redis"}  # and the database, through migrate
    # what the override does not touch stays as it was: the API keeps its mount
    for name in ("postgres", "redis", "migrate", "api"):
        assert merged[name] == base[name], name
    # only the worker's volumes are reset; the file is documented where it is used
    override = yaml.load((ROOT / "docker-compose.pushed.yml").read_text(), Loader=_ComposeLoader)
    assert set(override) == {"services"} and set(override["services"]) == {"worker"}
    assert set(override["services"]["worker"]) == {"volumes"}
    assert "docker-compose.pushed.yml" in (ROOT / "docker-compose.yml").read_text()
    assert "docker-compose.pushed.yml" in (ROOT / "README.md").read_text()


def test_workers_keep_their_version_cache_in_a_directory_they_can_write():
    """The image's user owns the cache directory the compose file points the workers at;
    /app (the default data_dir's parent) is root's."""
    env = _compose()["services"]["worker"]["environment"]
    cache = env["ATTUNE__VERSIONS__CACHE_DIR"]
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    (run,) = [line for line in dockerfile.splitlines() if "chown attune" in line]
    owned = run.split("chown attune", 1)[1].split()[0]
    assert cache == owned or cache.startswith(owned.rstrip("/") + "/"), (cache, run)
    assert dockerfile.index("chown attune") < dockerfile.index("USER attune")
    # the image's packs directory exists (empty) for a worker started without the mount
    assert "mkdir -p /opt/attune/packs" in dockerfile
