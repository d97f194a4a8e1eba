#!/usr/bin/env python3
"""requirements.lock: the exact packages (with hashes) the images install, from pyproject.toml.

    python3 deploy/lock.py           compile it (uv pip compile; `make lock`)
    python3 deploy/lock.py --check   exit 1 if pyproject.toml changed what it was compiled from

The lock pins [project].dependencies (the runtime: what the Dockerfile installs, for
CPython 3.11 on Linux), not the test extras. Its header records a SHA-256 of what it was
compiled from (requires-python and the dependency list), so the check needs neither uv nor
the network: standard library only. After a merge that touched the dependencies, one
`make lock` brings it back in step.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
PYTHON_VERSION = "3.11"  # the Dockerfile's base image
STAMP = re.compile(r"^# pyproject-sha256: ([0-9a-f]{64})$", re.MULTILINE)


def inputs_digest(pyproject: Path = PYPROJECT) -> str:
    return digest_of(tomllib.loads(pyproject.read_text())["project"])


def digest_of(project: dict[str, Any]) -> str:
    """What the lock depends on: the runtime dependencies (order-free) and Pythons."""
    inputs = {"requires-python": project.get("requires-python", ""),
              "dependencies": sorted(project.get("dependencies", [])),
              "python": PYTHON_VERSION}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def recorded_digest(lock: Path = LOCK) -> str | None:
    if not lock.exists():
        return None
    found = STAMP.search(lock.read_text())
    return found.group(1) if found else None


def stale(pyproject: Path = PYPROJECT, lock: Path = LOCK) -> str | None:
    """Why the lock is not current, or None."""
    recorded = recorded_digest(lock)
    if recorded is None:
        return f"{lock.name} is missing or has no pyproject-sha256 line"
    if recorded != inputs_digest(pyproject):
        return f"{lock.name} was compiled from other dependencies than {pyproject.name}'s"
    return None


def uv() -> str:
    for candidate in (Path(sys.executable).parent / "uv", shutil.which("uv")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise SystemExit("lock: uv not found (make lock installs it into .venv)")


def compile_lock() -> None:
    argv = [uv(), "pip", "compile", str(PYPROJECT.relative_to(ROOT)), "--no-progress",
            "--generate-hashes", "--python-version", PYTHON_VERSION,
            "--python-platform", "linux",
            "--custom-compile-command", "make lock"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "UV_NO_CONFIG": "1"})
    if done.returncode != 0:
        raise SystemExit(f"lock: uv pip compile failed:\n{done.stderr}")
    header = (f"# pyproject-sha256: {inputs_digest()}\n"
              "# (of pyproject.toml's requires-python and [project].dependencies: "
              "make lint fails when they change; run `make lock`)\n")
    LOCK.write_text(header + done.stdout)
    print(f"lock: wrote {LOCK.name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check it is current")
    args = parser.parse_args(argv)
    if args.check:
        why = stale()
        if why:
            print(f"lock: {why}: run `make lock`", file=sys.stderr)
            return 1
        return 0
    compile_lock()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
