"""Journey 6, the auditor: opens a case, finds a deleted message by its old
text, reconstructs the conversation, exports it, and the download verifies.

A Celery worker runs beside daphne on the test database, as in the real stack:
it writes the snapshot that beat's sweep would queue
(``compliance.snapshot_conversation``) and builds the export
(``compliance.export``). The chat happens through the services; one more edit
comes after the snapshot, so it is only in the live chat: the pages and the ZIP
must never show it.
"""

import hashlib
import json
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from compliance import tasks as compliance_tasks
from compliance.models import RetentionRecord
from messenger import services as chat
from tests.browser.conftest import DESKTOP, PHONE, watch_console
from tests.browser.test_accessibility import auditor, auditor_wiped_afterwards  # noqa: F401 (fixtures)
from tests.browser.test_chat_journey import person
from tests.browser.test_login_journey import MFA_PATH, TotpUser
from tests.browser.test_offboarding_journey import off_the_loop
from tests.factories import PASSWORD
from tests.live import REPO_ROOT, TASK_QUEUE

CASE = "Betriebsprüfung 2026 · Nordhafen"
SECRET = "Der Rabatt für Nordhafen bleibt unter uns: 18 Prozent."
FIRST, SECOND = "Lieferung am Montag um 9 Uhr.", "Lieferung am Dienstag um 9 Uhr."
LIVE_ONLY = "Lieferung am Mittwoch um 9 Uhr."


@dataclass
class Story:
    otto: TotpUser
    dm: int
    edited: int
    deleted: int


@pytest.fixture
def story(auditor_wiped_afterwards: TotpUser, live_worker: Path) -> Story:  # noqa: F811
    anna, ben = person("Anna Albers"), person("Ben Berger")

    def chat_and_archive() -> tuple[int, int, int]:
        dm = chat.direct_open(actor=anna, other_user_id=ben.pk).pk
        chat.message_send(actor=anna, conversation_id=dm, body="Guten Morgen Ben, kurz zu Nordhafen.")
        edited = chat.message_send(actor=ben, conversation_id=dm, body=FIRST).message.pk
        deleted = chat.message_send(actor=anna, conversation_id=dm, body=SECRET).message.pk
        chat.message_edit(actor=ben, message_id=edited, body=SECOND)
        chat.message_delete(actor=anna, message_id=deleted)
        # What beat's sweep queues for a conversation whose journal moved on.
        queued = compliance_tasks.snapshot_conversation.apply_async((dm,), queue=TASK_QUEUE)
        done = f"[{queued.id}] succeeded"
        deadline = time.monotonic() + 30
        while done not in live_worker.read_text(errors="replace"):
            assert time.monotonic() < deadline, f"the snapshot did not run (log: {live_worker})"
            time.sleep(0.1)
        assert RetentionRecord.objects.filter(conversation_id=dm).count() == 1
        chat.message_edit(actor=ben, message_id=edited, body=LIVE_ONLY)
        return dm, edited, deleted

    dm, edited, deleted = off_the_loop(chat_and_archive)
    return Story(otto=auditor_wiped_afterwards, dm=dm, edited=edited, deleted=deleted)


def shoot(page: Page, screenshot: Callable[..., Path], name: str) -> None:
    """Desktop and phone screenshots; at phone width nothing may scroll sideways."""
    for size, width in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        # Two frames: what the page does when it narrows (the search filters fold) is laid out.
        page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
        page.evaluate("window.scrollTo(0, 0)")  # a link to #m… scrolled: the sticky navigation would move
        screenshot(page, f"auditor-{name}-{width}")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width} width"
        # The navigation's entry for this page is on screen, not cut off at the edge.
        current = page.locator('.ws-nav__links [aria-current="page"]').bounding_box()
        assert current is not None and current["x"] >= 0, (name, width, current)
        assert current["x"] + current["width"] <= size["width"], (name, width, current)
    page.set_viewport_size(DESKTOP)


