"""deploy/k8s, the images and docker-compose.yml, validated offline: the overlays render, every
object is valid for a named Kubernetes version, the rules every manifest keeps hold, the
gateway's Ingress mirrors deploy/nginx.conf.template, the lock is current."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from deploy import lock
from deploy.k8s import render, validate
from deploy.render_nginx import EDGE_DEFAULTS
from shared.services import SERVICE_PORTS, SERVICES, WORKER_PORTS

ROOT = Path(__file__).resolve().parents[2]
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    binary = validate.kubectl()
    validate.kustomize_version(binary)
    return {overlay: validate.render_overlay(binary, overlay) for overlay in validate.OVERLAYS}


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_the_components_are_current_with_their_template() -> None:
    assert render.main(["--check"]) == 0, "run python3 deploy/k8s/render.py"


def test_every_object_of_every_overlay_is_valid_or_a_named_skip(
        rendered: dict[str, list[Obj]]) -> None:
    for overlay, objects in rendered.items():
        statuses = {validate.name_of(o): validate.validate_object(
            o, validate.KUBERNETES_VERSION) for o in objects}
        skipped = {name for name, status in statuses.items() if status.startswith("skipped")}
        assert skipped == {"Cluster/growth-diary-pg", "Pooler/growth-diary-pooler-rw",
                           "RabbitmqCluster/growth-diary-rabbitmq"}, overlay
    production = {validate.name_of(o): o for o in rendered["production"]}
    assert validate.validate_object(production["ScaledObject/goals-worker"],
                                    validate.KUBERNETES_VERSION) == "vendored"


def test_every_service_has_its_processes_and_objects(rendered: dict[str, list[Obj]]) -> None:
    for objects in rendered.values():
        names = {validate.name_of(o) for o in objects}
        for svc in SERVICES:
            assert {f"Deployment/{svc}-web", f"Deployment/{svc}-worker", f"Job/{svc}-migrate",
                    f"Service/{svc}", f"PodDisruptionBudget/{svc}-web",
                    f"HorizontalPodAutoscaler/{svc}-web", f"NetworkPolicy/{svc}-web",
                    f"NetworkPolicy/{svc}-worker"} <= names
        assert "Job/growth-diary-bootstrap" in names
    assert {o["metadata"]["name"] for o in rendered["production"]
            if o["kind"] == "ScaledObject"} == {f"{s}-worker" for s in SERVICES}
    # an apply never resets a count something else owns: the HPA the web's, KEDA the workers'
    for deployment in (o for o in rendered["production"] if o["kind"] == "Deployment"):
        assert "replicas" not in deployment["spec"], deployment["metadata"]["name"]
    dev = {o["metadata"]["name"]: o for o in rendered["dev"] if o["kind"] == "Deployment"}
    assert {name: d["spec"].get("replicas") for name, d in dev.items()} == {
        **{f"{s}-web": None for s in SERVICES}, **{f"{s}-worker": 1 for s in SERVICES}}


def test_the_rules_hold_and_a_breach_is_caught(rendered: dict[str, list[Obj]]) -> None:
    for objects in rendered.values():
        assert validate.policy_problems(objects) == []
    objects = copy.deepcopy(rendered["dev"])
    web = find(objects, "Deployment", "goals-web")
    web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = 1
    web["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFilesystem"] = False
    web["spec"]["template"]["spec"]["initContainers"] = []
    job = find(objects, "Job", "diary-migrate")
    del job["spec"]["activeDeadlineSeconds"]
    problems = "\n".join(validate.policy_problems(objects))
    assert "Deployment/goals-web: rollingUpdate.maxUnavailable is not 0" in problems
    assert "Deployment/goals-web container web: readOnlyRootFilesystem is not true" in problems
    assert "Deployment/goals-web: no init container waiting for its schema" in problems
    assert "Job/diary-migrate: no activeDeadlineSeconds" in problems


def test_probes_follow_the_web_paths_and_the_worker_health_port_contract(
        rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["production"]
    for svc in SERVICES:
        config = find(objects, "ConfigMap", f"{svc}-config")["data"]
        assert config[f"{svc.upper()}_WORKER_PORT"] == str(WORKER_PORTS[svc])
        assert config["WORKER_HOST"] == "0.0.0.0"
        web = find(objects, "Deployment", f"{svc}-web")["spec"]["template"]["spec"]
        container = web["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == f"/{svc}/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == f"/{svc}/healthz"
        assert container["ports"] == [{"name": "http", "containerPort": SERVICE_PORTS[svc]}]
        worker = find(objects, "Deployment", f"{svc}-worker")["spec"]["template"]["spec"]
        container = worker["containers"][0]
        assert container["ports"] == [{"name": "health", "containerPort": WORKER_PORTS[svc]}]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
        assert worker["initContainers"][0]["command"][:5] == [
            "python", "-m", "shared.migrate", svc, "wait"]


def test_auth_mounts_its_signing_keys_read_only(rendered: dict[str, list[Obj]]) -> None:
    for name in ("auth-web", "auth-worker"):
        spec = find(rendered["production"], "Deployment", name)["spec"]["template"]["spec"]
        mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
        assert mounts["/app/var/keys"]["readOnly"] is True
        volume = next(v for v in spec["volumes"] if v["name"] == mounts["/app/var/keys"]["name"])
        assert volume["secret"]["secretName"] == "auth-signing-keys"
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["AUTH_KEYS_DIR"] == "/app/var/keys"


def template_routes() -> dict[str, str]:
    """deploy/nginx.conf.template's proxied locations: path -> upstream."""
    text = (ROOT / "deploy" / "nginx.conf.template").read_text()
    return {m.group(2): m.group(3) for m in re.finditer(
        r"location (= )?(/\S*) \{\s*(?:limit_req [^;]*;\s*)?proxy_pass http://(\w+);", text)}


