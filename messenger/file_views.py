"""Uploading files to share, and fetching shared files (members only)."""

import logging
from typing import cast

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from accounts.http import AuthenticatedHttpRequest
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

logger = logging.getLogger(__name__)
# The upload's CSRF check, run by hand (the view is exempt from the middleware's,
# which would read the body before the upload handlers are in place): a refusal
# is logged as Django logs it ("Forbidden (CSRF token missing.)") and answered
# in JSON rather than with Django's HTML page.
_CSRF = CsrfViewMiddleware(lambda request: HttpResponse())


def _refused(code: str, detail: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


def _too_large() -> JsonResponse:
    limit = settings.KONTOR_UPLOAD_MAX_BYTES
    return _refused("too_large", f"Files are limited to {limit // (1024 * 1024)} MB.", status=413)


@csrf_exempt  # the upload handlers must be in place before anything reads the body
def file_upload(request: HttpRequest) -> HttpResponse:
    """``POST /files/upload/``: every refusal is JSON (docs/protocol.md, "Sending files")."""
    if request.method != "POST":
        response = _refused("method_not_allowed", "Upload files with POST.", status=405)
        response["Allow"] = "POST"
        return response
    if not request.user.is_authenticated:
        return _refused("not_authenticated", "Sign in to upload files.", status=401)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _refused("malformed", "The request's Content-Length is not a number.")
    if length > settings.KONTOR_UPLOAD_MAX_BYTES + 64 * 1024:
        return _too_large()
    guard = SizeLimitHandler(request)
    request.upload_handlers.insert(0, guard)
    try:
        # The CSRF check reads the body first, so parsing errors surface here.
        if _CSRF.process_view(request, _file_upload, (guard,), {}) is not None:
            return _refused(
                "csrf_failed",
                "The page's security token is missing or out of date: reload the page and try again.",
                status=403,
            )
        return _file_upload(cast(AuthenticatedHttpRequest, request), guard)  # signed in: checked above
    except RequestDataTooBig:
        # The form fields besides the file are over DATA_UPLOAD_MAX_MEMORY_SIZE.
        return _too_large()
    except (MultiPartParserError, SuspiciousOperation, BadRequest) as error:
        # Django would answer its HTML "Bad Request (400)" page; keep its log line
        # (security monitoring watches the django.security loggers).
        if isinstance(error, SuspiciousOperation):
            logging.getLogger(f"django.security.{type(error).__name__}").error("%s", error)
        else:
            logger.warning("Unreadable upload from user %s: %s", request.user.pk, error)
        if isinstance(error, MultiPartParserError) and "header size" in str(error):
            # A part's headers over archive.uploads.PART_HEADER_MAX_BYTES: only a
            # file name of thousands of characters gets there.
            return _refused("name_too_long", "The file name is too long: rename the file and try again.")
        return _refused("malformed", "The upload could not be read: send one file as multipart/form-data.")


def _file_upload(request: AuthenticatedHttpRequest, guard: SizeLimitHandler) -> HttpResponse:
    upload = request.FILES.get("file")
    if guard.exceeded:
        return _too_large()
    if upload is None:
        return _refused("no_file", 'Send the file in a multipart field named "file".')
    user = request.user
    try:
        stored = archive_services.file_store(upload=upload, name=upload.name or "", uploader=user)
    except FileRefused as refusal:
        return _refused(refusal.code, refusal.detail)
    return JsonResponse(file_payload(stored), status=201)


@login_required
@require_GET
def file_download(request: AuthenticatedHttpRequest, file_id: int) -> HttpResponseBase:
    user = request.user
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
def file_preview(request: AuthenticatedHttpRequest, file_id: int) -> HttpResponseBase:
    """The thumbnail, inline, to whoever may download the file; 404 until it is made."""
    user = request.user
    stored = _or_404(lambda: access_file(user, file_id))
    if stored.preview_state != StoredFile.State.READY:
        raise Http404("No preview yet.")
    return preview_response(stored)


@login_required
@require_GET
def conversation_files(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    user = request.user
    membership, files = _or_404(
        lambda: selectors.conversation_files(user=user, conversation_id=conversation_id)
    )
    return render(
        request,
        "messenger/files.html",
        {"conversation": membership.conversation, "attachments": files, "conversation_id": conversation_id},
    )
