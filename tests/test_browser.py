"""The newcomer's path in a real browser: ask → 👎 → correct → run → save → approve in Review → retrain with a
tiny budget → Training tab, checking what is on the screen at each step.

Headless Debian Chromium through Playwright (``make test`` installs ``chromium``; Playwright cannot
download its own browsers here). The app runs in this process on a free port, over the read-only
``shop`` graph, with a scripted generator (held on an event, so the test sees the chat while an answer
is being written), a feedback store in a temp home and a real retrain round of a tiny model. The
screenshots land in ``test-output/browser/`` (``docs/screenshots/`` holds copies for the README).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CYPHERLOOP_CHROMIUM", "/usr/bin/chromium")
QUESTION = "Who are our customers?"
SCRIPTED = "MATCH (c:Customer) RETURN c.name AS name, c.city AS city ORDER BY name LIMIT 5"
CORRECTED = "MATCH (p:Product) RETURN p.name AS product ORDER BY product LIMIT 3"
OUTPUT_DIR = Path(__file__).resolve().parent.parent / "test-output" / "browser"
QUICK = ["max_steps=4", "eval_steps=2", "logging_steps=1", "per_device_train_batch_size=4",
         "gradient_accumulation_steps=1", "max_eval_samples=4", "lora_r=4", "gate_max_heldout=3",
         "gate_max_new_tokens=6"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HeldGenerator:
    """The scripted reply, given only once the test lets it go (``release``): the answer is 'being written'
    for as long as the test looks at the chat."""

    def __init__(self, reply: str) -> None:
        from agent.models.base import ScriptedGenerator

        self._inner = ScriptedGenerator({"*": reply})
        self.started = threading.Event()
        self.released = threading.Event()

    @property
    def version(self) -> str:
        return "scripted"

    def generate(self, *args, **kwargs) -> str:
        self.started.set()
        self.released.wait()
        return self._inner.generate(*args, **kwargs)

    def generate_batch(self, *args, **kwargs):
        self.started.set()
        self.released.wait()
        return self._inner.generate_batch(*args, **kwargs)


@pytest.fixture
def running_app(shop, settings_for, tmp_path, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (make test installs Debian's chromium)")
    pytest.importorskip("playwright")
    from finetune_helpers import scripted_gate, tiny_model_dir, write_dataset

    from agent.graph import CypherAgent
    from feedback_store.chroma import ChromaFeedbackStore
    from finetune.retrain import retrain
    from ui.app import build_app
    from ui.training_tab import TrainingHooks

    settings = settings_for(tmp_path / "home")
    store = ChromaFeedbackStore(settings)
    store.warm_up()  # load MiniLM now, not inside the first answer
    generator = HeldGenerator(SCRIPTED)
    agent = CypherAgent(settings, shop, generator, store)
    tiny = tiny_model_dir(tmp_path_factory.getbasetemp())
    data = write_dataset(tmp_path / "data")
    train_settings = settings.model_copy(update={"base_model": str(tiny), "device": "cpu"})

    def tiny_retrain(_settings):
        """A real round (dataset → LoRA training → gate → promotion) with a tiny model and a tiny budget; the
        gate asks scripted models, the trained one answering its held-out questions, so the promotion is
        earned (the tiny model itself scores what the base scores, and a tie is not promoted)."""
        return retrain(train_settings, "shop", "tiny-cpu", overrides=QUICK, dataset_dir=data,
                       graph_store=shop, generator_factory=scripted_gate(data, "runs"))

    hooks = TrainingHooks(settings, retrain_fn=tiny_retrain)
    app = build_app(agent, store, settings, training=hooks)
    app.queue().launch(
        server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        yield app, store, settings, generator, hooks
    finally:
        generator.released.set()
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
            pg = browser.new_page(viewport={"width": 1280, "height": 1000})
            pg.set_default_timeout(120_000)
            yield pg
        finally:
            browser.close()


def _shot(page, tmp_path: Path, name: str, locator=None) -> Path:
    path = tmp_path / name
    (locator or page).screenshot(path=str(path), **({} if locator else {"full_page": True}))
    try:
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, OUTPUT_DIR / name)
    except OSError:
        pass  # a read-only checkout: the copy in tmp_path stands
    return path


def _no_placeholder_headers(page) -> None:
    """Gradio draws an empty Dataframe with the headers 1, 2, 3: no visible table may show them."""
    for table in page.locator("table:visible").all():
        headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
        assert headers[:3] != ["1", "2", "3"], headers


def _not_cut(cell) -> None:
    """The cell shows all of its text (wrapped), none of it hidden past the cell's edge."""
    overflow = cell.evaluate(
        "td => [...td.querySelectorAll('*')].concat([td]).some(e => e.scrollWidth > e.clientWidth + 1)"
    )
    assert not overflow, cell.inner_text()


