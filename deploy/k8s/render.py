#!/usr/bin/env python3
"""Render each service's kustomize component from deploy/k8s/templates (standard library only).

    python3 deploy/k8s/render.py           write components/<svc>/ and components/keda-workers/
    python3 deploy/k8s/render.py --check   exit 1 if any rendered file is not current (make lint)

The four services differ only in name and ports, so their objects are one template
(templates/service.yaml) rendered four times, not four copies kept in step by hand. What one
service has beyond the others is a hand-written file in its component folder, never
overwritten: `patch-*.yaml` (a strategic-merge patch) and `extra-*.yaml` (more objects),
both listed in the rendered kustomization.yaml. Placeholders are dollar-brace UPPER_CASE
names, as in deploy/nginx.conf.template; an unknown one is an error.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parents[1]) not in sys.path:  # run as a script: make the repo root importable
    sys.path.append(str(HERE.parents[1]))

from shared.services import SERVICE_PORTS, SERVICES, WORKER_PORTS  # noqa: E402

TEMPLATES = HERE / "templates"
COMPONENTS = HERE / "components"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
HEADER = "# Rendered by deploy/k8s/render.py from templates/{template}: do not edit.\n"
AUTH = "auth"


def values(service: str) -> dict[str, str]:
    return {"SERVICE": service, "SVC": service.upper(), "PORT": str(SERVICE_PORTS[service]),
            "HEALTH_PORT": str(WORKER_PORTS[service])}


def render(template: str, service: str) -> str:
    text = (TEMPLATES / template).read_text()
    subst = values(service)

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in subst:
            raise SystemExit(f"render: templates/{template}: unknown placeholder ${{{name}}}")
        return subst[name]

    return PLACEHOLDER.sub(one, text)


def component_kustomization(folder: Path, generated: list[str]) -> str:
    patches = sorted(p.name for p in folder.glob("patch-*.yaml"))
    extras = sorted(p.name for p in folder.glob("extra-*.yaml"))
    lines = [HEADER.format(template="*").rstrip("\n"),
             "apiVersion: kustomize.config.k8s.io/v1alpha1", "kind: Component", "resources:"]
    lines += [f"  - {name}" for name in [*generated, *extras]]
    if patches:
        lines.append("patches:")
        lines += [f"  - path: {name}" for name in patches]
    return "\n".join(lines) + "\n"


def outputs() -> dict[Path, str]:
    files: dict[Path, str] = {}
    for service in SERVICES:
        folder = COMPONENTS / service
        generated = ["service.yaml"]
        files[folder / "service.yaml"] = (HEADER.format(template="service.yaml")
                                          + render("service.yaml", service))
        if service != AUTH:
            generated.append("jwks-client.yaml")
            files[folder / "jwks-client.yaml"] = (HEADER.format(template="jwks-client.yaml")
                                                  + render("jwks-client.yaml", service))
        files[folder / "kustomization.yaml"] = component_kustomization(folder, generated)
    keda = HEADER.format(template="keda.yaml") + "---\n".join(
        render("keda.yaml", service) for service in SERVICES)
    files[COMPONENTS / "keda-workers" / "scaledobjects.yaml"] = keda
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only check that the rendered files are current")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(str(path.relative_to(HERE.parents[1])))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parents[1])}")
    if stale:
        print("render: not current (run python3 deploy/k8s/render.py): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
