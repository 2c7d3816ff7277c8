"""The archive in the admin: to look at, never to change.

Records, purge entries, holds and audit events are read-only for everyone;
the database refuses changes anyway. Only auditors may look (C14: staff, HR
and superusers without the auditor role see nothing of the archive). Retention
policies and their assignments are set here by administrators, through the
policy services (retention is never shortened; every change is an audit
event); legal holds and extensions come from the auditor workspace.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from accounts import roles
from accounts.models import User
from compliance import policies
from compliance.models import (
    AuditEvent,
    LegalHold,
    PolicyAssignment,
    PurgeEntry,
    RetentionPolicy,
    RetentionRecord,
)


def _is_auditor(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.groups.filter(name=roles.AUDITORS).exists())


def _is_administrator(request: HttpRequest) -> bool:
    """Policies are set by the company's administrators (superusers), through
    the policy services, so that each change is an audit event."""
    user = request.user
    return bool(user.is_active and user.is_superuser)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_auditor(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_auditor(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RetentionRecord)
class RetentionRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "conversation_id",
        "seq",
        "event_count",
        "period_end",
        "retain_until",
        "sha256",
        "created_at",
    ]
    list_filter = ["policy", "retain_until"]
    search_fields = ["sha256", "conversation__name"]
    list_select_related = ["policy"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "actor", "detail"]
    list_filter = ["kind"]
    list_select_related = ["actor"]


@admin.register(PurgeEntry)
class PurgeEntryAdmin(ReadOnlyAdmin):
    list_display = ["record_id", "sha256", "purged_at"]


@admin.register(LegalHold)
class LegalHoldAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "custodian",
        "conversation",
        "date_from",
        "date_to",
        "set_by",
        "set_at",
        "released_at",
    ]
    list_select_related = ["custodian", "conversation", "set_by"]


class PolicyForm(forms.ModelForm):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why (a new law, counsel's advice, an authority's request). Kept in the audit log.",
    )

    class Meta:
        model = RetentionPolicy
        fields = [
            "name",
            "record_class",
            "years",
            "days",
            "from_year_end",
            "legal_basis",
            "purge_live",
            "recording_notice",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance.pk and {"years", "days"} <= data.keys():
            saved = RetentionPolicy.objects.get(pk=self.instance.pk)
            try:
                policies.check_not_shorter(
                    saved,
                    years=data["years"],
                    days=data["days"],
                    from_year_end=data.get("from_year_end", False),
                )
            except ValidationError as error:
                raise forms.ValidationError(error.messages) from error
        return data


class AdministeredAdmin(ReadOnlyAdmin):
    """Administrators change these (through services); auditors look."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_auditor(request) or _is_administrator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_auditor(request) or _is_administrator(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_administrator(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_administrator(request)


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(AdministeredAdmin):
    """Administrators set policies (never shortening one); auditors look."""

    form = PolicyForm
    list_display = [
        "name",
        "record_class",
        "years",
        "days",
        "from_year_end",
        "legal_basis",
        "is_default",
        "purge_live",
        "recording_notice",
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["name", "record_class"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: RetentionPolicy, form: Any, change: bool) -> None:
        data = form.cleaned_data
        actor = request.user
        assert isinstance(actor, User)
        if change:
            policies.policy_update(
                actor=actor,
                policy_id=obj.pk,
                reason=data["reason"],
                years=data["years"],
                days=data["days"],
                from_year_end=data["from_year_end"],
                legal_basis=data["legal_basis"],
                purge_live=data["purge_live"],
                recording_notice=data["recording_notice"],
            )
        else:
            created = policies.policy_create(
                actor=actor,
                name=data["name"],
                record_class=data["record_class"],
                years=data["years"],
                days=data["days"],
                from_year_end=data["from_year_end"],
                legal_basis=data["legal_basis"],
                purge_live=data["purge_live"],
                recording_notice=data["recording_notice"],
                reason=data["reason"],
            )
            obj.pk = created.pk


class AssignmentForm(forms.ModelForm):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="Kept in the audit log.")

    class Meta:
        model = PolicyAssignment
        fields = ["policy", "department", "conversation"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("department")) == bool(data.get("conversation")):
            raise forms.ValidationError("Choose either a department or a conversation.")
        return data


@admin.register(PolicyAssignment)
class PolicyAssignmentAdmin(AdministeredAdmin):
    """Which department or conversation keeps its records under which policy."""

    form = AssignmentForm
    list_display = ["policy", "department", "conversation", "assigned_by", "assigned_at"]
    list_select_related = ["policy", "department", "conversation", "assigned_by"]
    raw_id_fields = ["conversation"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and _is_administrator(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_administrator(request)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return []

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}  # one at a time, through the delete page: each is an audit event

    def save_model(self, request: HttpRequest, obj: PolicyAssignment, form: Any, change: bool) -> None:
        data = form.cleaned_data
        assert isinstance(request.user, User)
        created = policies.policy_assign(
            actor=request.user,
            policy_id=data["policy"].pk,
            reason=data["reason"],
            department=data.get("department"),
            conversation=data.get("conversation"),
        )
        obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: PolicyAssignment) -> None:
        assert isinstance(request.user, User)
        policies.policy_unassign(
            actor=request.user, assignment_id=obj.pk, reason="Removed in the administration"
        )
