"""The new text of an email reply (``messenger.mail.reply_text``).

The fixtures in ``mail_fixtures/`` are complete mails as Outlook, Gmail, Apple
Mail, iOS Mail, Thunderbird, Mutt and Roundcube send them (headers,
``multipart/alternative``, quoted-printable, base64, 8bit, ISO-8859-1). Each is
parsed with the stdlib ``email`` package and its parts fed to ``extract_reply``
together and one by one: all three must give the same new text.
"""

import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from messenger.mail.reply_text import extract_reply, html_to_text, unflow_text

FIXTURES = Path(__file__).parent / "mail_fixtures"


@dataclass(frozen=True)
class Case:
    fixture: str
    expected: str
    # Lines of the quoted original and of the signature: none may show up.
    absent: tuple[str, ...]


CASES = [
    Case(
        "outlook_en.eml",
        "Hi Alice,\n\nThanks, I\u2019ll send the contract tomorrow.\n\nWhat about the invoice?",
        (
            "Could you send me",
            "From:",
            "Sent:",
            "Subject:",
            "Best regards",
            "Bob Builder",
            "Project Manager",
            "+44",
        ),
    ),
    Case(
        "outlook_de.eml",
        "Hallo Alice,\n\ndanke, ich schicke den Vertrag morgen.\n\nWas ist mit der Rechnung für Dezember?",
        (
            "kannst du mir",
            "Von:",
            "Gesendet:",
            "Betreff:",
            "Mit freundlichen Grüßen",
            "Bob Builder",
            "GmbH",
            "___",
        ),
    ),
    Case(
        "outlook_ios_en.eml",
        "Sounds good, see you at 3.\n\nCan you bring the printed plans?",
        ("Shall we meet", "From:", "Get Outlook", "aka.ms", "Reply to this email", "___"),
    ),
    Case(
        "outlook_android_de.eml",
        "Ja, passt. Ich bin um 15 Uhr da.",
        ("Treffen wir uns", "From:", "Outlook für Android", "aka.ms"),
    ),
    Case(
        "outlook_plain_en.eml",
        "Hi Alice,\n\nthe delivery is confirmed for Friday, 7 am."
        " The driver will call you 30 minutes before.",
        ("Original Message", "From:", "when will the delivery", "Kind regards", "Bob"),
    ),
    Case(
        "outlook_plain_de.eml",
        "Hallo Alice,\n\ndie Lieferung ist für Freitag, 7 Uhr bestätigt."
        " Der Fahrer ruft 30 Minuten vorher an.",
        ("Ursprüngliche Nachricht", "Von:", "wann kommt", "Viele Grüße", "Bob"),
    ),
    Case(
        "gmail_en.eml",
        "Hi Alice,\n\nThanks, I'll send the contract tomorrow.\n\nWhat about the invoice?",
        ("wrote", "could you send me", "Regards", "Bob Builder", "Example Ltd.", "--"),
    ),
    Case(
        "gmail_de.eml",
        "Hallo Alice,\n\npasst, ich schicke dir den Vertrag morgen früh.\n\nBrauchst du auch die Anlage B?",
        ("schrieb", "alice@example.com", "kannst du mir", "Danke", "Viele Grüße", "Bob"),
    ),
    Case(
        "gmail_inline_de.eml",
        "Hallo Alice,\n\nJa, ab 14 Uhr.\n\nMache ich, beide Sätze.",
        ("schrieb", "Kommst du", "Bringst du"),
    ),
    Case(
        "gmail_regards_in_text.eml",
        "Hi Alice,\n\n"
        "for the new notification template, legal approved two closings."
        " Give my regards to Carla, by the way, she helped a lot.\n\n"
        "For German mails:\n\n"
        "Mit freundlichen Grüßen\n\n"
        "and for English mails:\n\n"
        "Kind regards\n\n"
        "Please use them exactly as written, and send Carla a preview before Friday's release.",
        ("Which closing formulas", "wrote", "Thanks,", "Bob"),
    ),
    Case(
        "apple_mail_en.eml",
        "Thanks, I\u2019ll send the contract tomorrow.\n\nWhat about the invoice?",
        ("wrote", "could you send me", "Cheers", "Bob", "Alice\n"),
    ),
    Case(
        "iphone_de.eml",
        "Passt, ich schicke den Vertrag morgen.\n\nKönnen wir Donnerstag telefonieren?",
        ("schrieb", "kannst du mir", "Danke", "iPhone", "\ufeff"),
    ),
    Case(
        "iphone_en_plain.eml",
        "Sure, 3 pm works for me.",
        ("wrote", "Can we move", "iPhone"),
    ),
    Case(
        "thunderbird_en.eml",
        "Thanks, I'll send the contract tomorrow. I still need the signature of our managing director, who is"
        " back in the office in the morning.\n\nWhat about the invoice?",
        ("wrote", "could you send me", "Bob Builder", "Example Ltd.", "--"),
    ),
    Case(
        "thunderbird_de.eml",
        "Hallo Alice,\n\ndie Zahlen kommen morgen, ich warte noch auf die Buchhaltung. Die Umsatzzahlen für"
        " Oktober sind schon fertig.",
        ("schrieb", "kannst du mir", "Quartal", "Grüße", "Bob", "Tel.", "--"),
    ),
    Case(
        "thunderbird_inline_en.eml",
        "Hi Alice,\n\nanswers below.\n\nYes, tomorrow.\n\nNot yet, accounting needs until Friday.\n\n"
        "Carla and me.",
        ("wrote", "Can you send the contract", "Is the invoice ready", "Who joins", "Bob", "--"),
    ),
    Case(
        "mutt_signature.eml",
        "Yes, Saturday at 8:00. I'll post a status update here when it's done.",
        ("wrote", "Is the migration", "Bob Builder", "Operations", "--"),
    ),
    Case(
        "roundcube_closing_en.eml",
        "Hi Alice,\n\nthe offer looks fine. Please go ahead and order the 40 licences.",
        ("Kind regards", "Bob Builder", "Head of Operations", "Example Ltd.", "+44", "www.", "shall I order"),
    ),
    Case(
        "roundcube_closing_de.eml",
        "Hallo Alice,\n\ndas Angebot passt. Bitte bestell die 40 Lizenzen.",
        ("Mit freundlichen Grüßen", "Leiter Einkauf", "Musterstraße", "+49", "www.", "soll ich", "schrieb"),
    ),
]
# Mails with a text/plain part only (Outlook in plain-text mode, iPhone, Mutt, Roundcube).
TEXT_ONLY = {
    "outlook_plain_en.eml",
    "outlook_plain_de.eml",
    "iphone_en_plain.eml",
    "mutt_signature.eml",
    "roundcube_closing_en.eml",
    "roundcube_closing_de.eml",
}
HTML_CASES = [case for case in CASES if case.fixture not in TEXT_ONLY]