def test_the_auditor_finds_a_deleted_message_reconstructs_and_exports_it(
    browser: Browser,
    story: Story,
    live_server_url: str,
    screenshot: Callable[..., Path],
    tmp_path: Path,
) -> None:
    context = browser.new_context(base_url=live_server_url, viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    problems = watch_console(page)
    page.goto("/accounts/login/")
    page.locator("#id_login").fill(story.otto.user.email)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(re.escape(MFA_PATH)))
    page.locator("input[name=code]").fill(story.otto.current_code())
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page).to_have_url(re.compile(r"://[^/]+/$"))

    # The workspace's home: open a case with its legal basis.
    page.goto("/compliance/")
    expect(page.get_by_role("heading", name="Cases", exact=True)).to_be_visible()
    page.get_by_label("Name").fill(CASE)
    page.get_by_label("Legal basis").fill("AO §147 (6): the tax auditor's access to business correspondence.")
    page.get_by_label("Scope").fill("Anna Albers and Ben Berger, 2026")
    page.get_by_role("button", name="Open case").click()
    expect(page).to_have_url(re.compile(r"/compliance/cases/\d+/$"))
    case_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    expect(page.get_by_role("heading", level=1)).to_have_text(CASE)
    expect(page.get_by_text(f"Case “{CASE}” opened.")).to_be_visible()
    expect(page.locator(".ws-kind")).to_have_text(["Case opened"])
    shoot(page, screenshot, "case")

    # The old words find nothing among the last versions; with every version, the deletion.
    page.get_by_role("link", name="Search the archive").click()
    page.get_by_label("Words").fill("Rabatt Nordhafen")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("heading", name="0 results")).to_be_visible()
    expect(page.get_by_text("deleted versions are left out unless you include them")).to_be_visible()
    page.get_by_label("Include edited and deleted versions").check()
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("heading", name="2 results")).to_be_visible()
    hits = page.locator(".ws-table--hits tbody tr")
    expect(hits).to_have_count(2)
    expect(hits.locator(".ws-hit__text")).to_have_text([SECRET, SECRET])
    deleted_hit = hits.filter(has=page.locator(".ws-kind--deleted"))
    expect(deleted_hit.locator(".ws-kind")).to_have_text("Deleted (version 2)")
    expect(deleted_hit).to_contain_text("Anna Albers")
    # On a phone the filters fold into one line once there are results, which come first.
    page.set_viewport_size(PHONE)
    refine = page.locator("summary.ws-refine__summary")
    expect(refine).to_be_visible()
    expect(refine).to_contain_text("Rabatt Nordhafen")
    expect(page.get_by_label("Words")).to_be_hidden()
    results_top = page.get_by_role("heading", name="2 results").bounding_box()
    # The count and the first hit are on the first screen (below the form they were not).
    assert results_top is not None and results_top["y"] + 200 < PHONE["height"], results_top
    refine.click()
    expect(page.get_by_label("Words")).to_have_value("Rabatt Nordhafen")
    expect(page.get_by_label("Include edited and deleted versions")).to_be_checked()
    refine.click()
    # On a wide window they are open, with no line to fold them.
    page.set_viewport_size(DESKTOP)
    expect(page.get_by_label("Words")).to_be_visible()
    expect(refine).to_be_hidden()
    shoot(page, screenshot, "search-results")

    # The conversation as it stood when the message was deleted, from the records.
    deleted_hit.get_by_role("link", name="Anna Albers & Ben Berger").click()
    expect(page).to_have_url(
        re.compile(rf"/compliance/conversations/{case_id}/{story.dm}/\?at=.+#m{story.deleted}$")
    )
    expect(page.get_by_role("heading", level=1)).to_have_text("Anna Albers & Ben Berger")
    expect(page.locator(".rc-msg__seq")).to_have_text(["1", "2", "3"])
    gone = page.locator(f"#m{story.deleted}")
    expect(gone.locator(".rc-flag")).to_have_text("Deleted")
    expect(gone.locator(".rc-version__label")).to_have_text(["v1 · written", "v2 · deleted"])
    expect(gone.locator(".rc-version__body")).to_have_text([SECRET, SECRET])
    expect(gone.get_by_text("Deleted for readers. Its content when deleted:")).to_be_visible()
    edited = page.locator(f"#m{story.edited}")
    expect(edited.locator(".rc-flag")).to_have_text("Edited")
    expect(edited.locator(".rc-version__label")).to_have_text(["v1 · written", "v2 · edited · current"])
    expect(edited.locator(".rc-version__body")).to_have_text([FIRST, SECOND])
    expect(page.get_by_text(LIVE_ONLY)).to_have_count(0)
    expect(page.locator(".rc-records .ws-badge")).to_have_text(["matches its hash"])
    shoot(page, screenshot, "reconstruction")

    # Export it in every format; the worker builds it while the row polls.
    page.get_by_role("link", name="Export…").click()
    expect(page.get_by_label("Conversation", exact=True)).to_have_value(str(story.dm))
    for label in ("mbox", "JSON Lines", "PDF transcript"):
        expect(page.get_by_label(label)).to_be_checked()
    page.get_by_role("button", name="Export", exact=True).click()
    expect(
        page.get_by_text(
            re.compile(r"Export \d+ requested: it is built in the background, its progress shows below\.")
        )
    ).to_be_visible()
    row = page.locator("tr.ws-export")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Anna Albers & Ben Berger")
    expect(row.locator(".ws-badge")).to_have_text("Ready", timeout=60_000)
    zip_sha256 = re.sub(r"\s", "", row.locator("code.ws-hash").inner_text())
    assert re.fullmatch(r"[0-9a-f]{64}", zip_sha256), zip_sha256
    shoot(page, screenshot, "exports")
    with page.expect_download() as download_info:
        row.get_by_role("link", name="Download").click()
    download = download_info.value
    export_id = int(re.sub(r"\D", "", row.locator(".ws-table__primary").inner_text()))
    assert download.suggested_filename == f"kontor-export-{export_id}.zip"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == zip_sha256

    # The download verifies offline, and holds the deleted text but not the unarchived edit.
    verified = subprocess.run(
        [sys.executable, "scripts/verify_export.py", str(saved)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    summary = verified.stdout
    assert summary.startswith(f"OK: {saved}"), summary
    assert f"export {export_id} of case {case_id} ({CASE})" in summary, summary
    assert "1 records of 1 conversation(s)" in summary, summary
    assert "5 message versions match their records; 5 mbox messages" in summary, summary
    with zipfile.ZipFile(saved) as archive:
        versions = [json.loads(line) for line in archive.read("messages.jsonl").splitlines()]
    assert [(v["kind"], v["body"]) for v in versions if v["message"]["id"] == story.deleted] == [
        ("created", SECRET),
        ("deleted", SECRET),
    ]
    assert all(v["body"] != LIVE_ONLY for v in versions)

    # The audit trail of the case: every step, by the auditor, newest first.
    page.get_by_role("link", name="Audit trail").click()
    page.get_by_label("Case").select_option(label=CASE)
    page.get_by_role("button", name="Filter").click()
    trail = page.locator(".ws-table--trail tbody tr")
    expect(trail.locator(".ws-kind")).to_have_text(
        [
            "Export downloaded",
            "Export requested",
            "Archive viewed",
            "Archive searched",
            "Archive searched",
            "Case opened",
        ]
    )
    for index in range(6):
        expect(trail.nth(index)).to_contain_text(str(story.otto.user))
    expect(trail.nth(0)).to_contain_text(zip_sha256)
    expect(trail.nth(3)).to_contain_text("Rabatt Nordhafen")
    shoot(page, screenshot, "audit-trail")

    assert problems == [], "\n".join(problems)
    context.close()
