"""Reply addresses: ``<local>+<token>@<domain>`` of ``KONTOR_EMAIL_REPLY_ADDRESS``.

The token names a conversation and the person the mail went to, and carries an
HMAC of both under the server's secret key (130 bits, base32): nobody can write
into a conversation by guessing or changing an address. It is lower case and
short enough for a local part (RFC 5321: 64 characters), because some mail
servers fold local parts to lower case. The token proves who the mail was
*for*; ``incoming`` also requires the reply to come from that person's address.
"""

import base64
import hashlib
import hmac
import re
from email.utils import parseaddr

from django.conf import settings
from django.utils.crypto import constant_time_compare

_SALT = b"kontor.mail.reply-address.v1"
# ``c<conversation>u<user>x<mac>``: the numbers are base 36, whose digits include
# "u", so where the conversation ends is not read off the letters: every split
# is tried and the MAC says which one is genuine (see ``parse_reply_address``).
_TOKEN = re.compile(r"^c([0-9a-z]+)x([a-z2-7]{26})$")


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


def _mac(conversation_id: int, user_id: int) -> str:
    key = hashlib.sha256(_SALT + settings.SECRET_KEY.encode()).digest()
    digest = hmac.new(key, f"{conversation_id}:{user_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:26]


def base_address() -> str:
    """The address whose plus-addresses receive replies."""
    configured = settings.KONTOR_EMAIL_REPLY_ADDRESS or settings.DEFAULT_FROM_EMAIL
    return parseaddr(configured)[1].lower()


def reply_domain() -> str:
    return base_address().rsplit("@", 1)[-1]


def reply_address(*, conversation_id: int, user_id: int) -> str:
    """Where ``user_id`` replies to a mail about ``conversation_id``."""
    local, domain = base_address().rsplit("@", 1)
    token = f"c{_base36(conversation_id)}u{_base36(user_id)}x{_mac(conversation_id, user_id)}"
    return f"{local}+{token}@{domain}"


def parse_reply_address(address: str) -> tuple[int, int] | None:
    """``(conversation_id, user_id)`` of a genuine reply address, else None."""
    address = parseaddr(address)[1].strip().lower()
    if "@" not in address:
        return None
    local_part, domain = address.rsplit("@", 1)
    base_local, base_domain = base_address().rsplit("@", 1)
    if domain != base_domain or "+" not in local_part or len(local_part) > 64:  # RFC 5321's limit
        return None
    local, token = local_part.split("+", 1)
    if local != base_local:
        return None
    match = _TOKEN.match(token)
    if match is None:
        return None
    numbers, mac = match[1], match[2]
    found = None
    for at, letter in enumerate(numbers):
        if letter != "u" or at == 0 or at == len(numbers) - 1:
            continue
        conversation, user = numbers[:at], numbers[at + 1 :]
        conversation_id, user_id = int(conversation, 36), int(user, 36)
        if _base36(conversation_id) != conversation or _base36(user_id) != user:
            continue  # a leading zero: never written so
        if constant_time_compare(mac, _mac(conversation_id, user_id)):
            found = (conversation_id, user_id)
    return found
