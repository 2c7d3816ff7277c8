"""Uploading files to share, and fetching shared files (members only)."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from archive import services as archive_services
from archive.errors import FileRefused
from archive.models import INLINE_TYPES, StoredFile
from archive.previews import preview_response
from archive.responses import file_response, presigned_url
from archive.uploads import SizeLimitHandler
from messenger import selectors
from messenger.events import file_payload
from messenger.permissions import access_file
from messenger.views import _or_404


def _refused(code: str, detail: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


@csrf_exempt  # the upload handlers must be in place before anything reads the body
@require_POST
def file_upload(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return _refused("not_authenticated", "Sign in to upload files.", status=401)
    limit = settings.KONTOR_UPLOAD_MAX_BYTES
    if int(request.META.get("CONTENT_LENGTH") or 0) > limit + 64 * 1024:
        return _refused("too_large", f"Files are limited to {limit // (1024 * 1024)} MB.", status=413)
    guard = SizeLimitHandler(request)
    request.upload_handlers.insert(0, guard)
    return _file_upload(request, guard)


@csrf_protect
def _file_upload(request: HttpRequest, guard: SizeLimitHandler) -> HttpResponse:
    upload = request.FILES.get("file")
    if guard.exceeded:
        limit = settings.KONTOR_UPLOAD_MAX_BYTES
        return _refused("too_large", f"Files are limited to {limit // (1024 * 1024)} MB.", status=413)
    if upload is None:
        return _refused("no_file", 'Send the file in a multipart field named "file".')
    user: User = request.user  # type: ignore[assignment]
    try:
        stored = archive_services.file_store(upload=upload, name=upload.name or "", uploader=user)
    except FileRefused as refusal:
        return _refused(refusal.code, refusal.detail)
    return JsonResponse(file_payload(stored), status=201)


@login_required
@require_GET
def file_download(request: HttpRequest, file_id: int) -> HttpResponseBase:
    user: User = request.user  # type: ignore[assignment]
    stored = _or_404(lambda: access_file(user, file_id))
    inline = request.GET.get("inline") == "1"
    # Pictures shown in the page are streamed by Kontor itself: the page's CSP
    # (img-src 'self') would block an image that redirects to the bucket.
    shown_inline = inline and stored.content_type in INLINE_TYPES
    direct = None if shown_inline else presigned_url(stored, want_inline=inline)
    if direct is not None:
        return HttpResponseRedirect(direct)
    return file_response(request, stored, want_inline=inline)


@login_required
@require_GET
def file_preview(request: HttpRequest, file_id: int) -> HttpResponseBase:
    """The thumbnail, inline, to whoever may download the file; 404 until it is made."""
    user: User = request.user  # type: ignore[assignment]
    stored = _or_404(lambda: access_file(user, file_id))
    if stored.preview_state != StoredFile.State.READY:
        raise Http404("No preview yet.")
    return preview_response(stored)


@login_required
@require_GET
def conversation_files(request: HttpRequest, conversation_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    membership, files = _or_404(
        lambda: selectors.conversation_files(user=user, conversation_id=conversation_id)
    )
    return render(
        request,
        "messenger/files.html",
        {"conversation": membership.conversation, "attachments": files, "conversation_id": conversation_id},
    )
