"""The diary at a million posts (`make bench ARGS=diary`): seed, then measure the feed in
process, a page 1,000 pages deep, the feed through the gateway, and likes under load.

Everything is its own: database `growth_diary_bench_diary`, bus namespace, free ports,
signing keys and gateway files in a temporary directory. No worker runs.

Seeding is set-based SQL on the admin connection (generate_series; no foreign-key triggers,
the secondary indexes dropped and rebuilt after the load): BENCH_DIARY_POSTS posts
(default 1,000,000; 90% published) by posts/100 authors, 3 likes and 1 reply per post.
Then, each in this run:
- feed page 1 of 20 in process (use case + serialization) against the same SQL on a plain
  psycopg connection: p50 ratio <= 2;
- the page 1,000 pages deep (cursors followed) against page 1, in process: p50 ratio <= 1.2;
- GET /diary/feed through nginx with wrk: >= 0.3 x the throughput of /diary/healthz;
- 20 threads each liking and unliking posts of their own for BENCH_DIARY_LIKES_S (10 s):
  throughput, and every counter they touched equal to its rows afterwards;
- EXPLAIN of the feed (page 1 and deep), a user's page, a post's replies and likes: no
  sequential scan on posts, likes or replies.

Environment: BENCH_DIARY_POSTS, BENCH_DIARY_SAMPLES (300), BENCH_DIARY_LIKES_S (10),
BENCH_DIARY_ROUNDS (4), and bench/http.py's BENCH_HTTP_* for wrk.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import Select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from bench import http

# BENCH_DATABASE_NAME names it (a suffix is added): dropped and made anew at start.
DATABASE = os.environ.get("BENCH_DATABASE_NAME", "growth_diary_bench") + "_diary"
NAMESPACE = f"benchdiary{os.getpid()}"
SERVICES = ("auth", "diary")
DEPTH = 1_000
PAGE = 20
LIKERS = 20
BASE_ENV = http.BASE_ENV

TARGETS = {  # figure -> (">=" or "<=", target)
    "feed in process / raw SQL p50": ("<=", 2.0),
    "page 1000 deep / page 1 p50": ("<=", 1.2),
    "gateway feed / healthz throughput": (">=", 0.3),
    "seed seconds": ("<=", 180.0),
}


def _env(name: str, default: str) -> str:
    return BASE_ENV.get(name) or default


def _scale() -> dict[str, int]:
    posts = int(_env("BENCH_DIARY_POSTS", "1000000"))
    return {"posts": posts, "authors": max(10, posts // 100), "likes": 3 * posts,
            "replies": posts}


# Seeding: the rows are generated consistent, so the load skips the foreign-key triggers
# (session_replication_role) and builds the secondary indexes once, after the rows are in.

SEED = """
INSERT INTO diary.authors (user_id, name, image, updated_at)
SELECT 'bu' || a, 'Author ' || a,
       CASE WHEN a % 3 = 0 THEN NULL ELSE 'https://img.example/' || a || '.png' END, now()
FROM generate_series(0, {authors} - 1) AS a
-- (every 1,000th author has no profile yet: the feed shows them with null name and image)
WHERE a % 1000 <> 999;

INSERT INTO diary.posts (id, title, content, status, author_id, published_at, version,
                         created_at, updated_at)
SELECT 'bp' || lpad(i::text, 8, '0'), 'Week ' || i,
       'Shipped part ' || i || ' of the plan; ' || repeat('notes on what went well. ', 8),
       CASE WHEN i % 10 = 0 THEN 'DRAFT' ELSE 'PUBLISHED' END::diary.post_status,
       'bu' || (i % {authors}),
       CASE WHEN i % 10 = 0 THEN NULL
            ELSE t0 + i * interval '1 second' + interval '1 minute' END,
       CASE WHEN i % 10 = 0 THEN 1 ELSE 2 END,
       t0 + i * interval '1 second', t0 + i * interval '1 second'
FROM generate_series(0, {posts} - 1) AS i, (SELECT now() - interval '30 days' AS t0) AS t;

-- like g: post g % posts, by one of three distinct users of that post: (user, post) unique
INSERT INTO diary.likes (id, user_id, post_id, created_at)
SELECT 'bl' || g, 'bu' || ((p * 7 + k * 3331) % {authors}), 'bp' || lpad(p::text, 8, '0'),
       t0 + p * interval '1 second' + (k + 2) * interval '1 minute'