def ingress_paths(objects: list[Obj]) -> dict[str, tuple[str, str, str]]:
    """Every Ingress path -> (Ingress name, pathType, backend Service)."""
    out = {}
    for ing in (o for o in objects if o["kind"] == "Ingress"):
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                out[path["path"]] = (ing["metadata"]["name"], path["pathType"],
                                     path["backend"]["service"]["name"])
    return out


def test_the_gateway_ingress_routes_what_the_nginx_template_routes(
        rendered: dict[str, list[Obj]]) -> None:
    paths = ingress_paths(rendered["production"])
    routes = template_routes()
    assert {"/auth/", "/goals", "/goals/", "/diary/", "/stories", "/stories/",
            "/auth/login", "/auth/register"} <= set(routes)
    for path, upstream in routes.items():
        if path.endswith("/"):  # nginx prefix /x/ : an Ingress Prefix /x (whole segments)
            name, kind, backend = paths[path.rstrip("/")]
            assert (kind, backend) == ("Prefix", upstream), path
        elif path.rstrip("/") in paths and paths[path][1] == "Prefix":
            assert paths[path][2] == upstream  # `location = /goals` beside `/goals/`
        else:
            assert paths[path][1:] == ("Exact", upstream), path
    # internal paths are not routed: the adapter is refused, /metrics has no route
    adapter = find(rendered["production"], "Ingress", paths["/auth/adapter"][0])
    assert adapter["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/denylist-source-range"] == "0.0.0.0/0,::/0"
    assert not any(p.startswith(("/metrics", "/_gateway")) for p in paths)


def test_the_gateway_ingress_has_the_templates_limits(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["production"]
    paths = ingress_paths(objects)
    for ing in (o for o in objects if o["kind"] == "Ingress"):
        notes = ing["metadata"]["annotations"]
        assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "1m"  # client_max_body_size
        assert notes["nginx.ingress.kubernetes.io/proxy-connect-timeout"] == "5"
    budgets = {"GATEWAY_AUTH": ("/auth/login", "/auth/register"),
               "GATEWAY_MAIL": ("/auth/password-reset/request", "/auth/verify-email/resend")}
    for prefix, routes in budgets.items():
        names = {paths[r][0] for r in routes}
        assert len(names) == 1, f"{routes} must share one Ingress (one limit zone)"
        notes = find(objects, "Ingress", names.pop())["metadata"]["annotations"]
        rate, per = EDGE_DEFAULTS[f"{prefix}_RATE"].removesuffix("r/m"), 1
        rpm = int(notes["nginx.ingress.kubernetes.io/limit-rpm"])
        assert rpm == int(rate) * per
        burst = rpm * int(notes["nginx.ingress.kubernetes.io/limit-burst-multiplier"])
        template_burst = int(EDGE_DEFAULTS[f"{prefix}_BURST"])
        assert template_burst <= burst < template_burst + rpm  # a multiple of the rate


def test_the_vendored_keda_schema_rejects_what_keda_would(
        rendered: dict[str, list[Obj]]) -> None:
    scaled = copy.deepcopy(find(rendered["production"], "ScaledObject", "goals-worker"))
    schema = json.loads((validate.SCHEMAS / "keda.sh_v1alpha1_ScaledObject.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(scaled)
    scaled["spec"]["minReplicaCount"] = "two"
    scaled["spec"]["scaleTargetRefs"] = {}
    with pytest.raises(validate.Invalid):
        validate.validate_object(scaled, validate.KUBERNETES_VERSION)


@pytest.mark.skipif(not shutil.which("docker-compose") and not os.environ.get("CI"),
                    reason="docker-compose not installed (.ci/run installs it)")
def test_docker_compose_yml_passes_docker_compose_config() -> None:
    assert validate.check_compose(required=True) == "ok"


def test_the_lock_is_current_and_a_new_dependency_makes_it_stale(tmp_path: Path) -> None:
    assert lock.stale() is None, "run `make lock`"
    project = tomllib.loads(lock.PYPROJECT.read_text())["project"]
    assert lock.digest_of(project) == lock.inputs_digest()
    added = {**project, "dependencies": [*project["dependencies"], "flask-admin"]}
    assert lock.digest_of(added) != lock.inputs_digest()
    reordered = {**project, "dependencies": list(reversed(project["dependencies"]))}
    assert lock.digest_of(reordered) == lock.inputs_digest()
    # the test extras are not in the image: adding one leaves the lock current
    extras = {**project, "optional-dependencies": {"test": ["schemathesis"]}}
    assert lock.digest_of(extras) == lock.inputs_digest()
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nrequires-python = ">=3.11"\ndependencies = ["flask"]\n')
    assert lock.stale(tmp_path / "pyproject.toml") is not None


def test_the_dockerfile_pins_its_base_and_installs_the_lock_only() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm$", text, re.M)
    assert "FROM ${PYTHON_IMAGE}" in text
    installs = re.findall(r"^RUN pip install .*$", text, re.M)
    assert installs == ["RUN pip install --no-deps --require-hashes --only-binary :all: "
                        "-r requirements.lock"]