def _message(name: str) -> EmailMessage:
    message = email.message_from_bytes((FIXTURES / name).read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _parts(name: str) -> tuple[str | None, str | None]:
    """The text and HTML parts, decoded; ``format=flowed`` undone as the mail
    bridge does before calling ``extract_reply``."""
    message = _message(name)
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    text = html = None
    if isinstance(text_part, EmailMessage):
        text = text_part.get_content()
        assert isinstance(text, str)
        if str(text_part.get_param("format", "")).lower() == "flowed":
            text = unflow_text(text, delsp=str(text_part.get_param("delsp", "")).lower() == "yes")
    if isinstance(html_part, EmailMessage):
        html = html_part.get_content()
        assert isinstance(html, str)
    return text, html


def _assert_reply(result: str, case: Case) -> None:
    assert result == case.expected
    for fragment in case.absent:
        assert fragment not in result, fragment


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.fixture)
def test_reply_from_both_parts(case: Case) -> None:
    text, html = _parts(case.fixture)
    _assert_reply(extract_reply(text=text, html=html), case)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.fixture)
def test_reply_from_the_text_part_alone(case: Case) -> None:
    text, _ = _parts(case.fixture)
    assert text is not None
    _assert_reply(extract_reply(text=text, html=None), case)


@pytest.mark.parametrize("case", HTML_CASES, ids=lambda case: case.fixture)
def test_reply_from_the_html_part_alone(case: Case) -> None:
    _, html = _parts(case.fixture)
    assert html is not None
    _assert_reply(extract_reply(text=None, html=html), case)


