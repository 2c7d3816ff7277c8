"""The messenger's pages. Each view parses its input, makes one access or
service call and renders or redirects; ``messenger.services`` does every write.

Everything works with plain form posts. With JavaScript, the page's script
(static/js/chat/) sends the same actions over the websocket and keeps the page live.

A domain error becomes a 404 when it says "not found" (missing and not a
member get the same answer), otherwise a message to the person: nothing changed.
"""

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.http import AuthenticatedHttpRequest
from accounts.models import User
from accounts.selectors import user_has_mfa
from archive import services as archive_services
from archive.errors import FileRefused
from messenger import notices, presence, selectors, services
from messenger.errors import MessengerError, NotFound
from messenger.forms import (
    AllowExternalForm,
    ChannelForm,
    DirectoryForm,
    ExternalContactForm,
    GroupForm,
    MembersForm,
    MessageEditForm,
    MessageForm,
    MuteForm,
    NameForm,
    PageForm,
    ReactionForm,
    SearchForm,
    TopicForm,
)
from messenger.models import Message
from messenger.permissions import access_message
from messenger.rendering import MessageRow, continues_run, editable
from messenger.selectors import ConversationPage

T = TypeVar("T")

PEOPLE_LIMIT = 200
GROUP_NAME_MAX = 80


def _attempt(
    request: AuthenticatedHttpRequest,
    action: Callable[[], T],
    *,
    success: str = "",
    form: forms.Form | None = None,
    field: str | None = None,
) -> T | None:
    """Run one service call and return its result, or None if it was refused.

    Not found (or not a member) raises 404. Any other refusal is shown on the
    form when one is given, else as a message on the next page.
    """
    try:
        result = action()
    except NotFound as error:
        raise Http404(error.detail) from error
    except MessengerError as error:
        if form is not None:
            form.add_error(field, error.detail)
        else:
            messages.error(request, error.detail)
        return None
    if success:
        messages.success(request, success)
    return result


def _or_404(action: Callable[[], T]) -> T:
    try:
        return action()
    except NotFound as error:
        raise Http404(error.detail) from error


def _show_form_errors(request: AuthenticatedHttpRequest, form: forms.Form) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, str(error))


HOME_RECENT = 6


@login_required
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    """What is waiting (unread, most recent first), else the latest conversations,
    else how to start. The sidebar reuses the same rows: no extra queries."""
    items = selectors.sidebar_for_user(user=request.user)
    unread = [item for item in items if (item.unread or item.mentions) and not item.is_muted]
    context = {
        "mfa_enabled": user_has_mfa(user=request.user),
        "sidebar_items": items,
        "unread_items": unread,
        "recent_items": [] if unread else items[:HOME_RECENT],
    }
    return render(request, "messenger/home.html", context)


# --- A conversation ---------------------------------------------------------


def _is_latest(page: ConversationPage) -> bool:
    return not page.messages or page.messages[-1].message.seq >= page.conversation.last_seq


def _message_rows(user: User, page: ConversationPage, *, unread_after: int | None) -> list[MessageRow]:
    now = timezone.now()
    open_for_changes = page.conversation.archived_at is None
    rows: list[MessageRow] = []
    previous: Message | None = None
    divider_placed = unread_after is None
    for view in page.messages:
        message = view.message
        day = timezone.localtime(message.created_at).date()
        new_day = previous is None or timezone.localtime(previous.created_at).date() != day
        unread_divider = (
            not divider_placed and message.seq > (unread_after or 0) and message.author_id != user.pk
        )
        divider_placed = divider_placed or unread_divider
        rows.append(
            MessageRow(
                message=message,
                continues_run=continues_run(previous, message),
                can_edit=editable(message, conversation_open=open_for_changes, now=now),
                reactions=view.reactions,
                # Where each member's read marker stands; an author's own is no news.
                seen_by=[p for p in page.seen_by.get(message.pk, []) if p.pk != message.author_id],
                mentions_me=view.mentions_me,
                day=day if new_day else None,
                unread_divider=unread_divider,
            )
        )
        previous = message
    return rows


def _pending_row(user: User, page: ConversationPage) -> MessageRow:
    """The row of a send in flight, which the page's script copies (never saved)."""
    message = Message(conversation=page.conversation, author=user, created_at=timezone.now())
    return MessageRow(message=message, pending=True)


