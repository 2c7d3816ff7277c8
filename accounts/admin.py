"""The admin as HR uses it: people, departments and invitations.

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
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from accounts import roles, services
from accounts.models import Department, Invitation, User


class RolesField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            choices=[(roles.HR, "HR — manages people in admin"), (roles.AUDITORS, "Auditor")],
            required=False,
            **kwargs,
        )


class UserChangeForm(forms.ModelForm):
    roles = RolesField()

    class Meta:
        model = User
        fields = ["email", "display_name", "job_title", "department", "phone", "time_zone"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["roles"].initial = [g.name for g in self.instance.groups.all()]


class UserCreationForm(forms.ModelForm):
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
        data = super().clean() or {}
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
    list_display = ["email", "display_name", "department", "job_title", "status_badge", "last_login"]
    list_filter = ["department", "is_active", "groups", "is_staff"]
    search_fields = ["email", "display_name", "job_title", "department__name"]
    ordering = ["display_name", "email"]
    list_select_related = ["department"]
    readonly_fields = ["last_login", "date_joined", "offboarded_at", "status_badge"]
    filter_horizontal = ()
    fieldsets = (
        (None, {"fields": ["email", "display_name", "status_badge"]}),
        ("Work", {"fields": ["job_title", "department", "phone", "time_zone"]}),
        ("Roles", {"fields": ["roles"]}),
        ("History", {"fields": ["date_joined", "last_login", "offboarded_at"]}),
    )
    add_fieldsets = (
        (None, {"fields": ["email", "display_name", "password"]}),
        ("Work", {"fields": ["job_title", "department", "phone", "time_zone"]}),
        ("Roles", {"fields": ["roles"]}),
    )

    @admin.display(description="Status")
    def status_badge(self, obj: User) -> str:
        status = User.Status(obj.status)
        # Colours live in admin/kontor-admin.css: the CSP allows no inline styles.
        return format_html('<span class="status status--{}">{}</span>', status.value, status.label)

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
        services.user_set_roles(user=form.instance, role_names=form.cleaned_data.get("roles", []))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # People are never deleted: their messages and the archive refer to them.
        return False


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["name", "head", "member_count"]
    search_fields = ["name"]
    autocomplete_fields = ["head"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Department]:
        return super().get_queryset(request).select_related("head").annotate(n=Count("members"))

    @admin.display(description="People", ordering="n")
    def member_count(self, obj: Department) -> int:
        return obj.n  # type: ignore[attr-defined]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "head":
            # Only an active person can lead; the service refuses others too.
            kwargs["queryset"] = User.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Department, form: forms.ModelForm, change: bool) -> None:
        services.department_save(department=obj)

    def delete_model(self, request: HttpRequest, obj: Department) -> None:
        services.department_delete(department=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Department]) -> None:
        for department in queryset:
            services.department_delete(department=department)


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
            invited_by=request.user,  # type: ignore[arg-type]
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

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        """An invitation has no related objects; the service wrote everything."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Send a new invitation link")
    def resend(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        sent = 0
        for invitation in queryset.select_related("user"):
            try:
                services.invitation_create(
                    invited_by=request.user,  # type: ignore[arg-type]
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