def test_fixtures_are_real_mails_in_the_encodings_clients_use() -> None:
    """Every client per language, and the transfer encodings and charsets they use."""
    encodings: set[str] = set()
    charsets: set[str] = set()
    plain_only: list[str] = []
    for path in FIXTURES.glob("*.eml"):
        message = _message(path.name)
        assert message["From"] and message["Subject"] and message["In-Reply-To"]
        if path.name in TEXT_ONLY:
            assert message.get_content_type() == "text/plain", path.name
            plain_only.append(path.name)
        else:
            assert message.get_content_type() == "multipart/alternative", path.name
        for part in message.walk():
            if not part.is_multipart():
                encodings.add(str(part.get("Content-Transfer-Encoding", "7bit")).lower())
                charsets.add(str(part.get_content_charset()).lower())
    assert {"quoted-printable", "base64", "7bit", "8bit"} <= encodings
    assert {"utf-8", "iso-8859-1", "us-ascii"} <= charsets
    assert len(plain_only) >= 4
    assert b"\r\n" in (FIXTURES / "outlook_en.eml").read_bytes()  # Outlook's line ends
    assert sorted(case.fixture for case in CASES) == sorted(path.name for path in FIXTURES.glob("*.eml"))


# --------------------------------------------------------------------------
# Plain text
# --------------------------------------------------------------------------

BODY = "Hi Alice,\n\nThanks, I'll send the contract tomorrow.\n\nWhat about the invoice?"
ORIGINAL = "Hi Bob,\n\ncould you send me the signed contract?\n\nAlice"


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


QUOTED = _quoted(ORIGINAL)


@pytest.mark.parametrize(
    "history",
    [
        # Outlook desktop / 365 / OWA, English and German, with and without Cc, Date instead of Sent.
        f"From: Alice Example <alice@example.com>\nSent: Thursday, December 3, 2026 10:00 AM\n"
        f"To: Bob Builder <bob@example.com>\nCc: Carla Muster <carla@example.com>\n"
        f"Subject: Contract\n\n{ORIGINAL}",
        f"________________________________\nFrom: Alice Example <alice@example.com>\n"
        f"Date: Thursday, 3 December 2026 at 10:00\nTo: Bob Builder <bob@example.com>\n"
        f"Subject: Re: Contract\n\n{ORIGINAL}",
        f"Von: Alice Example <alice@example.com>\nGesendet: Donnerstag, 3. Dezember 2026 10:00\n"
        f"An: Bob Builder <bob@example.com>\nCc: Carla Muster <carla@example.com>\n"
        f"Betreff: AW: Vertrag\n\n{ORIGINAL}",
        f"Von: Alice Example <alice@example.com>\nDatum: Donnerstag, 3. Dezember 2026 um 10:00\n"
        f"An: Bob Builder <bob@example.com>\nBetreff: Vertrag\n\n{ORIGINAL}",
        f"-----Original Message-----\n{ORIGINAL}",
        f"-----Ursprüngliche Nachricht-----\n{ORIGINAL}",
        f"-------- Original Message --------\nSubject: Contract\n{ORIGINAL}",
        # Gmail, one line and wrapped over two (the address split, or "wrote:" alone).
        f"On Thu, 3 Dec 2026 at 10:00, Alice Example <alice@example.com> wrote:\n\n{QUOTED}",
        f"On Thu, 3 Dec 2026 at 10:00, Alice Example <alice@example.com>\nwrote:\n\n{QUOTED}",
        f"On Thu, 3 Dec 2026 at 10:00, Alice Example <\nalice@example.com> wrote:\n\n{QUOTED}",
        f"Am Do., 3. Dez. 2026 um 10:00 Uhr schrieb Alice Example <alice@example.com>:\n\n{QUOTED}",
        f"Am Do., 3. Dez. 2026 um 10:00 Uhr schrieb Alice Example <\nalice@example.com>:\n\n{QUOTED}",
        # Apple Mail: the attribution quoted, or not.
        _quoted(f"On 3 Dec 2026, at 10:00, Alice Example <alice@example.com> wrote:\n\n{ORIGINAL}"),
        f"On 3 Dec 2026, at 10:00, Alice Example <alice@example.com> wrote:\n\n{QUOTED}",
        f"Am 03.12.2026 um 10:00 schrieb Alice Example <alice@example.com>:\n\n{QUOTED}",
        # Thunderbird.
        f"On 03.12.26 10:00, Alice Example wrote:\n{QUOTED}",
        f"Am 03.12.26 um 10:00 schrieb Alice Example:\n{QUOTED}",
        # An attribution with a date above an original that is not quoted.
        f"On 03.12.26 10:00, Alice Example wrote:\n\n{ORIGINAL}",
        # Other clients: "schrieb am", a bare "X wrote:" above a quote, nested quotes.
        f"Alice Example <alice@example.com> schrieb am 03.12.2026 10:00:\n{QUOTED}",
        f"Alice Example wrote:\n{QUOTED}",
        _quoted(f"{ORIGINAL}\n\n{_quoted('Earlier: what is the status?')}"),
    ],
)
def test_quoted_history_is_removed_from_plain_text(history: str) -> None:
    result = extract_reply(text=f"{BODY}\n\n{history}\n", html=None)
    assert result == BODY
    assert "could you send me" not in result


