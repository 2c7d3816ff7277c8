"""The archive in the admin: to look at, never to change.

Records, purge entries, holds and audit events are read-only for everyone;
the database refuses changes anyway. Only auditors may look (C14: staff, HR
and superusers without the auditor role see nothing of the archive). Holds and
policies are set through the compliance workspace's services (next issues).
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts import roles
from compliance.models import AuditEvent, LegalHold, PurgeEntry, RetentionPolicy, RetentionRecord


def _is_auditor(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.groups.filter(name=roles.AUDITORS).exists())


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


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(ReadOnlyAdmin):
    list_display = ["name", "record_class", "years", "days", "from_year_end", "legal_basis", "is_default"]
