"""`make bench`: the raw AMQP floor and our pipeline, measured in one run, with ratios.

Targets (issue #2): pipeline throughput >= 0.5 x the raw floor; pipeline p99 latency at a
steady 50/s <= 5 x the raw floor's p99.
"""

from __future__ import annotations

import json
import os
import sys

from bench.amqp_floor import DEFAULT_URL, measure_floor
from bench.pipeline import measure_pipeline


def main() -> int:
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
    print(json.dumps({"floor": floor, "pipeline": pipeline}))
    ok = sat_ratio >= 0.5 and p99_ratio <= 5
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