FROM generate_series(0, {likes} - 1) AS g,
     LATERAL (SELECT g % {posts} AS p, g / {posts} AS k) AS pk,
     (SELECT now() - interval '30 days' AS t0) AS t;

INSERT INTO diary.replies (id, content, author_id, post_id, created_at, updated_at)
SELECT 'br' || g, 'Well done, ' || g, 'bu' || ((g * 13 + 17) % {authors}),
       'bp' || lpad((g % {posts})::text, 8, '0'),
       t0 + (g % {posts}) * interval '1 second' + interval '5 minutes',
       t0 + (g % {posts}) * interval '1 second' + interval '5 minutes'
FROM generate_series(0, {replies} - 1) AS g, (SELECT now() - interval '30 days' AS t0) AS t;
"""

STATS = """
INSERT INTO diary.post_stats (post_id, like_count, reply_count)
SELECT p.id, coalesce(l.n, 0), coalesce(r.n, 0)
FROM diary.posts p
LEFT JOIN (SELECT post_id, count(*) AS n FROM diary.likes GROUP BY post_id) l ON l.post_id = p.id
LEFT JOIN (SELECT post_id, count(*) AS n FROM diary.replies GROUP BY post_id) r
  ON r.post_id = p.id
"""

# Built once after the load instead of row by row: every index of the tables, and the
# primary keys and unique constraints of likes and replies (nothing references them).
SECONDARY_INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'diary' AND t.relname IN ('posts', 'likes', 'replies', 'authors')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
"""
CONSTRAINTS = """
SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'diary' AND t.relname IN ('likes', 'replies') AND c.contype IN ('p', 'u')
"""


def admin_conninfo() -> str:
    admin = BASE_ENV.get("DATABASE_ADMIN_URL", "postgresql://postgres@localhost:5432/postgres")
    return make_conninfo(admin, dbname=DATABASE)


