"""Template tags of the compliance app, for pages of other apps: the messenger
shows the recording notice without importing compliance (DESIGN: messenger
never imports compliance)."""

from django import template

from compliance.models import RetentionPolicy
from compliance.policies import recording_notice as notice_for
from messenger.models import Conversation

register = template.Library()


@register.simple_tag
def recording_notice(conversation: Conversation) -> RetentionPolicy | None:
    """The regulated policy whose recording the participants must be told of (C20)."""
    return notice_for(conversation)