@pytest.mark.parametrize(
    "footer",
    [
        "Sent from my iPhone",
        "Sent from my iPad",
        "Von meinem iPhone gesendet",
        "Von meinem iPad gesendet",
        "Get Outlook for iOS<https://aka.ms/o0ukef>",
        "Get Outlook for Android",
        "Von Outlook für iOS gesendet<https://aka.ms/o0ukef>",
        "Von Outlook für Android gesendet",
        "Outlook für Android herunterladen<https://aka.ms/AAb9ysg>",
        "Outlook für iOS herunterladen",
        "Sent from Mail for Windows",
    ],
)
def test_mobile_footers_are_removed(footer: str) -> None:
    text = (
        f"{BODY}\n\n{footer}\n________________________________\nFrom: Alice Example <alice@example.com>\n"
        f"Sent: Thursday, December 3, 2026 10:00 AM\nTo: Bob <bob@example.com>\nSubject: Contract\n\n"
        f"{ORIGINAL}"
    )
    assert extract_reply(text=text, html=None) == BODY
    assert extract_reply(text=f"{BODY}\n\n{footer}", html=None) == BODY


@pytest.mark.parametrize(
    "formula",
    [
        "Best regards",
        "Kind regards,",
        "Regards",
        "Best,",
        "Cheers",
        "Thanks,",
        "Thank you!",
        "Mit freundlichen Grüßen",
        "Freundliche Grüße",
        "Viele Grüße,",
        "Beste Grüße",
        "Liebe Grüße",
        "Gruß",
        "LG",
        "MfG",
        "VG",
    ],
)
def test_a_closing_formula_with_its_signature_block_is_cut(formula: str) -> None:
    signature = (
        "Bob Builder\nProject Manager\nExample Ltd. | Musterstraße 1, 10115 Berlin\nTel. +49 30 1234567"
    )
    assert extract_reply(text=f"{BODY}\n\n{formula}\n{signature}", html=None) == BODY
    assert extract_reply(text=f"{BODY}\n\n{formula}\n\nBob", html=None) == BODY


@pytest.mark.parametrize("formula", ["Best regards", "Viele Grüße", "LG", "Cheers!"])
def test_a_farewell_at_the_very_end_goes_even_without_a_name(formula: str) -> None:
    # The name was in an HTML signature that is already gone, say.
    assert extract_reply(text=f"{BODY}\n\n{formula}", html=None) == BODY