def seed(scale: dict[str, int]) -> dict[str, float]:
    started = time.monotonic()
    steps: dict[str, float] = {}
    with psycopg.connect(admin_conninfo(), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        indexes = conn.execute(SECONDARY_INDEXES).fetchall()
        constraints = conn.execute(CONSTRAINTS).fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        for table, name, _ in constraints:
            conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        for statement in SEED.split(";\n\n"):
            if not statement.strip():
                continue
            t = time.monotonic()
            conn.execute(statement.format(**scale))
            steps[statement.split("INTO", 1)[1].split("(", 1)[0].strip()] = time.monotonic() - t
        t = time.monotonic()
        for table, name, definition in constraints:
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        for _, definition in indexes:
            conn.execute(definition)
        steps["indexes and constraints"] = time.monotonic() - t
        t = time.monotonic()
        conn.execute(STATS)
        steps["diary.post_stats"] = time.monotonic() - t
        t = time.monotonic()
        conn.execute("VACUUM (ANALYZE) diary.posts, diary.likes, diary.replies, "
                     "diary.post_stats, diary.authors")
        steps["vacuum analyze"] = time.monotonic() - t
    steps["total"] = time.monotonic() - started
    return steps


class DiaryStack(http.Stack):
    """auth (for its JWKS) and diary web processes behind the gateway."""

    def __init__(self, root: Path, nginx: str) -> None:
        super().__init__(root, nginx)
        self.env.update(DATABASE_NAME=DATABASE, EVENT_NAMESPACE=NAMESPACE)

    def prepare(self) -> None:
        from shared.keys import generate

        self.python("-m", "shared.bootstrap", "--database", DATABASE, "--drop")
        for svc in SERVICES:
            self.python("-m", "shared.migrate", svc, "upgrade", "head")
        generate(self.root / "keys")

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for svc in SERVICES:
            prom = self.root / "prometheus" / svc
            prom.mkdir(parents=True)
            env = {**self.env, "SERVICE": svc, "BIND": f"127.0.0.1:{self.ports[svc]}",
                   "PROMETHEUS_MULTIPROC_DIR": str(prom)}
            with open(self.log_path(svc), "wb") as log:
                self.webs[svc] = subprocess.Popen(
                    [str(http.ROOT / ".venv" / "bin" / "gunicorn"), "--config",
                     "deploy/gunicorn.conf.py", f"services.{svc}.app:create_app()"],
                    env=env, cwd=http.ROOT, stdout=log, stderr=log, start_new_session=True)
        self._start_gateway()
        for svc in SERVICES:
            self._wait_ready(svc)

    def log_path(self, svc: str) -> Path:
        return self.logs / f"bench-diary-{svc}-web.log"


def token_for(root: Path, user_id: str) -> str:
    from shared.config import Settings
    from shared.keys import load

    key = load(root / "keys")[-1]
    settings = Settings.from_env("auth")
    now = int(time.time())
    return jwt.encode({"sub": user_id, "iss": settings.token_issuer,
                       "aud": settings.token_audience, "iat": now, "exp": now + 3600},
                      key.private_key, algorithm="EdDSA", headers={"kid": key.kid})


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def raw_sql(query: Select[Any], **params: Any) -> tuple[str, dict[str, Any]]:
    """`query` as the SQL text and parameters SQLAlchemy sends through psycopg."""
    compiled = query.compile(dialect=postgresql.psycopg.dialect())  # type: ignore[attr-defined]
    return str(compiled), {**compiled.params, **params}


class InProcess:
    """The diary's own use cases and schemas against the bench database."""

    def __init__(self) -> None:
        os.environ["DATABASE_NAME"] = DATABASE
        from services.diary import usecases
        from services.diary.schemas import PostPageSchema
        from shared.config import database_url
        from shared.db import Database, UnitOfWork

        self.url = database_url("diary")
        self.db = Database(self.url, "diary", pool_size=LIKERS)
        self.usecases, self.schema = usecases, PostPageSchema()
        self.uow = lambda: UnitOfWork(self.db, source="/bench")

    def feed_page(self, viewer: str, cursor: str | None = None) -> dict[str, Any]:
        page = self.usecases.feed(self.uow(), viewer_id=viewer, limit=PAGE, cursor=cursor)
        return dict(self.schema.dump(page))

    def raw_connection(self) -> psycopg.Connection[Any]:
        url = make_url(self.url)
        return psycopg.connect(host=url.host, port=url.port, user=url.username,
                               password=url.password, dbname=DATABASE,
                               options="-c search_path=diary")

    def feed_sql(self, viewer: str) -> tuple[str, dict[str, Any]]:
        """The statement the first page's use case runs, as SQL text and parameters."""
        from services.diary.views import FEED

        return raw_sql(FEED.statement(limit=PAGE, after=False), viewer_id=viewer)


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure_feed(app: InProcess, viewer: str, samples: int) -> dict[str, Any]:
    cursor: str | None = None
    walk = time.monotonic()
    for _ in range(DEPTH - 1):  # page 1 -> page 1,000
        cursor = app.feed_page(viewer, cursor)["nextCursor"]
        assert cursor, "the feed ended before page 1,000"
    walked = time.monotonic() - walk
    deep_cursor = cursor
    sql, params = app.feed_sql(viewer)
    first, deep, raw = [], [], []
    with app.raw_connection() as conn:
        for _ in range(20):  # warm both paths (and psycopg's prepared statements)
            app.feed_page(viewer), app.feed_page(viewer, deep_cursor)
            conn.execute(sql, params).fetchall()
        for _ in range(samples):  # interleaved, so load on the machine hits all three alike
            first.append(timed(lambda: app.feed_page(viewer)))
            deep.append(timed(lambda: app.feed_page(viewer, deep_cursor)))
            raw.append(timed(lambda: conn.execute(sql, params).fetchall()))
    deep_page = app.feed_page(viewer, deep_cursor)
    return {"first_p50_ms": p50_ms(first), "deep_p50_ms": p50_ms(deep),
            "raw_p50_ms": p50_ms(raw), "samples": samples,
            "walk_to_page_1000_s": walked, "deep_page_items": len(deep_page["items"]),
            "ratios": {"feed in process / raw SQL p50": p50_ms(first) / p50_ms(raw),
                       "page 1000 deep / page 1 p50": p50_ms(deep) / p50_ms(first)},
            "_deep_cursor": deep_cursor}


def measure_likes(app: InProcess, seconds: float) -> dict[str, Any]:
    with app.raw_connection() as conn:
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM posts WHERE status = 'PUBLISHED' ORDER BY id LIMIT %s",
            (LIKERS * 50,))]
    slices = [ids[i::LIKERS] for i in range(LIKERS)]
    ops = [0] * LIKERS
    errors: list[BaseException] = []
    start, stop = threading.Barrier(LIKERS), threading.Event()

    def liker(n: int) -> None:
        user = f"bench-liker-{n}-{secrets.token_hex(3)}"
        start.wait()
        i = 0
        try:
            while not stop.is_set():
                post = slices[n][i % len(slices[n])]
                app.usecases.like_post(app.uow(), user_id=user, post_id=post)
                app.usecases.unlike_post(app.uow(), user_id=user, post_id=post)
                ops[n] += 2
                i += 1
        except BaseException as exc:  # noqa: BLE001 - reported
            errors.append(exc)

    threads = [threading.Thread(target=liker, args=(n,)) for n in range(LIKERS)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(30)
    with app.raw_connection() as conn:
        drift = conn.execute("""
            SELECT count(*) FROM post_stats s WHERE s.post_id = ANY(%s)
              AND (s.like_count, s.reply_count) IS DISTINCT FROM (
                  (SELECT count(*) FROM likes l WHERE l.post_id = s.post_id),
                  (SELECT count(*) FROM replies r WHERE r.post_id = s.post_id))""",
            (ids,)).fetchone()
    return {"threads": LIKERS, "seconds": seconds, "operations": sum(ops),
            "ops_per_s": sum(ops) / seconds, "posts_touched": len(ids),
            "counters_off": int(drift[0]) if drift else -1,
            "errors": [repr(e) for e in errors[:3]]}


def explain(app: InProcess, viewer: str, deep_cursor: str) -> dict[str, Any]:
    """Each new query's plan at this size: which scans it uses, and no Seq Scan on the
    big tables."""
    from services.diary import views as u
    from services.diary.models import PostStatus
    from shared.pagination import Keyset, decode_cursor
    with app.raw_connection() as conn:
        post, author = conn.execute(
            "SELECT id, author_id FROM posts WHERE status = 'PUBLISHED' "
            "ORDER BY id DESC LIMIT 1").fetchone() or ("", "")
    after_created, after_id = decode_cursor(deep_cursor)
    deep = {"after_created": after_created, "after_id": after_id}
    queries: dict[str, tuple[Any, dict[str, Any]]] = {  # the statements the use cases run
        "feed page 1": (u.FEED.statement(limit=PAGE, after=False), {"viewer_id": viewer}),
        "feed page 1000": (u.FEED.statement(limit=PAGE, after=True),
                           {"viewer_id": viewer, **deep}),
        "user's page (another reader)": (u.USER_PAGE[PostStatus.PUBLISHED],
                                         {"viewer_id": viewer, "author_id": author}),
        "user's page (their own)": (u.USER_PAGE[None],
                                    {"viewer_id": author, "author_id": author}),
        "a post's replies": (u.REPLIES_OF_POST, {"post_id": post}),
        "a post's likes": (u.LIKES_OF_POST, {"post_id": post}),
    }
    plans: dict[str, Any] = {}
    with app.raw_connection() as conn:
        for name, (query, values) in queries.items():
            if isinstance(query, Keyset):
                query = query.statement(limit=PAGE, after=False)
            sql, params = raw_sql(query, **values)
            text = "\n".join(r[0] for r in conn.execute(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql, params))
            seq = [line.strip() for line in text.splitlines() if "Seq Scan" in line
                   and any(f" on {t}" in line for t in ("posts", "likes", "replies"))]
            scans = sorted({line.strip().split(" on ")[0].lstrip("-> ").strip() + " on " +
                            line.split(" on ")[1].split()[0]
                            for line in text.splitlines() if " on " in line and "Scan" in line})
            plans[name] = {"seq_scans": seq, "scans": scans, "plan": text}
    return plans


GATEWAY = (("diary_healthz", "/diary/healthz", False),
           ("diary_feed", "/diary/feed?limit=20", True))


def measure_gateway(wrk: http.Wrk) -> dict[str, dict[str, float]]:
    """healthz and the feed through nginx, in alternating slices (BENCH_DIARY_ROUNDS, 4, of
    each, together as long as one wrk run): the machine is shared, and load that comes and
    goes then falls on both alike instead of on whichever ran second."""
    rounds = int(_env("BENCH_DIARY_ROUNDS", "4"))
    seconds = max(1, round(float(wrk.duration.rstrip("s")) / rounds))
    for _, path, authorized in GATEWAY:
        wrk.run(path, authorized, wrk.warmup)
    slices: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in GATEWAY}
    for r in range(rounds):
        for name, path, authorized in GATEWAY[::1 if r % 2 == 0 else -1]:
            slices[name].append(wrk.run(path, authorized, f"{seconds}s"))
    runs: dict[str, dict[str, float]] = {}
    for name, parts in slices.items():
        requests = sum(p["requests"] for p in parts)
        duration = sum(p["duration_s"] for p in parts)
        runs[name] = {"requests": requests, "duration_s": duration, "rps": requests / duration,
                      "p50_ms": statistics.median(p["p50_ms"] for p in parts),
                      "p99_ms": max(p["p99_ms"] for p in parts),
                      "non_200": sum(p["non_200"] for p in parts),
                      "socket_errors": sum(p["socket_errors"] for p in parts),
                      "rounds": len(parts)}
    return runs