def _conversation_page(user: User, conversation_id: int, before: int | None = None) -> ConversationPage:
    return _or_404(
        lambda: selectors.conversation_page(user=user, conversation_id=conversation_id, before_seq=before)
    )


def _reply_target(user: User, conversation_id: int, message_id: int | None) -> Message | None:
    """The message a no-JS reply link points at, if it is in this conversation."""
    if message_id is None:
        return None
    try:
        message = access_message(user, message_id)
    except NotFound:
        return None
    return message if message.conversation_id == conversation_id and not message.is_deleted else None


def _chat_data(page: ConversationPage, *, is_latest: bool) -> dict[str, Any]:
    """What the page's script (static/js/chat/) needs of the open conversation (JSON, for CSP)."""
    return {
        "conversation": page.conversation.pk,
        "kind": page.conversation.kind,
        "title": page.title,
        "latest": is_latest,
        "seenBy": len(page.members) <= settings.KONTOR_SEEN_BY_MAX_MEMBERS,
        "maxChars": settings.KONTOR_MESSAGE_MAX_CHARS,
        "members": [
            {
                "id": m.user_id,
                "name": m.user.chat_name,
                "initials": m.user.initials,
                "avatar": reverse("accounts:avatar", args=[m.user_id]) if m.user.avatar else "",
            }
            for m in page.members
        ],
    }


