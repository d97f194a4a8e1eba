"""`make bench`: measured sections, each with its ratios and targets; one JSON line at the end.

    python -m bench [pipeline] [http] [deploys] [tracing] [stories] [resync] [diary]
    (ARGS=http: one)

pipeline: the raw AMQP floor and our event pipeline, measured in one run (issue #2): pipeline
          throughput >= 0.5 x the raw floor; pipeline p99 latency at a steady 50/s <= 5 x the
          raw floor's p99.
http:     auth and goals through the nginx gateway with wrk (bench/http.py): goals list
          >= 0.4 x and auth/me >= 0.5 x the throughput of the service's healthz, each p99
          <= 3 x its healthz p99, every response a 200, every gunicorn worker's RSS <= 60 MiB.
deploys:  the whole system under ~40 requests/s of mixed reads and writes while each service
          is restarted, deployed and deployed as a bad build (bench/deploys.py): 0 failed
          requests and p99 < 500 ms in every phase, every bad build refused (exit 1).
tracing:  the pipeline and HTTP figures with tracing off and on, spans exported over OTLP to
          a local sink (bench/tracing.py): tracing costs at most 15% of each throughput.
diary:    the diary at 1,000,000 posts (bench/diary.py; BENCH_DIARY_POSTS to scale it): feed
          in process <= 2 x the same raw SQL (p50), page 1,000 <= 1.2 x page 1, the feed
          through nginx >= 0.3 x diary's healthz, likes under load with exact counters, seeded
          in < 3 min, and no sequential scan in the new queries' plans. Not in the default
          run (it takes minutes): `make bench ARGS=diary`.
stories:  the stories service through the gateway with its workers (bench/stories.py): template
          generations at 10/s, request -> READY p99 <= 3 x the goal-event pipeline's
          commit-to-applied p99 of the same round; with a 2 s/call model and 20 generations in
          flight, GET /stories p99 and the goal pipeline's p99 each <= 2 x idle; three rounds
          each, the median of the rounds' ratios checked.
resync:   stories rebuilds its read model of 100,000 goals from goals (bench/resync.py;
          BENCH_RESYNC_GOALS to scale it): it must finish with every goal in the read model;
          the rate (goals/s, request to completion applied) is printed.
The exit status is non-zero when a section misses a target.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from bench import deploys, diary, http, resync, stories, tracing
from bench.amqp_floor import DEFAULT_URL, measure_floor
from bench.pipeline import measure_pipeline

Section = tuple[dict[str, Any], bool]  # figures for the JSON line, every target met


def pipeline_section() -> Section:
    floor = measure_floor(os.environ.get("AMQP_URL", DEFAULT_URL))
    pipeline = measure_pipeline()
    sat_ratio = pipeline["saturation"]["msgs_per_s"] / floor["saturation"]["msgs_per_s"]
    p99_ratio = pipeline["steady"]["p99_ms"] / floor["saturation"]["p99_ms"]
    p99_vs_steady = pipeline["steady"]["p99_ms"] / floor["steady"]["p99_ms"]
    rows = [
        ("raw floor: saturation", f"{floor['saturation']['msgs_per_s']:.0f} msg/s",
         f"p50 {floor['saturation']['p50_ms']:.2f} ms",
         f"p99 {floor['saturation']['p99_ms']:.2f} ms"),
        ("raw floor: steady 50/s", "", f"p50 {floor['steady']['p50_ms']:.2f} ms",
         f"p99 {floor['steady']['p99_ms']:.2f} ms"),
        ("pipeline: saturation", f"{pipeline['saturation']['msgs_per_s']:.0f} msg/s",
         f"(use case commits {pipeline['saturation']['use_case_commits_per_s']:.0f}/s)", ""),
        ("pipeline: steady 50/s", "", f"p50 {pipeline['steady']['p50_ms']:.2f} ms",
         f"p99 {pipeline['steady']['p99_ms']:.2f} ms"),
    ]
    for row in rows:
        print(f"{row[0]:<26}{row[1]:>14}  {row[2]:<34}{row[3]}")
    print(f"\nthroughput ratio pipeline/raw: {sat_ratio:.2f}  (target >= 0.5)")
    print(f"p99 ratio pipeline(steady)/raw(saturation): {p99_ratio:.2f}  (target <= 5)")
    print(f"p99 ratio pipeline(steady)/raw(steady): {p99_vs_steady:.2f}")
    return {"floor": floor, "pipeline": pipeline}, sat_ratio >= 0.5 and p99_ratio <= 5


def http_section() -> Section:
    result = http.measure_http()
    return {"http": result}, http.report(result)


def deploys_section() -> Section:
    result = deploys.measure_deploys()
    return {"deploys": result}, deploys.report(result)


def tracing_section() -> Section:
    result = tracing.measure_tracing()
    return {"tracing": result}, tracing.report(result)


def diary_section() -> Section:
    result = diary.measure_diary()
    ok = diary.report(result)
    return {"diary": {k: v for k, v in result.items() if k != "explain"}}, ok


def stories_section() -> Section:
    result = stories.measure_stories()
    return {"stories": result}, stories.report(result)


def resync_section() -> Section:
    result = resync.measure_resync()
    return {"resync": result}, resync.report(result)


SECTIONS: dict[str, Callable[[], Section]] = {"pipeline": pipeline_section, "http": http_section,
                                              "deploys": deploys_section,
                                              "tracing": tracing_section,
                                              "stories": stories_section,
                                              "resync": resync_section,
                                              "diary": diary_section}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("sections", nargs="*", metavar="{" + ",".join(SECTIONS) + "}",
                        help="sections to run (default: all)")
    names = parser.parse_args(argv).sections or [s for s in SECTIONS if s != "diary"]
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {', '.join(unknown)} (one of: {', '.join(SECTIONS)})")
    figures: dict[str, Any] = {}
    ok = True
    for name in names:
        section_figures, section_ok = SECTIONS[name]()
        figures.update(section_figures)
        ok &= section_ok
    print(json.dumps(figures))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
