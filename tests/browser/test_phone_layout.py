"""The app at 360 px, the narrowest common phone: nothing scrolls sideways,
every page's controls stay on screen, and a conversation's title keeps room."""

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ViewportSize, expect

from tests.browser.conftest import watch_console
from tests.browser.test_accessibility import (  # noqa: F401 (workspace: a fixture)
    SIGNED_IN_PAGES,
    Workspace,
    signed_in,
    workspace,
)

NARROW: ViewportSize = {"width": 360, "height": 740}

PAGES = SIGNED_IN_PAGES

# Everything wider than the viewport, or reaching past its right edge.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll("body *")].filter((el) => {
    const box = el.getBoundingClientRect();
    if (!box.width || getComputedStyle(el).visibility === "hidden") return false;
    const skipped = "[hidden], dialog:not([open]), .sidebar, .visually-hidden, .icon-sprite, .skip-link";
    if (el.closest(skipped)) return false;
    return box.right > width + 1 || box.left < -1;
  });
  return {
    scroll: document.scrollingElement.scrollWidth,
    width,
    wide: wide.slice(0, 5).map((el) => el.tagName.toLowerCase() + "." + [...el.classList].join(".")),
  };
}"""


@pytest.mark.parametrize(("name", "path", "ready"), PAGES, ids=[name for name, _, _ in PAGES])
def test_page_fits_a_360_px_phone(
    name: str,
    path: str,
    ready: str,
    browser: Browser,
    workspace: Workspace,  # noqa: F811
    live_server_url: str,
    screenshot: Callable[..., Path],
) -> None:
    context, page = signed_in(browser, live_server_url, workspace.anna)
    problems = watch_console(page)
    page.set_viewport_size(NARROW)
    page.goto(path.format(dm=workspace.dm, channel=workspace.channel))
    expect(page.locator(ready).first).to_be_visible()
    layout = page.evaluate(OVERFLOW)
    screenshot(page, f"narrow-{name}-360", full_page=False)
    assert layout["scroll"] <= layout["width"] == 360, layout
    assert layout["wide"] == [], layout
    if name in ("conversation", "channel"):
        # "Ben Berger" and "nordhafen-1a2b" fit whole, and the title opens the settings.
        title = page.locator("[data-conversation-title]")
        assert title.evaluate("e => e.scrollWidth <= e.clientWidth"), title.bounding_box()
        conversation = workspace.dm if name == "conversation" else workspace.channel
        expect(page.locator(".conv-head__link")).to_have_attribute("href", f"/c/{conversation}/settings/")
        page.locator(".conv-head__link").click()
        page.get_by_role("link", name="Files shared here").click()
        expect(page).to_have_url(re.compile(rf"/c/{conversation}/files/$"))
    assert problems == []
    context.close()
