"""Invitations in the admin: one by one, or many from a CSV file."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from accounts import invitations_csv, services
from accounts.admin.common import admin_user
from accounts.forms import BulkInvitationForm
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Department, Invitation


class InvitationForm(forms.ModelForm):
    display_name = forms.CharField(max_length=150, required=False)
    job_title = forms.CharField(max_length=150, required=False)
    department = forms.ModelChoiceField(Department.objects.all(), required=False)

    class Meta:
        model = Invitation
        fields = ["email"]

    def clean_email(self) -> str:
        try:
            return services.invitation_check_email(email=self.cleaned_data["email"])
        except ValidationError as error:
            raise ValidationError(error.message_dict["email"]) from None


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    form = InvitationForm
    change_list_template = "admin/accounts/invitation/change_list.html"
    list_display = ["email", "invited_by", "created_at", "expires_at", "state"]
    list_select_related = ["invited_by"]
    search_fields = ["email"]
    actions = ["resend", "revoke"]
    fields = ["email", "display_name", "job_title", "department"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is not None:
            return [
                "email",
                "user",
                "invited_by",
                "created_at",
                "expires_at",
                "accepted_at",
                "revoked_at",
                "state",
            ]
        return []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            return self.get_readonly_fields(request, obj)
        return self.fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A sent invitation is a record: it can be revoked or resent, not edited.
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Invitation, form: forms.ModelForm, change: bool) -> None:
        if change:
            return
        data = form.cleaned_data
        invitation = services.invitation_create(
            invited_by=admin_user(request),
            email=data["email"],
            display_name=data.get("display_name", ""),
            job_title=data.get("job_title", ""),
            department=data.get("department"),
            base_url=request.build_absolute_uri("/"),
        )
        obj.pk = invitation.pk
        obj._state.adding = False

    def save_form(self, request: HttpRequest, form: forms.ModelForm, change: bool) -> Invitation:
        return form.instance  # nothing is saved here; save_model calls the service

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # A sent invitation cannot be edited, so there is nothing to "continue editing".
        extra_context = {**(extra_context or {}), "show_save_and_continue": False}
        if object_id is None:
            extra_context["title"] = "Invite someone"
        return super().changeform_view(request, object_id, form_url, extra_context)

    def response_add(
        self, request: HttpRequest, obj: Invitation, post_url_continue: str | None = None
    ) -> HttpResponse:
        self.message_user(
            request,
            f"Invitation sent to {obj.email}. The link works once and expires in "
            f"{settings.KONTOR_INVITATION_DAYS} days.",
            messages.SUCCESS,
        )
        if "_addanother" in request.POST:
            return HttpResponseRedirect(request.path)
        return HttpResponseRedirect(reverse("admin:accounts_invitation_changelist"))

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        """An invitation has no related objects; the service wrote everything."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Send a new invitation link")
    def resend(self, request: AuthenticatedHttpRequest, queryset: QuerySet[Invitation]) -> None:
        sent = 0
        for invitation in queryset.select_related("user"):
            try:
                services.invitation_create(
                    invited_by=request.user,
                    email=invitation.email,
                    base_url=request.build_absolute_uri("/"),
                )
            except ValidationError as error:
                self.message_user(request, f"{invitation.email}: {error.messages[0]}", messages.WARNING)
            else:
                sent += 1
        if sent:
            self.message_user(request, f"Sent {sent} new invitation link(s).", messages.SUCCESS)

    @admin.action(description="Revoke the invitation")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        for invitation in queryset:
            services.invitation_revoke(invitation=invitation)
        self.message_user(request, "Revoked.", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        return [
            path("bulk/", self.admin_site.admin_view(self.bulk_view), name="accounts_invitation_bulk"),
            *super().get_urls(),
        ]

    def bulk_view(self, request: AuthenticatedHttpRequest) -> HttpResponse:
        """Invite many people from a CSV: upload, preview with each row's errors, confirm."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = BulkInvitationForm()
        parsed = None
        text = ""
        if request.method == "POST":
            if "confirm" in request.POST:
                text = request.POST.get("csv", "")
            else:
                form = BulkInvitationForm(request.POST, request.FILES)
                if form.is_valid():
                    try:
                        text = invitations_csv.decode(form.cleaned_data["file"].read())
                    except ValidationError as error:
                        form.add_error("file", error)
            if text:
                try:
                    parsed = invitations_csv.invitation_rows(text)
                except ValidationError as error:
                    form.add_error("file", error)
            if parsed is not None and "confirm" in request.POST:
                sent = invitations_csv.invitations_send(
                    invited_by=request.user,
                    rows=parsed.valid,
                    base_url=request.build_absolute_uri("/"),
                )
                if sent.invitations:
                    self.message_user(
                        request, f"Sent {len(sent.invitations)} invitation(s).", messages.SUCCESS
                    )
                for row, problem in sent.failed:
                    self.message_user(request, f"Line {row.line}, {row.email}: {problem}", messages.ERROR)
                if parsed.invalid:
                    self.message_user(
                        request,
                        f"{len(parsed.invalid)} line(s) with errors were left out.",
                        messages.WARNING,
                    )
                return HttpResponseRedirect(reverse("admin:accounts_invitation_changelist"))
        return TemplateResponse(
            request,
            "admin/accounts/invitation/bulk.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Invite several people (CSV)",
                "form": form,
                "parsed": parsed,
                "csv": text,
            },
        )
