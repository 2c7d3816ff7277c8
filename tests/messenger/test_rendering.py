"""Message bodies: safe Markdown, sanitised HTML, mentions.

What a reader's browser receives must never run anything, whatever a colleague
typed; what a writer meant (emphasis, code, lists, quotes, links, @mentions)
must still show.
"""

from html.parser import HTMLParser

import pytest

from messenger.rendering import Mentionable, render_body

BOB = Mentionable(user_id=2, name="Bob Brandt")
PEOPLE = {"bob": BOB}

SAFE_SCHEMES = ("http://", "https://", "mailto:")
DANGEROUS_TAGS = {
    "script",
    "img",
    "iframe",
    "object",
    "embed",
    "style",
    "svg",
    "form",
    "input",
    "link",
    "meta",
}


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser


def assert_inert(html: str) -> None:
    """No element that runs code, no event handler, no link to anything but the web or mail."""
    for tag, attrs in parse(html).elements:
        assert tag not in DANGEROUS_TAGS, html
        for name, value in attrs.items():
            assert not name.startswith("on"), html
            if name in ("href", "src", "action", "formaction"):
                assert (value or "").lower().startswith(SAFE_SCHEMES), html


@pytest.mark.parametrize(
    "body",
    [
        "<script>alert(1)</script>",
        "hello <script>document.cookie</script> world",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">click</a>',
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](  javascript:alert(1) )",
        "[click](vbscript:msgbox(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "<javascript:alert(1)>",
        "![x](https://evil.example/x.png)",
        '<iframe src="https://evil.example"></iframe>',
        '<div style="background:url(javascript:alert(1))">x</div>',
        '[t](https://ok.example "x" onmouseover="alert(1)")',
        "```\n<script>alert(1)</script>\n```",
        "`<img src=x onerror=alert(1)>`",
        "<svg onload=alert(1)>",
    ],
)
def test_dangerous_markup_is_inert(body: str) -> None:
    html = render_body(body, people=PEOPLE).html

    assert_inert(html)


def test_script_is_shown_as_text_not_run() -> None:
    html = render_body("<script>alert(1)</script>").html

    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_raw_html_is_shown_as_text() -> None:
    html = render_body('<b>bold</b> <img src=x onerror="alert(1)">').html

    assert "<b>" not in html
    assert "<img" not in html
    assert "".join(parse(html).text) == '<b>bold</b> <img src=x onerror="alert(1)">'


def test_javascript_link_is_not_a_link() -> None:
    html = render_body("[click me](javascript:alert(document.domain))").html

    assert "<a" not in html
    assert "href" not in html


def test_links_open_safely_in_a_new_tab() -> None:
    html = render_body("[docs](https://docs.example/a?b=1) and https://kontor.example/x").html

    links = [attrs for tag, attrs in parse(html).elements if tag == "a"]
    assert [link["href"] for link in links] == ["https://docs.example/a?b=1", "https://kontor.example/x"]
    for link in links:
        assert set((link["rel"] or "").split()) >= {"noopener", "noreferrer"}


def test_emphasis_code_and_strikethrough_render() -> None:
    html = render_body("*em* **strong** `x < y` ~~gone~~").html

    assert "<em>em</em>" in html
    assert "<strong>strong</strong>" in html
    assert "<code>x &lt; y</code>" in html
    assert "<s>gone</s>" in html or "<del>gone</del>" in html


def test_code_block_keeps_its_text() -> None:
    html = render_body("```\nif a < b:\n    pass\n```").html

    assert html.startswith("<pre><code")
    assert "if a &lt; b:\n    pass" in html


def test_lists_render() -> None:
    html = render_body("- apples\n- pears\n\n1. first\n2. second").html

    tags = [tag for tag, _ in parse(html).elements]
    assert tags == ["ul", "li", "li", "ol", "li", "li"]
    assert "<li>apples</li>" in html
    assert "<li>second</li>" in html


def test_quotes_render() -> None:
    html = render_body("> the customer said so\n\nand I agree").html

    assert "<blockquote>" in html
    assert "the customer said so" in html.split("</blockquote>")[0]
    assert "<p>and I agree</p>" in html


def test_line_breaks_are_kept() -> None:
    html = render_body("first line\nsecond line").html

    assert "first line<br" in html


def test_mention_of_a_member_becomes_a_mention() -> None:
    rendered = render_body("thanks @bob!", people=PEOPLE)

    spans = [attrs for tag, attrs in parse(rendered.html).elements if tag == "span"]
    assert len(spans) == 1
    assert "mention" in (spans[0]["class"] or "").split()
    assert spans[0]["data-user-id"] == "2"
    assert "@Bob Brandt" in rendered.html
    assert rendered.mentioned_user_ids == {2}
    assert rendered.mentions_everyone is False


def test_mention_is_case_insensitive() -> None:
    rendered = render_body("@BOB look", people=PEOPLE)

    assert rendered.mentioned_user_ids == {2}


def test_at_channel_mentions_everyone() -> None:
    rendered = render_body("@channel standup in 5", people=PEOPLE)

    assert rendered.mentions_everyone is True
    assert rendered.mentioned_user_ids == set()
    assert 'class="mention mention--everyone"' in rendered.html


@pytest.mark.parametrize("body", ["`@bob`", "```\n@bob\n```", "    @bob in an indented block"])
def test_mentions_inside_code_are_not_mentions(body: str) -> None:
    rendered = render_body(body, people=PEOPLE)

    assert rendered.mentioned_user_ids == set()
    assert "mention" not in rendered.html


def test_at_channel_inside_code_is_not_a_mention() -> None:
    rendered = render_body("type `@channel` to ping everyone", people=PEOPLE)

    assert rendered.mentions_everyone is False


@pytest.mark.parametrize("body", ["[@bob](https://wiki.example/bob)", "https://social.example/@bob"])
def test_mentions_inside_links_are_not_mentions(body: str) -> None:
    rendered = render_body(body, people=PEOPLE)

    assert rendered.mentioned_user_ids == set()
    assert "mention" not in rendered.html


def test_email_address_is_not_a_mention() -> None:
    rendered = render_body("write to sales@bob.example", people=PEOPLE)

    assert rendered.mentioned_user_ids == set()


def test_unknown_handles_stay_text() -> None:
    rendered = render_body("ask @nobody or @bobby", people=PEOPLE)

    assert rendered.mentioned_user_ids == set()
    assert rendered.mentions_everyone is False
    assert "<span" not in rendered.html
    assert "ask @nobody or @bobby" in rendered.html


def test_a_mention_label_with_markup_stays_text() -> None:
    people = {"mallory": Mentionable(user_id=9, name='<img src=x onerror="alert(1)">')}

    rendered = render_body("hi @mallory", people=people)

    assert_inert(rendered.html)
    assert rendered.mentioned_user_ids == {9}
    assert "&lt;img" in rendered.html
