#!/usr/bin/env python3
"""Render deploy/nginx.conf.template for one deployment profile (standard library only).

    python deploy/render_nginx.py local   [--root DIR] [--out var/nginx/nginx.conf]
    python deploy/render_nginx.py compose [--out deploy/nginx.compose.conf] [--check]

local:   listens on ${GATEWAY_HOST:-127.0.0.1}:${GATEWAY_PORT:-8080}, daemonises, keeps pid,
         logs and temp files under <root>/var, upstreams ${SVC}_UPSTREAM or 127.0.0.1:${SVC}_PORT.
compose: listens on 8080 in the gateway container, foreground (the image's command adds
         "daemon off"), logs to stdout/stderr, upstreams are the compose service names,
         re-resolved through Docker's DNS so restarted or scaled containers are picked up.

Both profiles read the edge policy from the environment (defaults in brackets):
  CORS_ALLOWED_ORIGINS    comma-separated exact origins, e.g. https://app.example [empty: CORS off]
  GATEWAY_AUTH_RATE/_BURST  per client address on /auth/login + /auth/register [30r/m, 30]
  GATEWAY_MAIL_RATE/_BURST  per client address on the routes that send mail [6r/m, 10]
The checked-in compose file is rendered with the defaults (make lint checks it).

Only ${NAME} placeholders with upper-case names are replaced; nginx's own $variables are left
alone. An unknown placeholder is an error, so a typo cannot ship.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script: make the repo root importable
    sys.path.append(str(HERE.parent))

from shared.services import GATEWAY_PORT, SERVICE_PORTS, port_of  # noqa: E402

TEMPLATE = HERE / "nginx.conf.template"
COMPOSE_OUT = HERE / "nginx.compose.conf"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
RATE = re.compile(r"^([1-9][0-9]*)r/([sm])$")
EDGE_DEFAULTS = {"GATEWAY_AUTH_RATE": "30r/m", "GATEWAY_AUTH_BURST": "30",
                 "GATEWAY_MAIL_RATE": "6r/m", "GATEWAY_MAIL_BURST": "10"}


def edge_values(environ: Mapping[str, str]) -> dict[str, str]:
    """CORS allowlist and rate limits, the same for every profile; a bad value is an error."""
    values: dict[str, str] = {}
    for name, default in EDGE_DEFAULTS.items():
        values[name] = value = environ.get(name, "").strip() or default
        if name.endswith("_BURST") and not value.isdigit():
            raise SystemExit(f"render_nginx: {name}={value!r} is not a whole number")
        if name.endswith("_RATE"):
            rate = RATE.match(value)
            if rate is None:
                raise SystemExit(f"render_nginx: {name}={value!r} is not like 10r/m or 5r/s")
            per_s = int(rate.group(1)) / (60 if rate.group(2) == "m" else 1)
            values[name.replace("_RATE", "_RETRY_AFTER")] = str(max(1, math.ceil(1 / per_s)))
    origins = [o.strip() for o in environ.get("CORS_ALLOWED_ORIGINS", "").split(",")
               if o.strip()]
    for origin in origins:
        if not ORIGIN.match(origin):
            raise SystemExit(f"render_nginx: CORS_ALLOWED_ORIGINS: {origin!r} is not an origin "
                             "(scheme://host[:port], no path or trailing slash)")
    if origins:
        values["CORS_ORIGIN_MAP_LINE"] = "\n        ".join(
            f'"{origin}" $http_origin;' for origin in dict.fromkeys(origins))
        values["CORS_VARY_LINE"] = "add_header Vary Origin always;"
    else:
        values["CORS_ORIGIN_MAP_LINE"] = "# none: CORS_ALLOWED_ORIGINS is empty, CORS is off"
        values["CORS_VARY_LINE"] = "# CORS off: the answers do not vary by Origin"
    return values


def local_values(var: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Values for a gateway run from `var` (pid, logs, temp files) in front of local ports."""

    def env(name: str, default: str) -> str:
        return environ.get(name, "") or default

    values = {
        "DAEMON_LINE": "daemon on;",
        "WORKER_PROCESSES": env("GATEWAY_WORKERS", "auto"),
        "PID_FILE": str(var / "run" / "nginx.pid"),
        "ERROR_LOG": str(var / "log" / "nginx-error.log"),
        "ACCESS_LOG": str(var / "log" / "nginx-access.log"),
        "TEMP_DIR": str(var / "nginx"),
        "RESOLVER_LINE": "# no resolver: upstreams are addresses",
        "LISTEN": f"{env('GATEWAY_HOST', '127.0.0.1')}:{env('GATEWAY_PORT', str(GATEWAY_PORT))}",
    }
    for svc in SERVICE_PORTS:
        up = svc.upper()
        values[f"{up}_SERVER"] = env(f"{up}_UPSTREAM", f"127.0.0.1:{port_of(svc, environ)}")
    return values | edge_values(environ)


def compose_values(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    values = {
        "DAEMON_LINE": "# daemon off: given by the image's command (nginx -g 'daemon off;')",
        "WORKER_PROCESSES": "auto",
        "PID_FILE": "/var/run/nginx.pid",
        "ERROR_LOG": "/dev/stderr",
        "ACCESS_LOG": "/dev/stdout",
        "TEMP_DIR": "/var/cache/nginx",
        "RESOLVER_LINE": "resolver 127.0.0.11 valid=10s ipv6=off;  # Docker's embedded DNS",
        "LISTEN": "8080",
    }
    for svc, port in SERVICE_PORTS.items():
        values[f"{svc.upper()}_SERVER"] = f"{svc}:{port} resolve"
    return values | edge_values(environ)


def render(values: dict[str, str], profile: str) -> str:
    template = TEMPLATE.read_text()
    missing = sorted({m for m in PLACEHOLDER.findall(template) if m not in values})
    if missing:
        raise SystemExit(f"render_nginx: no value for {', '.join(missing)}")
    for name, value in values.items():
        if re.search(r"[\s;{}]", value) and not name.endswith(("_LINE", "_SERVER")):
            raise SystemExit(f"render_nginx: {name}={value!r} contains whitespace or ;{{}}")
    body = PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    header = f"# GENERATED by deploy/render_nginx.py ({profile}) from deploy/nginx.conf.template.\n"
    return header + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", choices=("local", "compose"))
    parser.add_argument("--root", type=Path, default=HERE.parent, help="repo root (local)")
    parser.add_argument("--out", type=Path, help="output file (default per profile; - = stdout)")
    parser.add_argument("--check", action="store_true", help="fail if --out is not up to date")
    args = parser.parse_args(argv)

    if args.profile == "local":
        text = render(local_values(args.root.resolve() / "var"), "local")
        out = args.out or args.root / "var" / "nginx" / "nginx.conf"
    else:
        text = render(compose_values(), "compose")
        out = args.out or COMPOSE_OUT

    if str(out) == "-":
        sys.stdout.write(text)
        return 0
    if args.check:
        if not out.exists() or out.read_text() != text:
            print(f"render_nginx: {out} is stale; run: make nginx-compose", file=sys.stderr)
            return 1
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
