"""What the apps above messenger show on its pages.

The stack lets compliance import messenger, never the reverse: so compliance
hands its recording notice (C20: "this conversation is recorded") to messenger
at start-up (``compliance.apps``), and the conversation page asks for it while
it builds its context, so drawing the page makes no query.
"""

from collections.abc import Callable
from typing import Any

from messenger.models import Conversation

RecordingNotice = Callable[[Conversation], Any]

_recording_notice: list[RecordingNotice] = []


def recording_notice_provide(provider: RecordingNotice) -> None:
    """Install the function that says which recording notice a conversation gets."""
    _recording_notice[:] = [provider]


def recording_notice(conversation: Conversation) -> Any:
    """The notice of recording for ``conversation`` (a retention policy), or None."""
    return _recording_notice[0](conversation) if _recording_notice else None
