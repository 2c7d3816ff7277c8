from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts import selectors, services
from accounts.errors import InvitationInvalid
from accounts.forms import InvitationAcceptForm, ProfileForm
from accounts.http import AuthenticatedHttpRequest
from accounts.models import User

_LOGIN_BACKEND = "allauth.account.auth_backends.AuthenticationBackend"


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    form = ProfileForm.for_user(user)
    if request.method == "POST":
        form = ProfileForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                services.profile_update(user=user, **form.cleaned_data)
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, "Your profile is saved.")
                return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form})


@login_required
def avatar(request: HttpRequest, user_id: int) -> FileResponse:
    person = get_object_or_404(User, pk=user_id)
    if not person.avatar:
        raise Http404
    response = FileResponse(person.avatar.open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = selectors.invitation_get_usable(token=token)
    if invitation is None:
        return render(request, "accounts/invitation_invalid.html", status=404)
    form = InvitationAcceptForm(initial={"display_name": invitation.user.display_name})
    if request.method == "POST":
        form = InvitationAcceptForm(request.POST)
        if form.is_valid():
            try:
                user = services.invitation_accept(
                    token=token,
                    display_name=form.cleaned_data["display_name"],
                    password=form.cleaned_data["password1"],
                )
            except InvitationInvalid:
                return render(request, "accounts/invitation_invalid.html", status=404)
            except ValidationError as error:
                form.add_error("password1", error)
            else:
                login(request, user, backend=_LOGIN_BACKEND)
                messages.success(request, f"Welcome, {user.get_short_name()}! Your account is ready.")
                return redirect("/")
    return render(request, "accounts/invitation_accept.html", {"form": form, "invitation": invitation})
