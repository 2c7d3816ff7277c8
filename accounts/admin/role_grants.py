"""Pending role grants (four eyes) in the admin, for administrators only."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.admin.common import ReadOnlyAdmin, is_active_superuser
from accounts.http import AuthenticatedHttpRequest
from accounts.models import RoleGrant


@admin.register(RoleGrant)
class RoleGrantAdmin(ReadOnlyAdmin):
    """Four eyes (``KONTOR_AUDIT_FOUR_EYES``): a new Auditor or Data protection
    role waits here until a second administrator confirms it. Administrators only."""

    list_display = ["user", "role", "requested_by", "requested_at", "state", "confirmed_by", "cancelled_by"]
    list_select_related = ["user", "requested_by", "confirmed_by", "cancelled_by"]
    list_filter = ["role"]
    search_fields = ["user__email", "user__display_name"]
    actions = ["confirm", "cancel"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_active_superuser(request)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return is_active_superuser(request)

    def has_administer_roles_permission(self, request: HttpRequest) -> bool:
        return is_active_superuser(request)

    def _settle(
        self, request: AuthenticatedHttpRequest, queryset: QuerySet[RoleGrant], confirm: bool
    ) -> None:
        settle = services.role_grant_confirm if confirm else services.role_grant_cancel
        for grant in queryset.select_related("user"):
            try:
                settle(actor=request.user, grant=grant, origin=services.Origin.ADMIN_GRANTS)
            except ValidationError as refusal:
                self.message_user(request, f"{grant}: {' '.join(refusal.messages)}", messages.ERROR)
            else:
                verb = "confirmed: it is in effect now" if confirm else "cancelled"
                self.message_user(request, f"{grant}: {verb}.", messages.SUCCESS)

    @admin.action(
        description="Confirm the selected grants (second administrator)", permissions=["administer_roles"]
    )
    def confirm(self, request: AuthenticatedHttpRequest, queryset: QuerySet[RoleGrant]) -> None:
        self._settle(request, queryset, confirm=True)

    @admin.action(description="Cancel the selected grants", permissions=["administer_roles"])
    def cancel(self, request: AuthenticatedHttpRequest, queryset: QuerySet[RoleGrant]) -> None:
        self._settle(request, queryset, confirm=False)
