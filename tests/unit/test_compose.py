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