@pytest.mark.parametrize(
    "text",
    [
        # The formula does not end the message: content follows.
        f"{BODY}\n\nBest regards\nBob\n\nP.S. The meeting moved to Friday.",
        f"{BODY}\n\nKind regards\n\nis what the customer writes at the end of every mail, so we keep it.",
        f"{BODY}\n\nViele Grüße\nkannst du mir noch die Rechnung schicken?",
        f"{BODY}\n\nRegards\n" + "\n".join(f"Line {number} of a long list" for number in range(1, 11)),
        # Regards inside a sentence, and a "Thanks" that is content.
        "Please give my regards to Carla.\n\nKind regards to the whole team, too, from all of us here.",
        "Can you check the numbers once more?\n\nThanks!",
        "Danke",
        # A formula that is the whole message is the message.
        "Viele Grüße\nBob",
        "Thanks,\nBob",
    ],
)
def test_content_that_merely_contains_a_formula_is_kept(text: str) -> None:
    assert extract_reply(text=text, html=None) == text


def test_the_signature_delimiter_drops_the_signature_only() -> None:
    text = f"{BODY}\n\n-- \nBob Builder\nExample Ltd.\nhttps://example.com\n"
    assert extract_reply(text=text, html=None) == BODY


def test_a_double_dash_used_as_a_rule_is_content() -> None:
    text = (
        "Agenda for tomorrow:\n--\n"
        "We start with the budget, then we discuss the hiring plan for next year and the office move."
    )
    assert extract_reply(text=text, html=None) == text


def test_inline_answers_between_quotes_are_kept() -> None:
    text = (
        "Hi Alice,\n\nmy answers are inline.\n\n"
        "On Thu, 3 Dec 2026 at 10:00, Alice Example <alice@example.com> wrote:\n"
        "> Can you send the contract?\n"
        "> And the invoice?\n"
        "Contract: tomorrow.\n"
        "Invoice: on Friday.\n"
        ">\n> Who joins the call?\n\n"
        "Carla and me.\n\n"
        "> Thanks, Alice\n"
    )
    assert extract_reply(text=text, html=None) == (
        "Hi Alice,\n\nmy answers are inline.\n\nContract: tomorrow.\nInvoice: on Friday.\n\nCarla and me."
    )


def test_a_forwarded_message_is_the_users_content() -> None:
    text = (
        "FYI, see below.\n\n---------- Forwarded message ---------\nFrom: Carla Muster <carla@example.com>\n"
        "Date: Thu, 3 Dec 2026 at 09:00\nSubject: Delivery\nTo: Bob Builder <bob@example.com>\n\n"
        "The delivery is two days late."
    )
    assert extract_reply(text=text, html=None) == text


@pytest.mark.parametrize(
    "text",
    [
        "Meeting notes:\nFrom: Berlin office\nDate: Monday\nTo: Munich\n\nAll good.",
        "Travel plan:\nFrom: Berlin\nTo: Munich\nSubject to change, the train leaves at 10:00.",
    ],
)
def test_header_like_lines_of_the_user_are_kept(text: str) -> None:
    assert extract_reply(text=text, html=None) == text


def test_a_sentence_like_an_attribution_is_kept_without_a_quote() -> None:
    text = "On the whiteboard, Carla wrote:\nbudget approved, start in January."
    assert extract_reply(text=text, html=None) == text


@pytest.mark.parametrize(
    "text",
    [
        _quoted(ORIGINAL),
        f"\n\nOn Thu, 3 Dec 2026 at 10:00, Alice Example <alice@example.com> wrote:\n\n{QUOTED}\n",
        "Sent from my iPhone\n\n" + _quoted(ORIGINAL),
        f"-----Original Message-----\n{ORIGINAL}",
        "   \n\n",
        "",
    ],
)
def test_nothing_new_gives_an_empty_reply(text: str) -> None:
    assert extract_reply(text=text, html=None) == ""