def _render_conversation(
    request: AuthenticatedHttpRequest,
    page: ConversationPage,
    composer: MessageForm,
    *,
    event_id: int,
    reply_to: Message | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    is_latest = _is_latest(page)
    partner = page.partner
    can_write = page.conversation.archived_at is None and (partner is None or partner.is_active)
    # Everything the template shows is loaded here: drawing it makes no query.
    context = {
        "page": page,
        "conversation": page.conversation,
        "conversation_id": page.conversation.pk,
        "rows": _message_rows(user, page, unread_after=page.membership.last_read_seq),
        "composer": composer,
        "reply_to": reply_to,
        "event_id": event_id,
        "is_latest": is_latest,
        "online_ids": presence.online_user_ids([m.user_id for m in page.members]),
        "can_write": can_write,
        "chat_data": _chat_data(page, is_latest=is_latest),
        "pending_row": _pending_row(user, page) if can_write else None,
        "sidebar_items": selectors.sidebar_for_user(user=user),
        "recording": notices.recording_notice(page.conversation),
    }
    return render(request, "messenger/conversation.html", context, status=status)


@login_required
@require_GET
def conversation(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    """The latest messages (and marks them read), or a slice: ``?before=<seq>``
    (as a partial for htmx's scroll-back) or ``?around=<seq>`` (a search hit)."""
    query = PageForm(request.GET)
    before = query.before_seq()
    if request.htmx and before is not None:
        page = _conversation_page(request.user, conversation_id, before)
        rows = _message_rows(request.user, page, unread_after=None)
        context = {"page": page, "rows": rows}
        return render(request, "messenger/_messages.html", context)
    # Read before the page's queries, so that the socket resumes from here
    # without a gap (see messenger.templatetags.chat.journal_position).
    event_id = selectors.latest_event_id()
    page = _conversation_page(request.user, conversation_id, before)
    last = page.messages[-1].message if page.messages else None
    if last is not None and _is_latest(page) and page.membership.last_read_seq < last.seq:
        services.conversation_mark_read(
            actor=request.user, conversation_id=conversation_id, message_id=last.pk
        )
    reply_to = _reply_target(request.user, conversation_id, query.cleaned_data.get("reply_to"))
    composer = MessageForm(initial={"client_id": uuid.uuid4(), "reply_to": reply_to.pk if reply_to else None})
    return _render_conversation(request, page, composer, event_id=event_id, reply_to=reply_to)


@login_required
@require_POST
def message_send(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    """The composer without JavaScript. A repeated post (same client_id) sends once."""
    form = MessageForm(request.POST)
    uploads = request.FILES.getlist("files")
    if uploads:
        form.fields["body"].required = False
    if form.is_valid():
        file_ids = _store_uploads(request.user, uploads, form, form.cleaned_data["client_id"])
        sent = None
        if file_ids is not None:
            sent = _attempt(
                request,
                lambda: services.message_send(
                    actor=request.user,
                    conversation_id=conversation_id,
                    body=form.cleaned_data["body"],
                    client_id=form.cleaned_data["client_id"],
                    reply_to_id=form.cleaned_data["reply_to"],
                    file_ids=file_ids,
                ),
                form=form,
                field="body",
            )
        if sent is not None:
            return redirect(f"{reverse('messenger:conversation', args=[conversation_id])}#m{sent.message.pk}")
    # Refused: the page again with the draft and the reason; nothing was stored.
    event_id = selectors.latest_event_id()
    page = _conversation_page(request.user, conversation_id)
    reply_to = _reply_target(request.user, conversation_id, form.cleaned_data.get("reply_to"))
    return _render_conversation(request, page, form, event_id=event_id, reply_to=reply_to, status=400)


def _store_uploads(
    user: User, uploads: list[UploadedFile], form: MessageForm, client_id: uuid.UUID | None
) -> list[int] | None:
    """Keep the files of a plain form post; None (and a form error) if one is refused.

    A repeated post of a message already sent stores nothing again: its files
    are the ones the first post attached.
    """
    if client_id is not None and (
        sent := selectors.message_sent_with_client_id(user=user, client_id=client_id)
    ):
        return sent
    file_ids = []
    for upload in uploads:
        try:
            file_ids.append(
                archive_services.file_store(upload=upload, name=upload.name or "", uploader=user).pk
            )
        except FileRefused as refusal:
            form.add_error("body", f"{upload.name}: {refusal.detail}")
            return None
    return file_ids


def _message_or_404(user: User, message_id: int) -> Message:
    return _or_404(lambda: access_message(user, message_id))


@login_required
@require_http_methods(["GET", "POST"])
def message_edit(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    message = _message_or_404(request.user, message_id)
    form = MessageEditForm(request.POST or None, initial={"body": message.body})
    if request.method == "POST" and form.is_valid():
        edited = _attempt(
            request,
            lambda: services.message_edit(
                actor=request.user, message_id=message_id, body=form.cleaned_data["body"]
            ),
            form=form,
            field="body",
        )
        if edited is not None:
            return redirect(edited.get_absolute_url())
    status = 400 if form.errors else 200
    return render(request, "messenger/message_edit.html", {"message": message, "form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def message_delete(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    """GET asks for confirmation; POST deletes (the journal keeps the content)."""
    message = _message_or_404(request.user, message_id)
    if request.method == "POST":
        deleted = _attempt(
            request,
            lambda: services.message_delete(actor=request.user, message_id=message_id),
            success="The message was deleted.",
        )
        return redirect((deleted or message).get_absolute_url())
    return render(request, "messenger/message_delete.html", {"message": message})


@login_required
@require_POST
def message_react(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    message = _message_or_404(request.user, message_id)
    form = ReactionForm(request.POST)
    if form.is_valid():
        _attempt(
            request,
            lambda: services.reaction_set(
                actor=request.user,
                message_id=message_id,
                emoji=form.cleaned_data["emoji"],
                present=not form.cleaned_data["remove"],
            ),
        )
    else:
        _show_form_errors(request, form)
    return redirect(message.get_absolute_url())


# --- Conversation settings --------------------------------------------------


def _settings_url(conversation_id: int) -> str:
    return reverse("messenger:settings", args=[conversation_id])


@login_required
@require_GET
def conversation_settings(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    details = _or_404(
        lambda: selectors.conversation_settings(user=request.user, conversation_id=conversation_id)
    )
    online = presence.online_user_ids([m.user_id for m in details.members])
    context = {"settings": details, "conversation_id": conversation_id, "online_ids": online, "chosen": set()}
    return render(request, "messenger/settings.html", context)


@login_required
@require_POST
def conversation_rename(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    form = NameForm(request.POST)
    if form.is_valid():
        _attempt(
            request,
            lambda: services.conversation_rename(
                actor=request.user, conversation_id=conversation_id, name=form.cleaned_data["name"]
            ),
            success="The name is saved.",
        )
    else:
        _show_form_errors(request, form)
    return redirect(_settings_url(conversation_id))


@login_required
@require_POST
def conversation_topic(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    form = TopicForm(request.POST)
    if form.is_valid():
        _attempt(
            request,
            lambda: services.conversation_set_topic(
                actor=request.user, conversation_id=conversation_id, topic=form.cleaned_data["topic"]
            ),
            success="The topic is saved.",
        )
    else:
        _show_form_errors(request, form)
    return redirect(_settings_url(conversation_id))


@login_required
@require_POST
def conversation_mute(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    form = MuteForm(request.POST)
    muted = form.is_valid() and bool(form.cleaned_data["muted"])
    _attempt(
        request,
        lambda: services.membership_set_muted(
            actor=request.user, conversation_id=conversation_id, muted=muted
        ),
        success="Muted: it no longer notifies you, except for mentions."
        if muted
        else "Notifications are on.",
    )
    return redirect(_settings_url(conversation_id))


@login_required
@require_POST
def conversation_leave(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    try:
        services.conversation_leave(actor=request.user, conversation_id=conversation_id)
    except NotFound as error:
        raise Http404(error.detail) from error
    except MessengerError as error:
        messages.error(request, error.detail)
        return redirect(_settings_url(conversation_id))
    messages.success(request, "You left the conversation.")
    return redirect("messenger:home")


@login_required
@require_POST
def channel_archive(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    _attempt(
        request,
        lambda: services.channel_archive(actor=request.user, conversation_id=conversation_id),
        success="The channel is archived: it stays readable, and nobody can write to it.",
    )
    return redirect(_settings_url(conversation_id))


@login_required
@require_POST
def members_add(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    form = MembersForm(request.POST)
    if form.is_valid() and form.cleaned_data["members"]:
        added = _attempt(
            request,
            lambda: services.members_add(
                actor=request.user, conversation_id=conversation_id, user_ids=form.cleaned_data["members"]
            ),
        )
        if added is not None:
            messages.success(request, f"Added {len(added)} {'person' if len(added) == 1 else 'people'}.")
    elif form.is_valid():
        messages.error(request, "Pick at least one person to add.")
    else:
        _show_form_errors(request, form)
    return redirect(_settings_url(conversation_id))


@login_required
@require_POST
def member_remove(request: AuthenticatedHttpRequest, conversation_id: int, user_id: int) -> HttpResponse:
    _attempt(
        request,
        lambda: services.member_remove(actor=request.user, conversation_id=conversation_id, user_id=user_id),
        success="Removed from the conversation.",
    )
    return redirect(_settings_url(conversation_id))


@login_required
@require_POST
def externals_allow(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    form = AllowExternalForm(request.POST)
    allowed = form.is_valid() and bool(form.cleaned_data["allowed"])
    _attempt(
        request,
        lambda: services.conversation_set_allows_external(
            actor=request.user, conversation_id=conversation_id, allowed=allowed
        ),
        success="Members can now add people outside the company."
        if allowed
        else "Only colleagues can take part now.",
    )
    return redirect(_settings_url(conversation_id))


@login_required
@require_POST
def external_add(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    form = ExternalContactForm(request.POST)
    if form.is_valid():
        email = form.cleaned_data["email"]
        _attempt(
            request,
            lambda: services.external_contact_add(
                actor=request.user,
                conversation_id=conversation_id,
                email=email,
                name=form.cleaned_data["name"],
            ),
            success=f"{email} was added and told how to take part by email.",
        )
    else:
        _show_form_errors(request, form)
    return redirect(_settings_url(conversation_id))


@login_required
@require_POST
def external_remove(request: AuthenticatedHttpRequest, conversation_id: int, user_id: int) -> HttpResponse:
    _attempt(
        request,
        lambda: services.external_contact_remove(
            actor=request.user, conversation_id=conversation_id, user_id=user_id
        ),
        success="Removed: they get no more mail from this conversation.",
    )
    return redirect(_settings_url(conversation_id))


# --- Starting conversations -------------------------------------------------


@login_required
@require_GET
def people(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = DirectoryForm(request.GET)
    q = form.cleaned_data["q"].strip() if form.is_valid() else ""
    found = list(selectors.people_directory(q=q)[: PEOPLE_LIMIT + 1])
    context = {
        "q": q,
        "people": found[:PEOPLE_LIMIT],
        "more": len(found) > PEOPLE_LIMIT,
        "online_ids": presence.online_user_ids([p.pk for p in found]),
    }
    return render(request, "messenger/people.html", context)


@login_required
@require_POST
def direct_open(request: AuthenticatedHttpRequest, user_id: int) -> HttpResponse:
    opened = _attempt(request, lambda: services.direct_open(actor=request.user, other_user_id=user_id))
    if opened is None:
        return redirect("messenger:people")
    return redirect(opened)


def _default_group_name(user: User, member_ids: list[int]) -> str:
    """A nameless group is called after its members: "Alice, Bob and Carla"."""
    names = selectors.first_names(user_ids=sorted({*member_ids, user.pk}))
    if len(names) < 2:
        return ""
    name = ", ".join(names[:-1]) + " and " + names[-1]
    for shown in range(len(names) - 1, 0, -1):
        if len(name) <= GROUP_NAME_MAX:
            break
        name = f"{', '.join(names[:shown])} and {len(names) - shown} more"
    return name[:GROUP_NAME_MAX]


@login_required
@require_http_methods(["GET", "POST"])
def group_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = GroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        member_ids = form.cleaned_data["members"]
        name = form.cleaned_data["name"].strip() or _default_group_name(request.user, member_ids)
        group = _attempt(
            request,
            lambda: services.group_create(actor=request.user, name=name, member_ids=member_ids),
            form=form,
        )
        if group is not None:
            return redirect(group)
    chosen = set(form.cleaned_data.get("members", [])) if form.is_bound else set()
    candidates = [p for p in selectors.people_directory() if p.pk != request.user.pk]
    context = {"form": form, "candidates": candidates, "chosen": chosen}
    return render(request, "messenger/group_new.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def channel_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ChannelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        channel = _attempt(
            request,
            lambda: services.channel_create(
                actor=request.user,
                name=form.cleaned_data["name"],
                topic=form.cleaned_data["topic"],
                is_private=form.cleaned_data["is_private"],
            ),
            form=form,
            field="name",
        )
        if channel is not None:
            return redirect(channel)
    return render(request, "messenger/channel_new.html", {"form": form}, status=400 if form.errors else 200)


@login_required
@require_GET
def channels(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = DirectoryForm(request.GET)
    q = form.cleaned_data["q"].strip() if form.is_valid() else ""
    rows = selectors.channel_directory(user=request.user, q=q)
    return render(request, "messenger/channels.html", {"q": q, "rows": rows})


@login_required
@require_POST
def channel_join(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    joined = _attempt(
        request, lambda: services.channel_join(actor=request.user, conversation_id=conversation_id)
    )
    if joined is None:
        return redirect("messenger:channels")
    return redirect("messenger:conversation", conversation_id)


# --- Search and the live sidebar --------------------------------------------


@login_required
@require_GET
def search(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    q = form.cleaned_data["q"].strip() if form.is_valid() else ""
    before = form.cleaned_data.get("before") if form.is_valid() else None
    hits = selectors.message_search(user=request.user, q=q, before_id=before) if q else []
    # The sidebar's items also name each conversation (a direct one by the other person).
    sidebar_items = selectors.sidebar_for_user(user=request.user)
    titles = {item.conversation.pk: item.title for item in sidebar_items}
    context = {
        "q": q,
        "hits": [
            (hit, titles.get(hit.message.conversation_id, str(hit.message.conversation))) for hit in hits
        ],
        "more_before": hits[-1].message.pk if len(hits) >= 30 else None,
        "sidebar_items": sidebar_items,
        "search_query": q,
    }
    return render(request, "messenger/search.html", context)


@login_required
@require_GET
def sidebar(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The sidebar's conversation list alone: the page's script swaps it in when a
    conversation appears, is renamed or is left."""
    current = request.GET.get("current", "")
    context = {
        "conversation_id": int(current) if current.isdigit() else None,
        "sidebar_items": selectors.sidebar_for_user(user=request.user),
    }
    return render(request, "messenger/_sidebar_fragment.html", context)