def measure_diary() -> dict[str, Any]:
    scale = _scale()
    nginx = http.ensure_binary("nginx", "nginx-light")
    wrk_bin = http.ensure_binary("wrk", "wrk")
    root = Path(tempfile.mkdtemp(prefix="bench-diary-"))
    stack = DiaryStack(root, nginx)
    busy = http._cpu_busy()
    samples = int(_env("BENCH_DIARY_SAMPLES", "300"))
    try:
        stack.prepare()
        print(f"diary: seeding {scale}", flush=True)
        seeded = seed(scale)
        print(f"diary: seeded in {seeded['total']:.1f} s", flush=True)
        app = InProcess()
        viewer = "bu1"
        feed = measure_feed(app, viewer, samples)
        plans = explain(app, viewer, feed.pop("_deep_cursor"))
        stack.start()
        wrk = http.Wrk(wrk_bin, root, stack.url, token_for(root, viewer))
        runs = measure_gateway(wrk)
        likes = measure_likes(app, float(_env("BENCH_DIARY_LIKES_S", "10")))
        app.db.dispose()
        ratios = {**feed.pop("ratios"),
                  "gateway feed / healthz throughput":
                      runs["diary_feed"]["rps"] / runs["diary_healthz"]["rps"],
                  "seed seconds": seeded["total"]}
        return {"scale": scale, "seed_s": seeded, "feed": feed, "wrk": wrk.describe(),
                "runs": runs, "likes": likes, "ratios": ratios, "explain": plans,
                "cpu_busy_before": busy}
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def report(result: dict[str, Any]) -> bool:
    """Print every figure, ratio and target; True when every target is met."""
    ok = True
    s, f, likes = result["scale"], result["feed"], result["likes"]
    print(f"\ndiary at {s['posts']:,} posts ({s['authors']:,} authors, {s['likes']:,} likes, "
          f"{s['replies']:,} replies); CPU {result['cpu_busy_before']:.0%} busy before")
    print("  seed: " + ", ".join(f"{k} {v:.1f} s" for k, v in result["seed_s"].items()))
    print(f"  feed page 1 in process p50 {f['first_p50_ms']:.3f} ms, same SQL raw p50 "
          f"{f['raw_p50_ms']:.3f} ms, page 1000 p50 {f['deep_p50_ms']:.3f} ms "
          f"({f['samples']} samples each; walked 1000 pages in {f['walk_to_page_1000_s']:.1f} s)")
    print(f"  through nginx: {result['wrk']}, as {result['runs']['diary_feed']['rounds']:.0f} "
          "alternating slices of each (p50: their median, p99: their highest)")
    for name, r in result["runs"].items():
        print(f"    {name:<14}{r['rps']:>8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
              f"p99 {r['p99_ms']:6.2f} ms  ({r['requests']:.0f} requests, "
              f"{r['non_200']:.0f} non-200, {r['socket_errors']:.0f} socket errors)")
        ok &= r["non_200"] == 0 and r["socket_errors"] == 0
    print(f"  likes: {likes['threads']} threads x {likes['seconds']:.0f} s: "
          f"{likes['ops_per_s']:.0f} like/unlike per s ({likes['operations']} in all); "
          f"counters off afterwards: {likes['counters_off']} of {likes['posts_touched']}"
          f"{'' if not likes['errors'] else '; errors: ' + ', '.join(likes['errors'])}")
    ok &= likes["counters_off"] == 0 and not likes["errors"]
    for label, value in result["ratios"].items():
        op, target = TARGETS[label]
        met = value >= target if op == ">=" else value <= target
        ok &= met
        print(f"  {label}: {value:.3f}  (target {op} {target}){'' if met else '  MISSED'}")
    print("  EXPLAIN ANALYZE at this size:")
    for name, plan in result["explain"].items():
        seq = plan["seq_scans"]
        ok &= not seq
        print(f"    {name}: {'; '.join(plan['scans'])}"
              f"{'  SEQ SCAN: ' + '; '.join(seq) if seq else ''}")
    return ok


def main() -> int:
    result = measure_diary()
    ok = report(result)
    print(json.dumps({k: v for k, v in result.items() if k != "explain"}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