def test_no_parts_give_an_empty_reply() -> None:
    assert extract_reply(text=None, html=None) == ""
    assert extract_reply(text=None, html="  ") == ""


def test_line_ends_and_invisible_characters_are_normalised() -> None:
    text = "\ufeffHi Alice,\r\n\r\n\r\n\r\nThanks,\u00a0I'll\u200b send it.   \r\n\r\n> quoted\r\n"
    assert extract_reply(text=text, html=None) == "Hi Alice,\n\nThanks, I'll send it."


# --------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------


def test_html_is_preferred_over_the_text_part() -> None:
    html = "<div>From the <b>HTML</b> part.</div>"
    assert extract_reply(text="From the text part.", html=html) == "From the HTML part."


def test_an_html_part_without_text_falls_back_to_the_text_part() -> None:
    html = '<html><body><img src="cid:image001.png@01DB4572"></body></html>'
    assert extract_reply(text=f"{BODY}\n\n> quoted", html=html) == BODY


def test_an_indenting_blockquote_is_content() -> None:
    # Gmail's "indent" button; a quote has a border or type="cite".
    html = (
        '<div dir="ltr">Steps:<blockquote style="margin:0 0 0 40px;border:none;padding:0px">'
        "<div>Open the settings.</div></blockquote><div>Done.</div></div>"
    )
    assert extract_reply(text=None, html=html) == "Steps:\nOpen the settings.\nDone."


def test_an_outlook_header_inside_a_quote_does_not_cut_a_bottom_posted_answer() -> None:
    html = (
        '<div class="moz-cite-prefix">On 03.12.26 10:00, Alice Example wrote:<br></div>'
        '<blockquote type="cite"><p>Any news?</p><div id="appendonsend"></div>'
        '<hr style="display:inline-block;width:98%"><div id="divRplyFwdMsg"><b>From:</b> Bob</div>'
        "<p>Older mail</p></blockquote>"
        "<p>Yes: the contract is signed.</p>"
    )
    assert extract_reply(text=None, html=html) == "Yes: the contract is signed."


@pytest.mark.parametrize(
    "history",
    [
        '<div class="yahoo_quoted"><div>On Thursday, 3 Dec 2026, Alice wrote:</div><div>Original</div></div>',
        '<div class="protonmail_quote">On Thursday, Alice wrote:<br><blockquote>Original</blockquote></div>',
        '<div><div class="OutlookMessageHeader"><hr><b>From:</b> Alice</div><p>Original</p></div>',
        '<div style="border:none;border-top:solid #B5C4DF 1.0pt;padding:3.0pt 0cm 0cm 0cm"><p>'
        "<b>From:</b> Alice</p></div><p>Original</p>",
        "<blockquote><div>Original</div></blockquote>",
    ],
)
def test_other_structural_quotes_are_removed(history: str) -> None:
    html = f"<div>Thanks, done.</div>{history}"
    assert extract_reply(text=None, html=html) == "Thanks, done."


def test_html_signatures_are_removed() -> None:
    html = (
        "<div>Thanks, done.</div>"
        '<div id="Signature"><p>Bob Builder</p></div>'
        '<div class="gmail_signature">Bob Builder, Example Ltd.</div>'
        '<pre class="moz-signature" cols="72">-- \nBob</pre>'
        '<div id="AppleMailSignature">Sent from my iPhone</div>'
    )
    assert extract_reply(text=None, html=html) == "Thanks, done."


def test_the_quote_mark_cannot_be_smuggled_in() -> None:
    assert extract_reply(text=None, html="<p>Hello \ue000world</p>") == "Hello world"
    assert extract_reply(text="Hello \ue000world", html=None) == "Hello world"


# --------------------------------------------------------------------------
# html_to_text
# --------------------------------------------------------------------------


def test_blocks_and_line_breaks() -> None:
    html = "<div>One<br>Two</div><div><br></div><div>Three<br></div><div>Four</div><p>Five</p><p>Six</p>"
    assert html_to_text(html) == "One\nTwo\n\nThree\nFour\n\nFive\n\nSix"