def test_the_newcomers_path(running_app, page, tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=120_000)
    app, store, settings, generator, hooks = running_app
    page.goto(app.local_url)
    expect(page.locator("#question textarea")).to_be_visible()
    expect(page.locator("#rows")).to_be_hidden()  # no empty table with placeholder headers
    _no_placeholder_headers(page)

    # ask; while the answer is being written there are no thumbs to click
    page.locator("#question textarea").fill(QUESTION)
    page.locator("#ask").click()
    chat = page.locator("#chat")
    generator.started.wait()
    expect(chat).to_contain_text("Working…")
    expect(chat.locator("button[aria-label='Dislike']")).to_have_count(0)
    expect(chat.locator("button[aria-label='Like']")).to_have_count(0)
    generator.released.set()

    # the answer: its Cypher, the steps with a time in seconds, the rows under the chat
    expect(chat.locator("code", has_text="ORDER BY name LIMIT 5")).to_be_visible()
    expect(chat).to_contain_text(re.compile(r"Steps · 1 attempt · \d+\.\d s"))
    expect(page.locator("#rows")).to_contain_text("Alice Meyer")
    expect(page.locator("#rows thead")).to_contain_text("name")
    _no_placeholder_headers(page)
    expect(chat.locator("button[aria-label='Dislike']").last).to_be_visible()
    _shot(page, tmp_path, "chat.png", page.locator("#chat-tab"))

    # 👎 (the exact aria-label: a substring match on "ike" would hit Dislike and Like)
    chat.locator("button[aria-label='Dislike']").last.click()
    panel = page.locator("#correction-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#chat-status")).to_contain_text("👎 stored")
    # the panel opens right under the chat, above the rows: no scrolling to find it
    assert panel.bounding_box()["y"] < page.locator("#rows").bounding_box()["y"]
    editor = page.locator("#correction-code .cm-content")
    expect(editor).to_contain_text("ORDER BY name LIMIT 5")
    expect(page.locator("#correction-rows")).to_be_hidden()

    # edit the Cypher in the editor, run it, see its rows
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(CORRECTED)
    expect(editor).to_contain_text("LIMIT 3")
    page.locator("#run-correction").click()
    expect(page.locator("#correction-status")).to_contain_text("3 rows")
    expect(page.locator("#correction-rows")).to_contain_text("Espresso Machine")

    # save it: the message names the id the Review tab lists
    page.locator("#save-correction").click()
    status = page.locator("#correction-status")
    expect(status).to_contain_text("Correction saved as")
    expect(status).not_to_contain_text("))")
    shown_id = re.search(r"saved as ([0-9a-f]{12})", status.inner_text()).group(1)
    _shot(page, tmp_path, "correction_saved.png")

    # it is in Chroma: through this process's store, and read by another process (the CLI)
    corrections = [f for f in store.list_feedback() if f.corrected_cypher]
    assert [f.corrected_cypher for f in corrections] == [CORRECTED]
    assert corrections[0].result_fingerprint and corrections[0].status == "pending"
    [example] = store.list_examples(status="pending")
    assert (example.question, example.cypher, example.source) == (QUESTION, CORRECTED, "correction")
    assert example.id.startswith(shown_id)
    assert store.counts()["down"] == 1  # the 👎 and its correction are one answer marked down
    cli = subprocess.run(
        [sys.executable, "-m", "ui.cli", "feedback", "--home", str(settings.home_dir), "list", "--kind",
         "examples"],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert cli.returncode == 0, cli.stderr
    assert example.id[:12] in cli.stdout and "correction" in cli.stdout

    # the Review tab lists it under the same id, the whole query readable
    page.get_by_role("tab", name="Review").click()
    review = page.locator("#review-table")
    expect(review).to_contain_text(shown_id)
    expect(review).to_contain_text(QUESTION)
    expect(review).to_contain_text(CORRECTED)
    _not_cut(review.locator("[role=gridcell]", has_text="RETURN p.name").first)
    _shot(page, tmp_path, "review_tab.png")

    # select the row, approve it
    review.locator("[role=gridcell]", has_text=QUESTION).first.click()
    expect(page.locator("#review-id textarea")).to_have_value(shown_id)
    page.locator("#review-approve").click()
    expect(page.locator("#review-status")).to_contain_text("approved")
    assert [e.status for e in store.list_examples()] == ["approved"]

    # the Schema tab
    page.get_by_role("tab", name="Schema").click()
    expect(page.locator("#schema-labels")).to_contain_text("Customer")
    expect(page.locator("#schema-rels")).to_contain_text("PLACED")
    _not_cut(page.locator("#schema-labels [role=gridcell]", has_text="customer_id").first)
    _no_placeholder_headers(page)

    # the Training tab before any retrain: the shipped adapter is named live, no empty plot boxes
    page.get_by_role("tab", name="Training").click()
    expect(page.locator("#training-counts")).to_contain_text("examples_approved")
    expect(page.locator("#training-live")).to_contain_text("shipped-general-v1")
    expect(page.locator("#training-versions")).to_contain_text("shipped-general-v1")
    expect(page.locator("#training-loss")).to_be_hidden()
    expect(page.locator("#training-empty")).to_contain_text("No loss or accuracy yet")

    # retrain with a tiny budget; when it is done the new version is live and its curves are drawn
    page.locator("#training-retrain").click()
    expect(page.locator("#training-status")).to_contain_text("Retrain started")
    hooks.wait()
    assert hooks.retrain_status.startswith("finished"), hooks.retrain_status
    page.locator("#training-refresh").click()
    expect(page.locator("#training-live")).to_contain_text("v0001")
    expect(page.locator("#training-status")).to_contain_text("finished")
    loss = page.locator("#training-loss img")
    expect(loss).to_be_visible()
    expect(page.locator("#training-accuracy img")).to_be_visible()
    natural, shown = loss.evaluate(
        "img => [img.naturalWidth / img.naturalHeight, img.getBoundingClientRect().width / "
        "img.getBoundingClientRect().height]"
    )
    # shown at its own aspect ratio: not cropped to a square, not squashed
    assert natural > 1.5 and abs(shown - natural) / natural < 0.03, (natural, shown)
    _no_placeholder_headers(page)
    _shot(page, tmp_path, "training_tab.png", page.locator("#training-tab"))


def _replace_code(page, editor, text: str) -> None:
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def test_a_reviewer_edits_the_query_reruns_it_and_approves_the_edit(running_app, page, tmp_path):
    from playwright.sync_api import expect

    from agent.core.feedback import Interaction

    expect.set_options(timeout=120_000)
    app, store, settings, generator, hooks = running_app
    generator.released.set()
    question = "Which three products come first by name?"
    wrong = "MATCH (p:Product) RETURN p.name AS product ORDER BY product DESC LIMIT 3"
    iid = store.log_interaction(Interaction(question=question, graph="shop", final_cypher=SCRIPTED,
                                            answer="…", row_count=5))
    store.add_correction(iid, wrong, app.controller.graph_store)  # a correction that is itself wrong
    [original] = store.list_examples(status="pending")

    page.goto(app.local_url)
    page.get_by_role("tab", name="Review").click()
    review = page.locator("#review-table")
    expect(review).to_contain_text(original.id[:12])
    review.locator("[role=gridcell]", has_text=question).first.click()
    expect(page.locator("#review-id textarea")).to_have_value(original.id[:12])
    edit_question = page.locator("#review-edit-question textarea")
    expect(edit_question).to_have_value(question)
    editor = page.locator("#review-edit-code .cm-content")
    expect(editor).to_contain_text("DESC LIMIT 3")

    # an edit that fails shows the database's error, and no rows
    _replace_code(page, editor, "MATCH (p:Product RETURN p.name")
    page.locator("#review-edit-run").click()
    expect(page.locator("#review-edit-status")).to_contain_text("CypherSyntaxError")
    expect(page.locator("#review-edit-rows")).to_be_hidden()

    # the fixed query runs read-only and shows its rows
    _replace_code(page, editor, CORRECTED)
    page.locator("#review-edit-run").click()
    expect(page.locator("#review-edit-status")).to_contain_text("3 rows")
    expect(page.locator("#review-edit-rows")).to_contain_text("Ceramic Mug Set")
    edit_question.fill("Name the first three products by name")
    _shot(page, tmp_path, "review_edit.png", page.locator("#review-tab"))

    page.locator("#review-edit-approve").click()
    expect(page.locator("#review-edit-status")).to_contain_text("the edited example approved")
    expect(review).not_to_contain_text(original.id[:12])  # no longer pending
    by_status = {e.status: e for e in store.list_examples()}
    edited, kept = by_status["approved"], by_status["rejected"]
    assert (edited.question, edited.cypher, edited.revised_from) == (
        "Name the first three products by name", CORRECTED, original.id)
    assert (kept.id, kept.question, kept.cypher) == (original.id, question, wrong)  # the log keeps it

    page.locator("#review-filter input").click()
    page.get_by_role("option", name="all").click()
    expect(review).to_contain_text(f"edited into {edited.id[:12]}")
    expect(review).to_contain_text(f"edited from {original.id[:12]}")
