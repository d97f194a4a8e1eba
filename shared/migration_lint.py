"""`python -m shared.migration_lint`: every revision's SQL, rendered offline, linted by squawk.

Each revision of each service is rendered alone (`upgrade <parent>:<rev> --sql`, the same SQL
`make migration` shows for review) and handed to squawk (squawk-cli, for PostgreSQL 15). A
finding fails the lint unless the revision carries a reasoned exception for that rule:

    from shared.migration_ops import squawk_exception

    def upgrade() -> None:
        squawk_exception("require-concurrent-index-creation",
                         "the table is created in this revision: empty, nobody writes to it")
        ...

A helper of shared.migration_ops that knowingly emits such a statement declares the exception
itself, so every revision using it carries it. New revisions are found by walking each
service's migrations, so they are linted without anyone listing them.

Two squawk rules are off for every revision (RULES_OFF, with why): they judge a column's type
for the day it changes, not what the migration does to a live table.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from shared import migration_ops
from shared.migrate import alembic_config, migrated_services

RULES_OFF = {
    # Our varchar columns are fixed-length identifiers (cuid ids: 32, hashes: 64, event ids)
    # that are never resized; text is used for everything free-form already.
    "prefer-text-field": "fixed-length identifiers, never resized",
    # int columns here are counters and versions of one user's rows (achievement points,
    # daily generations, a post's edits): nowhere near 2^31. Keys are strings or bigint.
    "prefer-bigint-over-int": "small per-user counters and versions; keys are not int",
}


@dataclass(frozen=True)
class Finding:
    service: str
    revision: str
    rule: str
    line: int
    message: str
    help: str


def squawk_binary() -> str:
    here = Path(sys.executable).parent / "squawk"
    found = str(here) if here.exists() else shutil.which("squawk")
    if not found:
        raise SystemExit("migration lint: squawk not found (pip install squawk-cli: make install)")
    return found


def render(service: str, revision: str) -> tuple[str, dict[str, str]]:
    """The revision's upgrade SQL, and the squawk exceptions it declared while rendering."""
    config = alembic_config(service)
    out = io.StringIO()
    config.output_buffer = out
    script = ScriptDirectory.from_config(config).get_revision(revision)
    assert script is not None
    parent = script.down_revision
    if isinstance(parent, tuple):
        parent = parent[0]
    with migration_ops.recording_squawk_exceptions() as exceptions:
        command.upgrade(config, f"{parent or 'base'}:{revision}", sql=True)
    return out.getvalue(), dict(exceptions)


def lint_service(service: str, workdir: Path) -> tuple[list[Finding], int]:
    """Findings that no exception covers, and how many revisions were linted."""
    scripts = list(ScriptDirectory.from_config(alembic_config(service)).walk_revisions())
    findings: list[Finding] = []
    for script in reversed(scripts):
        sql, exceptions = render(service, script.revision)
        path = workdir / f"{service}-{script.revision}.sql"
        path.write_text(sql)
        result = subprocess.run(
            [squawk_binary(), "--pg-version", "15", "--reporter", "json",
             "--exclude", ",".join(RULES_OFF), str(path)],
            capture_output=True, text=True)
        if result.returncode not in (0, 1) or not result.stdout.strip():
            raise SystemExit(f"migration lint: squawk failed on {service} {script.revision}:\n"
                             f"{result.stderr or result.stdout}")
        for item in json.loads(result.stdout):
            if item["rule_name"] in exceptions:
                continue
            findings.append(Finding(service, script.revision, item["rule_name"], item["line"],
                                    item["message"], item.get("help") or ""))
    return findings, len(scripts)


def main(argv: list[str]) -> int:
    services = argv or migrated_services()
    started = time.monotonic()
    findings: list[Finding] = []
    linted = 0
    with tempfile.TemporaryDirectory(prefix="migration-lint-") as tmp:
        for service in services:
            found, count = lint_service(service, Path(tmp))
            findings += found
            linted += count
    for f in findings:
        print(f"{f.service} {f.revision}: {f.rule} (line {f.line} of its SQL: "
              f"python -m shared.migrate {f.service} sql {f.revision})\n    {f.message} "
              f"{f.help}", file=sys.stderr)
    took = time.monotonic() - started
    if findings:
        print(f"migration lint: {len(findings)} finding(s) in {linted} revisions ({took:.1f}s). "
              "Fix the revision, or give it a reasoned squawk_exception(rule, why): "
              "docs/migrations.md", file=sys.stderr)
        return 1
    print(f"migration lint: {linted} revisions of {', '.join(services)} pass squawk "
          f"({took:.1f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