def test_outlook_lines_are_lines_and_its_empty_paragraphs_blank_lines() -> None:
    html = (
        '<p class="MsoNormal">Hi Bob,<o:p></o:p></p><p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
        '<p class="MsoNormal">Line one<o:p></o:p></p><p class="MsoNormal">Line two<o:p></o:p></p>'
    )
    assert html_to_text(html) == "Hi Bob,\n\nLine one\nLine two"


def test_lists() -> None:
    html = (
        "<div>Items:</div><ul><li>Apples</li><li><p>Pears</p><ol><li>ripe</li><li>green</li></ol></li></ul>"
        "<p>End</p>"
    )
    assert html_to_text(html) == "Items:\n- Apples\n- Pears\n  1. ripe\n  2. green\n\nEnd"


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ('<a href="https://example.com/offer">the offer</a>', "the offer (https://example.com/offer)"),
        ('<a href="https://example.com/">https://example.com</a>', "https://example.com"),
        ('<a href="http://www.example.com">www.example.com</a>', "www.example.com"),
        ('<a href="mailto:alice@example.com">alice@example.com</a>', "alice@example.com"),
        ('<a href="mailto:alice@example.com">Alice</a>', "Alice (alice@example.com)"),
        ('<a href="#top">top</a>', "top"),
        ('<a href="https://example.com"><img src="logo.png"></a>', ""),
        (
            '<a href="https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fexample.com%2Fplan&amp;'
            'data=05%7C02&amp;reserved=0">the plan</a>',
            "the plan (https://example.com/plan)",
        ),
    ],
)
def test_links(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_head_style_script_and_hidden_elements_are_dropped() -> None:
    html = (
        "<html><head><title>Re: Contract</title><style>p {color: red}</style></head><body>"
        '<span style="display: none">preheader</span><script>alert(1)</script><p>Shown</p><!-- a comment -->'
        # Outlook's "downlevel-revealed" list bullet: shown by every client but Outlook.
        '<p class="MsoListParagraph"><![if !supportLists]>·<![endif]> Item</p></body></html>'
    )
    assert html_to_text(html) == "Shown\n\n· Item"


def test_entities_spaces_and_invisible_characters() -> None:
    html = "<p>Fish &amp; Chips &lt;3 &euro;5 &#39;hot&#39;&nbsp;&nbsp;now\u200b\u200d\ufeff</p>"
    html += "<p>\u00a0</p><p>x</p>"
    assert html_to_text(html) == "Fish & Chips <3 €5 'hot'  now\n\nx"


def test_runs_of_blank_lines_collapse_to_one() -> None:
    html = "<div>One</div>" + "<div><br></div>" * 5 + "<p>&nbsp;</p><p></p><div>Two</div>"
    assert html_to_text(html) == "One\n\nTwo"


def test_preformatted_text_keeps_its_lines() -> None:
    assert html_to_text("<p>Code:</p><pre>  a = 1\n  b = 2</pre>") == "Code:\n\n  a = 1\n  b = 2"


def test_deeply_nested_html_is_fine() -> None:
    # Unclosed tags nest: no recursion limit, and nothing quadratic in the depth.
    assert html_to_text("<div>" * 5000 + "deep") == "deep"
    assert extract_reply(text=None, html="<div><span>" * 10000 + "deep") == "deep"


# --------------------------------------------------------------------------
# unflow_text
# --------------------------------------------------------------------------


def test_flowed_lines_are_joined() -> None:
    text = "This is a long \nline.\n\n> quoted and \n> wrapped\nnext \n-- \nBob"
    assert unflow_text(text) == "This is a long line.\n\n> quoted and wrapped\nnext \n-- \nBob"


def test_delsp_removes_the_space_of_the_soft_break() -> None:
    assert unflow_text("Zusammen \ngeschrieben", delsp=True) == "Zusammengeschrieben"
    assert unflow_text(" >not a quote (space-stuffed)") == ">not a quote (space-stuffed)"
