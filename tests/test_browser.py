"""The app in a real browser: ask, 👎, edit the Cypher, run it, save it; the correction is in Chroma and in
Review.

Headless Debian Chromium through Playwright (``make test`` installs ``chromium``; Playwright cannot
download its own browsers here). The app runs in this process on a free port, over the read-only
``shop`` graph, with a scripted generator and a feedback store in a temp home.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CYPHERLOOP_CHROMIUM", "/usr/bin/chromium")
QUESTION = "Who are our customers?"
SCRIPTED = "MATCH (c:Customer) RETURN c.name AS name, c.city AS city ORDER BY name LIMIT 5"
CORRECTED = "MATCH (p:Product) RETURN p.name AS product ORDER BY product LIMIT 3"
OUTPUT_DIR = Path(__file__).resolve().parent.parent / "test-output" / "browser"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def running_app(shop, settings_for, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (make test installs Debian's chromium)")
    pytest.importorskip("playwright")
    from agent.graph import CypherAgent
    from agent.models.base import ScriptedGenerator
    from feedback_store.chroma import ChromaFeedbackStore
    from ui.app import build_app

    settings = settings_for(tmp_path / "home")
    store = ChromaFeedbackStore(settings)
    store.warm_up()  # load MiniLM now, not inside the first answer
    agent = CypherAgent(settings, shop, ScriptedGenerator({"*": SCRIPTED}), store)
    app = build_app(agent, store, settings)
    app.queue().launch(
        server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        yield app, store, settings
    finally:
        app.close()


@pytest.fixture
def page(running_app, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            pg = browser.new_page(viewport={"width": 1280, "height": 1600})
            pg.set_default_timeout(60_000)
            yield pg
        finally:
            browser.close()


def _shot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    try:
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, OUTPUT_DIR / name)
    except OSError:
        pass  # a read-only checkout: the copy in tmp_path stands
    return path


def test_thumbs_down_correction_reaches_chroma_and_review(running_app, page, tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)
    app, store, settings = running_app
    page.goto(app.local_url)

    # ask; the steps stream, then the answer with its Cypher and the rows
    page.locator("#question textarea").fill(QUESTION)
    page.locator("#ask").click()
    chat = page.locator("#chat")
    expect(chat.locator("code", has_text="ORDER BY name LIMIT 5")).to_be_visible()
    expect(chat).to_contain_text("Steps")
    expect(page.locator("#rows")).to_contain_text("Alice Meyer")

    # 👎 (the exact aria-label: a substring match on "ike" would hit Dislike and Like)
    chat.locator("button[aria-label='Dislike']").last.click()
    panel = page.locator("#correction-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#chat-status")).to_contain_text("👎 stored")
    editor = page.locator("#correction-code .cm-content")
    expect(editor).to_contain_text("ORDER BY name LIMIT 5")

    # edit the Cypher in the editor, run it, see its rows
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(CORRECTED)
    expect(editor).to_contain_text("LIMIT 3")
    page.locator("#run-correction").click()
    expect(page.locator("#correction-status")).to_contain_text("3 rows")
    expect(page.locator("#correction-rows")).to_contain_text("Espresso Machine")

    # save it
    page.locator("#save-correction").click()
    expect(page.locator("#correction-status")).to_contain_text("Correction saved")
    _shot(page, tmp_path, "correction_saved.png")

    # it is in Chroma: through this process's store, and read by another process (the CLI)
    corrections = [f for f in store.list_feedback() if f.corrected_cypher]
    assert [f.corrected_cypher for f in corrections] == [CORRECTED]
    assert corrections[0].result_fingerprint and corrections[0].status == "pending"
    [example] = store.list_examples(status="pending")
    assert (example.question, example.cypher, example.source) == (QUESTION, CORRECTED, "correction")
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "ui.cli",
            "feedback",
            "--home",
            str(settings.home_dir),
            "list",
            "--kind",
            "examples",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert cli.returncode == 0, cli.stderr
    assert example.id[:12] in cli.stdout and "correction" in cli.stdout

    # and in the Review tab
    page.get_by_role("tab", name="Review").click()
    review = page.locator("#review-table")
    expect(review).to_contain_text("LIMIT 3")
    expect(review).to_contain_text(QUESTION)
    shot = _shot(page, tmp_path, "review_tab.png")
    assert shot.stat().st_size > 10_000

    # select the row, approve it
    review.locator("[role=gridcell]", has_text=QUESTION).first.click()
    expect(page.locator("#review-id textarea")).to_have_value(example.id)
    page.locator("#review-approve").click()
    expect(page.locator("#review-status")).to_contain_text("approved")
    assert [e.status for e in store.list_examples()] == ["approved"]

    # the other tabs render from the same parts
    page.get_by_role("tab", name="Schema").click()
    expect(page.locator("#schema-labels")).to_contain_text("Customer")
    expect(page.locator("#schema-rels")).to_contain_text("PLACED")
    page.get_by_role("tab", name="Training").click()
    expect(page.locator("#training-counts")).to_contain_text("examples_approved")
