"""People in the admin: the list, the person forms and roles.

Every change goes through ``accounts.services``; HR (staff in the ``HR`` group)
never sees superuser-only fields and cannot edit superusers.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from accounts import roles, services
from accounts.admin.common import admin_user, is_active_superuser
from accounts.http import AuthenticatedHttpRequest
from accounts.models import User


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (User.Status.ACTIVE, "Active"),
            (User.Status.INVITED, "Invited"),
            (User.Status.OFFBOARDED, "Offboarded"),
            (User.Status.DEACTIVATED, "Deactivated"),
            (User.Status.EXTERNAL, "External contacts"),
            ("restricted", "Processing restricted"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        # The same rules as User.status, in SQL.
        value = self.value()
        if value == User.Status.ACTIVE:
            return queryset.filter(is_active=True, offboarded_at__isnull=True)
        if value == User.Status.INVITED:
            return queryset.filter(
                is_active=False, is_external=False, offboarded_at__isnull=True, last_login__isnull=True
            )
        if value == User.Status.EXTERNAL:
            return queryset.filter(is_external=True)
        if value == User.Status.OFFBOARDED:
            return queryset.filter(offboarded_at__isnull=False)
        if value == User.Status.DEACTIVATED:
            return queryset.filter(is_active=False, offboarded_at__isnull=True, last_login__isnull=False)
        if value == "restricted":
            return queryset.filter(processing_restricted_at__isnull=False)
        return queryset


class RolesField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            choices=[(name, roles.LABELS[name]) for name in roles.ALL],
            required=False,
            help_text="Nobody can change their own roles. Only an administrator grants or removes "
            "the Auditor and Data protection roles; every change is in the audit log.",
            **kwargs,
        )


class RolesFormMixin(forms.ModelForm):
    """The roles part of the person forms: the role service's rules are checked
    while the form is validated, so a refused change saves nothing at all and
    says why; ``UserAdmin.save_related`` then lets the service make the change."""

    actor: User | None = None  # set by UserAdmin.get_form

    def current_roles(self) -> set[str]:
        if self.instance.pk is None:
            return set()
        return {g.name for g in self.instance.groups.all() if g.name in roles.ALL}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "roles" in data:
            before, wanted = self.current_roles(), set(data["roles"])
            try:
                services.user_roles_check(
                    actor=self.actor, user=self.instance, added=wanted - before, removed=before - wanted
                )
            except services.RoleChangeRefused as refusal:
                self.add_error("roles", refusal)
        return data


class UserChangeForm(RolesFormMixin):
    roles = RolesField()

    class Meta:
        model = User
        fields = ["email", "display_name", "job_title", "department", "phone", "time_zone"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["roles"].initial = sorted(self.current_roles())


class UserCreationForm(RolesFormMixin):
    roles = RolesField()
    password = forms.CharField(
        widget=forms.PasswordInput,
        required=False,
        help_text="Leave empty to let the person set a password through "
        "“Forgot password” or send an invitation instead.",
    )

    class Meta:
        model = User
        fields = ["email", "display_name", "job_title", "department", "phone", "time_zone"]

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError("Someone with this email address already exists.")
        return email

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        password = data.get("password")
        if password:
            candidate = User(email=data.get("email", ""), display_name=data.get("display_name", ""))
            try:
                validate_password(password, candidate)
            except ValidationError as error:
                self.add_error("password", error)
        return data


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = ["person", "department", "job_title", "status_badge", "last_seen"]
    list_display_links = ["person"]
    list_filter = [StatusFilter, "department", "groups"]
    search_fields = ["email", "display_name", "job_title", "department__name"]
    ordering = ["display_name", "email"]
    list_select_related = ["department"]
    readonly_fields = [
        "last_login",
        "date_joined",
        "offboarded_at",
        "offboarded_by",
        "status_badge",
        "pending_roles",
    ]
    filter_horizontal = ()
    actions = [
        "grant_auditor",
        "remove_auditor",
        "grant_data_protection",
        "remove_data_protection",
    ]
    fieldsets = (
        (None, {"fields": ["email", "display_name", "status_badge"]}),
        ("Work", {"fields": ["job_title", "department", "phone", "time_zone"]}),
        ("Roles", {"fields": ["roles", "pending_roles"]}),
        (
            "History",
            {"fields": ["date_joined", "last_login", "offboarded_at", "offboarded_by"]},
        ),
    )
    add_fieldsets = (
        (None, {"fields": ["email", "display_name", "password"]}),
        ("Work", {"fields": ["job_title", "department", "phone", "time_zone"]}),
        ("Roles", {"fields": ["roles"]}),
    )

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        # The form checks role changes as this person makes them.
        return type(form.__name__, (form,), {"actor": admin_user(request)})

    @admin.display(description="Awaiting confirmation")
    def pending_roles(self, obj: User) -> str:
        if obj.pk is None:
            return "—"
        grants = obj.role_grants.filter(confirmed_at=None, cancelled_at=None).select_related("requested_by")
        return (
            format_html_join(
                ", ",
                "{} (granted by {}; another administrator confirms it under “Role grants” under People)",
                ((g.role, g.requested_by or "a command") for g in grants),
            )
            or "—"
        )

    @admin.display(description="Status")
    def status_badge(self, obj: User) -> str:
        status = User.Status(obj.status)
        # Colours live in admin/kontor-admin.css: the CSP allows no inline styles.
        return format_html('<span class="status status--{}">{}</span>', status.value, status.label)

    @admin.display(description="Person", ordering="display_name")
    def person(self, obj: User) -> str:
        return format_html(
            '{}<span class="kontor-person__email">{}</span>', obj.display_name or obj.email, obj.email
        )

    @admin.display(description="Last seen", ordering="last_login")
    def last_seen(self, obj: User) -> str:
        # ``seen_at`` when a layer above knows more than the last sign-in
        # (hr.admin adds the last open socket); the last sign-in otherwise.
        seen = getattr(obj, "seen_at", obj.last_login)
        if seen is None:
            return "never"
        seen = localtime(seen)
        return format_html(
            '<time datetime="{}" title="{}">{}</time>',
            seen.isoformat(),
            date_format(seen, "j F Y, H:i"),
            date_format(seen, "H:i" if seen.date() == localtime().date() else "j M Y"),
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        users = super().get_queryset(request)
        if not request.user.is_superuser:
            # HR manages employees, not the administrators who set Kontor up.
            users = users.filter(is_superuser=False)
        return users

    def save_model(self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        if change:
            fields = {name: data[name] for name in form.changed_data if name != "roles"}
            services.user_update(user=obj, fields=fields)
        else:
            created = services.user_create(
                email=data["email"],
                password=data.get("password") or None,
                display_name=data.get("display_name", ""),
                job_title=data.get("job_title", ""),
                department=data.get("department"),
            )
            services.user_update(
                user=created, fields={"phone": data.get("phone", ""), "time_zone": data["time_zone"]}
            )
            obj.pk = created.pk
            obj._state.adding = False

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        # Never the form's own m2m save: the role service decides, and records it.
        change_made = services.user_roles_set(
            actor=admin_user(request),
            user=form.instance,
            roles=form.cleaned_data.get("roles", []),
            origin=services.Origin.ADMIN_FORM if change else services.Origin.ADMIN_ADD_FORM,
        )
        self._say_pending(request, change_made)

    def _say_pending(self, request: HttpRequest, change: services.RoleChange) -> None:
        for name in change.pending:
            self.message_user(
                request,
                f"{change.user.email}: the {name} role takes effect when another administrator "
                "confirms it (“Role grants” under People).",
                messages.WARNING,
            )

    # --- Roles in bulk -----------------------------------------------------------
    # Administrators only; the role service checks each person again and refuses
    # (with the reason, changing nothing for them) what nobody may do.

    def has_administer_roles_permission(self, request: HttpRequest) -> bool:
        return is_active_superuser(request)

    def _roles_action(
        self,
        request: AuthenticatedHttpRequest,
        queryset: QuerySet[User],
        *,
        add: tuple[str, ...] = (),
        remove: tuple[str, ...] = (),
    ) -> None:
        done = 0
        for person in queryset:
            try:
                change = services.user_roles_set(
                    actor=request.user,
                    user=person,
                    add=add,
                    remove=remove,
                    origin=services.Origin.ADMIN_ACTION,
                )
            except ValidationError as refusal:
                self.message_user(request, f"{person.email}: {' '.join(refusal.messages)}", messages.ERROR)
                continue
            done += change.changed
            self._say_pending(request, change)
        if done:
            self.message_user(request, f"Changed the roles of {done} person(s).", messages.SUCCESS)

    @admin.action(description="Grant the Auditor role", permissions=["administer_roles"])
    def grant_auditor(self, request: AuthenticatedHttpRequest, queryset: QuerySet[User]) -> None:
        self._roles_action(request, queryset, add=(roles.AUDITORS,))

    @admin.action(description="Remove the Auditor role", permissions=["administer_roles"])
    def remove_auditor(self, request: AuthenticatedHttpRequest, queryset: QuerySet[User]) -> None:
        self._roles_action(request, queryset, remove=(roles.AUDITORS,))

    @admin.action(description="Grant the Data protection role", permissions=["administer_roles"])
    def grant_data_protection(self, request: AuthenticatedHttpRequest, queryset: QuerySet[User]) -> None:
        self._roles_action(request, queryset, add=(roles.DATA_PROTECTION,))

    @admin.action(description="Remove the Data protection role", permissions=["administer_roles"])
    def remove_data_protection(self, request: AuthenticatedHttpRequest, queryset: QuerySet[User]) -> None:
        self._roles_action(request, queryset, remove=(roles.DATA_PROTECTION,))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # People are never deleted: their messages and the archive refer to them.
        return False
