"""Every write of the messenger. Import from here: ``from messenger import services``."""

from messenger.services.conversations import (
    Departure,
    channel_archive,
    channel_create,
    channel_join,
    conversation_leave,
    conversation_mark_read,
    conversation_rename,
    conversation_set_topic,
    direct_open,
    group_create,
    leaver_remove,
    member_remove,
    members_add,
    membership_set_muted,
    returner_rejoin_direct,
)
from messenger.services.external import (
    conversation_set_allows_external,
    external_contact_add,
    external_contact_remove,
)
from messenger.services.messages import Sent, message_delete, message_edit, message_send, reaction_set

__all__ = [
    "Departure",
    "Sent",
    "channel_archive",
    "channel_create",
    "channel_join",
    "conversation_leave",
    "conversation_mark_read",
    "conversation_rename",
    "conversation_set_allows_external",
    "conversation_set_topic",
    "direct_open",
    "external_contact_add",
    "external_contact_remove",
    "group_create",
    "leaver_remove",
    "member_remove",
    "members_add",
    "membership_set_muted",
    "message_delete",
    "message_edit",
    "message_send",
    "reaction_set",
    "returner_rejoin_direct",
]
