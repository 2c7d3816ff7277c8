"""Sharing files the way people do: drop them on the conversation, or pick them with the paperclip.

Anna drops a PDF and a picture onto her conversation with Ben, watches the chips
upload, tries a "PDF" that is really a program (refused, with the server's
reason on the chip), removes it and sends. Ben sees the picture and the PDF card
arrive live and downloads the exact bytes; Carol, who is not in the
conversation, gets a 404 for the same file.
"""

import io
import random
import re
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Page, Route, expect

from tests.archive.conftest import EXECUTABLE
from tests.browser.conftest import DESKTOP, PHONE, watch_console
from tests.browser.test_chat_journey import person, sign_in

# A small but real PDF (one page with a line of text).
PDF = (
    b"%PDF-1.4\n"
    b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Contents 4 0 R"
    b"/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
    b"4 0 obj<</Length 54>>stream\n"
    b"BT /F1 18 Tf 72 760 Td (Angebot Nordhafen 2027) Tj ET\n"
    b"\nendstream endobj\n"
    b"5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def site_plan() -> bytes:
    """A picture worth looking at in a screenshot: a little site plan."""
    image = Image.new("RGB", (640, 400), "#e6f4f1")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 300, 640, 400), fill="#9cc9e6")  # the harbour
    for n, x in enumerate(range(40, 600, 140)):
        draw.rectangle(
            (x, 120 - n * 12, x + 100, 280), fill=("#0f766e", "#115e59", "#14b8a6", "#0b1f2a")[n % 4]
        )
    draw.line((0, 290, 640, 290), fill="#334155", width=6)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


PNG = site_plan()


def photo() -> bytes:
    """A photo-sized picture: the site plan with grain (grain does not compress, so some 600 KB)."""
    plan = Image.open(io.BytesIO(PNG)).resize((640, 400))
    grain = Image.frombytes("RGB", plan.size, random.Random(7).randbytes(640 * 400 * 3))
    out = io.BytesIO()
    Image.blend(plan, grain, 0.25).save(out, format="PNG")
    return out.getvalue()


