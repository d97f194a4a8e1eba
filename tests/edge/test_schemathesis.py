"""Schemathesis 4 over every service's OpenAPI document, through the real gateway (and the
Auth.js adapter's own document against auth itself, since the gateway does not route it):
every check, a fixed seed and example budget, and no finding allowed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.config import SERVICES
from tests.e2e.test_gateway import System
from tests.edge.conftest import ADAPTER_SECRET, EVERY_SERVICE_BUILT, auth_url

pytestmark = pytest.mark.skipif(not EVERY_SERVICE_BUILT, reason="every service must be built")

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
HERE = Path(__file__).resolve().parent
SEED = 20261201
MAX_EXAMPLES = 12  # per operation, in fuzzing and stateful testing (coverage is exhaustive)
BUDGET_S = 120  # the whole run, every document at once
KILL_AFTER_S = 300  # a run this slow is stopped (and fails), rather than hang the suite
# Checks a document cannot pass by design, each with its reason.
EXCLUDED_CHECKS = {
    # Auth.js's adapter contract: looking up what is not there (or no longer) answers 200
    # `null` (docs/authjs-adapter.md, documented nullable), where use_after_free wants 404.
    "auth-adapter": ["use_after_free"],
    # A draft is its author's alone and nobody likes or replies to one (issue 7: liking a
    # draft or a missing post is 404): a post just created as a DRAFT answers its like,
    # likes and replies routes 404 by design, which ensure_resource_availability reports as
    # a created resource not found. (Schemathesis 4.32 honours no per-operation switch for
    # this stateful check, so it is off for the diary's document; tests/diary holds the
    # published case: a created post's likes and replies are found.)
    # use_after_free: `DELETE /diary/posts/{id}/like` takes back my like, not the post nor
    # its list of likes, yet the links schemathesis infers from the shared `{id}` make it
    # expect `GET /diary/posts/{id}/likes` to be 404 afterwards (seen with this seed when
    # the stateful phase's two workers happen to order it so). A deleted post answering 404
    # on every route is tests/diary's (test_posts_api: deleting a post).
    "diary": ["ensure_resource_availability", "use_after_free"],
}


DOCUMENTS = [*SERVICES, "auth-adapter"]
# A finding known and not fixed yet, document -> why: an expected failure, strict, so the
# line goes once the document is clean. None today.
KNOWN_FINDINGS: dict[str, str] = {}


def documents(system: System) -> dict[str, tuple[str, str]]:
    """name -> (document URL, base URL the operations are called at)."""
    docs = {svc: (f"{system.url}/{svc}/openapi.json", system.url) for svc in SERVICES}
    docs["auth-adapter"] = (f"{auth_url(system)}/auth/adapter/openapi.json", auth_url(system))
    return docs


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str
    took_s: float
    saved: Path


@pytest.fixture(scope="module")
def runs(edge_system: System, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every document's run, all at once: auth's hashing keeps one core busy while the
    others' requests mostly wait on the database, so together they take little more than
    auth alone."""
    env = dict(os.environ, SCHEMATHESIS_HOOKS="tests.edge.schemathesis_hooks",
               EDGE_GATEWAY_URL=edge_system.url, EDGE_ADAPTER_SECRET=ADAPTER_SECRET,
               EDGE_ADAPTER_URL=auth_url(edge_system), PYTHONPATH=str(HERE.parents[1]))
    started, processes = time.monotonic(), {}
    for document, (location, base) in documents(edge_system).items():
        folder = tmp_path_factory.mktemp(f"schemathesis-{document}")
        config = HERE / f"schemathesis.{document}.toml"
        if not config.exists():
            config = HERE / "schemathesis.toml"
        argv = [SCHEMATHESIS, "--config-file", str(config), "run", location, "--url", base,
                "--checks", "all", "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES),
                "--workers", "2", "--request-timeout", "10",
                *[arg for check in EXCLUDED_CHECKS.get(document, [])
                  for arg in ("--exclude-checks", check)],
                "--no-color", "--output-truncate", "false",
                "--report", "junit", "--report-dir", str(folder)]
        out = (folder / "schemathesis.txt").open("w")
        processes[document] = (subprocess.Popen(argv, env=env, stdout=out,
                                                stderr=subprocess.STDOUT, cwd=folder),
                               folder / "schemathesis.txt", out)
    results: dict[str, Run] = {}
    while len(results) < len(processes):
        for document, (process, saved, out) in processes.items():
            if document in results:
                continue
            took = time.monotonic() - started
            if process.poll() is None and took > KILL_AFTER_S:
                process.kill()
            if process.poll() is not None:
                out.close()
                results[document] = Run(process.wait(), saved.read_text(), took, saved)
        time.sleep(0.2)
    return results


@pytest.mark.parametrize("document", [
    pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN_FINDINGS[name], strict=True))
    if name in KNOWN_FINDINGS else name for name in DOCUMENTS])
def test_schemathesis_finds_nothing(runs: dict[str, Run], document: str) -> None:
    run = runs[document]
    assert run.returncode == 0, (
        f"schemathesis over {document} (done after {run.took_s:.0f}s; the whole output is "
        f"in {run.saved}):\n{findings(run.output)}")


def test_the_whole_run_stays_under_two_minutes(runs: dict[str, Run]) -> None:
    took = {document: round(run.took_s) for document, run in runs.items()}
    assert max(took.values()) < BUDGET_S, took


def findings(output: str) -> str:
    """The operation and check of each finding, then the run's summary."""
    lines = output.splitlines()
    picked = [line for line in lines if line.startswith("___") or line.startswith("- ST")
              or line.lstrip().startswith("curl ")]
    tail = lines[-30:]
    return "\n".join(picked + ["..."] + tail)
