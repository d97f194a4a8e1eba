"""The studio in a real browser: Debian's chromium (installed by `make install`), driven
headless by playwright (its driver only; no browser download). The studio runs as `make
studio` runs it (gunicorn, pid file through the runner) and is stopped by its pid file."""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import LocalSystem, running
from studio.__main__ import start
from studio.app import StudioSettings
from tests.studio.conftest import PASSWORD, SECRETS, Seeded

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Counts the colours of a screenshot in the page itself (no image library needed).
PIXEL_STATS = """async (png) => {
    const img = new Image();
    img.src = "data:image/png;base64," + png;
    await img.decode();
    const canvas = document.createElement("canvas");
    canvas.width = img.width; canvas.height = img.height;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, img.width, img.height).data;
    const colours = new Set();
    let inked = 0;
    for (let i = 0; i < data.length; i += 4 * 7) {
        colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
        if (data[i] + data[i + 1] + data[i + 2] < 600) inked++;
    }
    return {colours: colours.size, inked: inked / (data.length / (4 * 7)),
            width: img.width, height: img.height};
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def studio_url(database: str, seeded: Seeded, tmp_path: Path,
               request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    environ = {**os.environ, "STUDIO_PORT": str(port), "STUDIO_PASSWORD": PASSWORD,
               "STUDIO_HOST": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    environ.pop("STUDIO_WRITE", None)
    system = LocalSystem(ROOT, environ=environ, var=tmp_path / "var")
    settings = StudioSettings("127.0.0.1", port, PASSWORD, False, "unused")
    assert start(system, settings) == 0
    pid = system.live_pid("studio")
    assert pid is not None
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        system.stop_studio()
        # What the studio said, for a failing test (pytest shows captured output then).
        print(system.log_file("studio").read_text(errors="replace")[-6000:])
    assert not running(pid)
    assert not system.pid_file("studio").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make install)")
def test_sign_in_filter_posts_by_status_and_see_a_posts_likes(
        studio_url: str, seeded: Seeded, tmp_path: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            page.goto(f"{studio_url}/diary/posts/")
            expect(page).to_have_url(re.compile(r"/login\?next=/diary/posts/$"))
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator("h4")).to_contain_text("posts")

            # Filter by status through the page's own filter menu (once its scripts run).
            page.wait_for_load_state("load")
            status = page.locator("a.filter:text-is('Status')")
            for _ in range(10):  # a click before Bootstrap binds the menu opens nothing
                page.click("text=Add Filter")
                try:
                    status.wait_for(state="visible", timeout=2000)
                    break
                except PlaywrightTimeout:
                    continue
            status.click()
            page.locator("table.filters select.filter-val").last.select_option("DRAFT", force=True)
            page.click("button:has-text('Apply')")
            expect(page).to_have_url(re.compile(r"/diary/posts/\?flt\d+_status_equals=DRAFT$"))
            listed = page.locator("table.model-list")
            expect(listed).to_contain_text(seeded.draft)
            expect(listed).not_to_contain_text(seeded.published)

            # The published one, opened from its row, lists its likes.
            page.goto(f"{studio_url}/diary/posts/?flt1_status_equals=PUBLISHED")
            row = page.locator("table.model-list tr", has_text=seeded.published)
            row.locator("a[title='View Record']").click()
            expect(page.locator("body")).to_contain_text("3 likes")
            like_links = page.locator("a[href*='/diary/likes/details/']")
            expect(like_links).to_have_count(3)

            shot = page.screenshot(path=str(tmp_path / "post.png"), full_page=True)
            stats = page.evaluate(PIXEL_STATS, base64.b64encode(shot).decode())
            text = page.inner_text("body")
        finally:
            browser.close()
    assert "Traceback" not in text and "Internal Server Error" not in text
    for secret in SECRETS:
        assert secret not in text
    # A rendered page: the navigation bar, tables and text, not a blank or one-colour one.
    assert stats["width"] == 1280 and stats["height"] >= 600
    assert stats["colours"] > 20, stats
    assert 0.01 < stats["inked"] < 0.9, stats


def test_make_stop_stops_the_studio_by_its_pid_file(database: str, tmp_path: Path) -> None:
    from deploy.local import main

    port = free_port()
    environ = {**os.environ, "STUDIO_PORT": str(port), "PYTHONPATH": str(ROOT)}
    system = LocalSystem(ROOT, environ=environ, var=tmp_path / "var")
    assert start(system, StudioSettings("127.0.0.1", port, "", False, "unused")) == 0
    pid = system.live_pid("studio")
    assert pid is not None
    assert main(["stop"], environ=environ, var=tmp_path / "var") == 0  # what `make stop` runs
    assert system.spawned["studio"].wait(timeout=10) is not None  # reaped: it had exited
    assert not running(pid)
    assert not (tmp_path / "var" / "run" / "studio.pid").exists()