def drop_files(
    page: Page, files: list[tuple[str, str, bytes]], screenshot_as: Callable[[Page], object] | None = None
) -> None:
    """What the browser does when files from the desktop are dropped on the conversation."""
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, type, bytes] of files) {
                transfer.items.add(new File([new Uint8Array(bytes)], name, { type }));
            }
            return transfer;
        }""",
        [[name, type_, list(data)] for name, type_, data in files],
    )
    page.dispatch_event(".chat__scroller", "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(".chat__scroller", "dragover", {"dataTransfer": transfer})
    expect(page.locator("[data-drop-zone]")).to_be_visible()
    expect(page.locator("[data-drop-zone]")).to_contain_text("Drop files to share them")
    if screenshot_as:
        screenshot_as(page)
    page.dispatch_event(".chat__scroller", "drop", {"dataTransfer": transfer})
    expect(page.locator("[data-drop-zone]")).to_be_hidden()


def test_files_dropped_and_attached_arrive_live_and_download_exactly(
    browser: Browser, browser_db: None, live_server_url: str, screenshot: Callable[..., Path]
) -> None:
    anna, ben, carol = person("Anna Albers"), person("Ben Berger"), person("Carol Conrad")
    contexts = [browser.new_context(base_url=live_server_url, viewport=DESKTOP) for _ in range(3)]
    # Keep a handle on Anna's uploads and sockets: to play back progress events
    # on a held upload, and to lose a send frame on the way.
    contexts[0].add_init_script(
        """(() => {
            const open = XMLHttpRequest.prototype.open;
            window.kontorUploads = [];
            XMLHttpRequest.prototype.open = function (...args) {
                window.kontorUploads.push(this);
                return open.apply(this, args);
            };
            const Native = window.WebSocket;
            window.kontorSockets = [];
            window.WebSocket = function (...args) {
                const socket = new Native(...args);
                window.kontorSockets.push(socket);
                return socket;
            };
            window.WebSocket.prototype = Native.prototype;
            Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
        })();"""
    )
    a = sign_in(contexts[0], anna)
    a.goto("/people/")
    a.get_by_role("button", name=f"Message {ben}").click()
    expect(a).to_have_url(re.compile(r"/c/\d+/$"))
    conversation_url = a.url
    b = sign_in(contexts[1], ben)
    b.goto(conversation_url)
    expect(b.locator("[data-composer]")).to_be_visible()
    watched = [watch_console(a), watch_console(b)]  # appended to as the pages run

    # With script, the paperclip stands in for the plain file input.
    clip = a.get_by_role("button", name="Attach files")
    expect(clip).to_be_visible()
    expect(a.locator("[data-attach-plain]")).to_be_hidden()

    # Anna drops a PDF and a picture onto the conversation: both upload at once.
    drop_files(
        a,
        [("Angebot Nordhafen.pdf", "application/pdf", PDF), ("Lageplan.png", "image/png", PNG)],
        lambda page: screenshot(page, "upload-drop-zone-desktop", full_page=False),
    )
    chips = a.locator("[data-uploads] .upload")
    expect(chips).to_have_count(2)
    expect(chips.nth(0)).to_contain_text("Angebot Nordhafen.pdf")
    expect(chips.nth(1)).to_contain_text("Lageplan.png")
    expect(a.locator('[data-uploads] .upload[data-state="done"]')).to_have_count(2)
    expect(chips.nth(0).locator(".upload__progress")).to_be_hidden()
    expect(a.locator("[data-upload-status]")).to_contain_text("is ready to send")

    # Through the paperclip she adds a "PDF" that is really a program: refused,
    # with the server's reason on its chip, and Send waits until it is removed.
    with a.expect_file_chooser() as chooser:
        clip.click()
    chooser.value.set_files({"name": "Rechnung.pdf", "mimeType": "application/pdf", "buffer": EXECUTABLE})
    refused = chips.filter(has_text="Rechnung.pdf")
    expect(refused).to_have_attribute("data-state", "failed")
    expect(refused.locator(".upload__error")).not_to_be_empty()
    expect(a.locator("[data-upload-status]")).to_contain_text("Rechnung.pdf was not uploaded")
    send = a.get_by_role("button", name="Send")
    expect(send).to_be_disabled()
    a.locator("#composer-body").fill("Hier das Angebot und der Lageplan für Nordhafen.")
    screenshot(a, "upload-composer-refused-desktop", full_page=False)
    refused.get_by_role("button", name="Remove Rechnung.pdf").click()
    expect(chips).to_have_count(2)
    expect(send).to_be_enabled()

    # An upload still on its way (held back here before it reaches the server):
    # its chip shows a progress bar, Send waits, and the cancel button aborts it.
    held: list[Route] = []
    a.route("**/files/upload/", lambda route: held.append(route))
    a.locator("[data-attach]").set_input_files(
        {"name": "Baustelle.png", "mimeType": "image/png", "buffer": photo()}
    )
    big = chips.filter(has_text="Baustelle.png")
    expect(big).to_have_attribute("data-state", "uploading")
    expect(big.locator("progress")).to_be_visible()
    expect(send).to_be_disabled()
    expect(big.locator(".upload__state")).to_have_text("Starting…")
    # What the browser reports as the bytes go out (the held request sends none).
    a.evaluate(
        """() => window.kontorUploads.at(-1).upload.dispatchEvent(
            new ProgressEvent("progress", { lengthComputable: true, loaded: 263000, total: 650000 }))"""
    )
    expect(big.locator(".upload__state")).to_have_text("40%")
    expect(big.locator("progress")).to_have_js_property("value", 40)
    screenshot(a, "upload-composer-progress-desktop", full_page=False)
    big.get_by_role("button", name="Cancel the upload of Baustelle.png").click()
    expect(chips).to_have_count(2)
    expect(send).to_be_enabled()
    expect(a.locator("[data-upload-status]")).to_contain_text("Upload of Baustelle.png cancelled")
    a.unroute("**/files/upload/")
    assert len(held) == 1

    screenshot(a, "upload-composer-chips-desktop", full_page=False)

    # She sends, and the frame is lost on the way: the chips go, and the pending
    # row shows the text and the files' names until the server confirms it.
    a.evaluate("() => { window.kontorSockets.at(-1).send = () => {}; }")
    a.locator("#composer-body").press("Enter")
    expect(a.locator("[data-uploads]")).to_be_hidden()
    pending = a.locator("article.msg--pending")
    expect(pending).to_contain_text("Hier das Angebot")
    expect(pending.locator(".file-card__name")).to_have_text(["Angebot Nordhafen.pdf", "Lageplan.png"])
    expect(pending.locator("[data-files] a")).to_have_count(0)  # no links before the file is shared
    # The socket drops; on reconnecting it sends again (the same client_id).
    a.evaluate("() => window.kontorSockets.at(-1).close()")
    mine = a.locator("article.msg", has_text="Hier das Angebot")
    expect(pending).to_have_count(0)
    expect(mine).to_have_count(1)
    expect(mine).not_to_have_class(re.compile("msg--pending"))
    expect(mine.locator(".file-card")).to_contain_text("Angebot Nordhafen.pdf")

    # Ben sees the PDF card and the picture live, in Anna's order.
    received = b.locator("article.msg", has_text="Hier das Angebot")
    expect(received).to_have_count(1)
    card = received.locator(".file-card")
    expect(card).to_contain_text("Angebot Nordhafen.pdf")
    expect(card).to_contain_text("PDF")
    picture = received.locator(".file-image img")
    expect(picture).to_have_attribute("alt", "Lageplan.png")
    expect(received.locator("[data-files] > *").first).to_have_class(re.compile("file-card"))
    b.wait_for_function(
        "() => { const img = document.querySelector('.file-image img');"
        " return img && img.complete && img.naturalWidth > 0; }"
    )
    screenshot(b, "upload-received-desktop", full_page=False)

    # The download is the exact bytes Anna dropped.
    with b.expect_download() as download:
        card.click()
    assert download.value.suggested_filename == "Angebot Nordhafen.pdf"
    assert Path(download.value.path()).read_bytes() == PDF
    file_url = card.get_attribute("href")
    assert file_url and re.fullmatch(r"/files/\d+/", file_url)

    # Carol is not in the conversation: for her the file does not exist.
    c = sign_in(contexts[2], carol)
    assert c.request.get(live_server_url + file_url).status == 404
    assert c.request.get(live_server_url + file_url + "?inline=1").status == 404

    # A picture pasted into the composer, on a phone: a chip with a proper name.
    b.set_viewport_size(PHONE)
    b.locator("#composer-body").focus()
    b.evaluate(
        """(bytes) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], "image.png", { type: "image/png" }));
            const init = { clipboardData: transfer, bubbles: true, cancelable: true };
            const paste = new ClipboardEvent("paste", init);
            document.querySelector("#composer-body").dispatchEvent(paste);
        }""",
        list(PNG),
    )
    pasted = b.locator("[data-uploads] .upload")
    expect(pasted).to_have_count(1)
    expect(pasted).to_contain_text(re.compile(r"Pasted image \d{4}-\d\d-\d\d \d\d\.\d\d\.png"))
    expect(pasted).to_have_attribute("data-state", "done")
    screenshot(b, "upload-composer-phone", full_page=False)
    b.locator("#composer-body").press("Enter")  # only a file: an empty body is fine
    expect(a.locator("article.msg .file-image img")).to_have_count(2)
    expect(b.locator("[data-uploads]")).to_be_hidden()

    # The only refusal was the program posing as a PDF.
    problems = watched[0] + watched[1]
    assert [p for p in problems if "/files/upload/" not in p] == []
    assert [p for p in problems if "/files/upload/" in p] == [
        f"HTTP 400: POST {live_server_url}/files/upload/",
        "console error: Failed to load resource: the server responded with a status of 400 (Bad Request)"
        f" ({live_server_url}/files/upload/)",
    ]
    for context in contexts:
        context.close()
