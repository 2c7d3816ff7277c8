"""The admin as HR uses it: people, departments and invitations.

Every change goes through ``accounts.services``; HR (staff in the ``HR`` group)
never sees superuser-only fields and cannot edit superusers.
"""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from accounts import invitations_csv, offboarding, roles, selectors, services
from accounts.forms import (
    BulkInvitationForm,
    OffboardForm,
    ReactivateForm,
    RestrictProcessingForm,
    SuccessorForm,
)
from accounts.models import Department, Invitation, OffboardingReport, RoleGrant, ScheduledOffboarding, User
from accounts.report_pdf import report_pdf
from compliance.lifecycle import DEFAULT_ERASURE_BASIS


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
            ("scheduled", "Offboarding scheduled"),
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
        if value == "scheduled":
            pending = Q(
                scheduled_offboardings__done_at__isnull=True,
                scheduled_offboardings__cancelled_at__isnull=True,
            )
            return queryset.filter(pending, scheduled_offboardings__isnull=False).distinct()
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
        "offboarding",
        "pending_roles",
    ]
    filter_horizontal = ()
    actions = [
        "offboard_selected",
        "reactivate_selected",
        "restrict_selected",
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
            {"fields": ["date_joined", "last_login", "offboarded_at", "offboarded_by", "offboarding"]},
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
        return type(form.__name__, (form,), {"actor": request.user})

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

    @admin.display(description="Offboarding")
    def offboarding(self, obj: User) -> str:
        parts = []
        reports = list(obj.offboarding_reports.order_by("-offboarded_at"))
        if reports:
            parts.append(
                format_html_join(
                    ", ",
                    '<a href="{}">Report of {}</a>',
                    (
                        (
                            reverse("admin:accounts_offboardingreport_change", args=[r.pk]),
                            f"{r.offboarded_at:%Y-%m-%d}",
                        )
                        for r in reports
                    ),
                )
            )
        pending = obj.scheduled_offboardings.filter(done_at=None, cancelled_at=None).first()
        if pending is not None:
            when = date_format(localtime(pending.effective_at), "j M Y, H:i")
            parts.append(format_html("Scheduled for {}", when))
        return format_html_join(" · ", "{}", ((p,) for p in parts)) if parts else "—"

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        # "Last seen" of the page's people in one cache round trip.
        people = list(changelist.result_list)
        seen = selectors.user_last_seen(users=people)
        for person in people:
            person.seen_at = seen[person.pk]
        return changelist

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        users = super().get_queryset(request)
        if not request.user.is_superuser:
            # HR manages employees, not the administrators who set Kontor up.
            users = users.filter(is_superuser=False)
        return users

    # --- Offboarding, reactivation, restriction -------------------------------
    # The actions open confirmation pages of their own (their URLs take the
    # selected ids), so that the person's change page can link to them too.

    def has_offboard_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.offboard_user")

    def has_restrict_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.restrict_processing")

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("offboard/", view(self.offboard_view), name="accounts_user_offboard"),
            path("reactivate/", view(self.reactivate_view), name="accounts_user_reactivate"),
            path("restrict/", view(self.restrict_view), name="accounts_user_restrict"),
            *super().get_urls(),
        ]

    def _to_page(self, name: str, queryset: QuerySet[User]) -> HttpResponseRedirect:
        ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True))
        return HttpResponseRedirect(f"{reverse(f'admin:accounts_user_{name}')}?ids={ids}")

    @admin.action(description="Offboard the selected people …", permissions=["offboard"])
    def offboard_selected(self, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponseRedirect:
        return self._to_page("offboard", queryset)

    @admin.action(description="Reactivate the selected people (they return) …", permissions=["offboard"])
    def reactivate_selected(self, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponseRedirect:
        return self._to_page("reactivate", queryset)

    @admin.action(description="Restrict processing (erasure request) …", permissions=["restrict"])
    def restrict_selected(self, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponseRedirect:
        return self._to_page("restrict", queryset)

    def _selected(self, request: HttpRequest) -> list[User]:
        """The people named by ``ids`` that this admin may see (never superusers for HR)."""
        raw = request.POST.get("ids") if request.method == "POST" else request.GET.get("ids")
        ids = [int(part) for part in (raw or "").split(",") if part.strip().isdigit()]
        return list(self.get_queryset(request).filter(pk__in=ids).select_related("department__head"))

    def _page(
        self, request: HttpRequest, template: str, title: str, people: list[User], **context: Any
    ) -> Any:
        return TemplateResponse(
            request,
            f"admin/accounts/user/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                "people": people,
                "ids": ",".join(str(p.pk) for p in people),
                **context,
            },
        )

    def _back(self, request: HttpRequest, people: list[User]) -> HttpResponseRedirect:
        if len(people) == 1:
            return HttpResponseRedirect(reverse("admin:accounts_user_change", args=[people[0].pk]))
        return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))

    def offboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_offboard_permission(request):
            raise PermissionDenied
        people = self._selected(request)
        if not people:
            self.message_user(request, "Select the people to offboard first.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))
        gone = [p for p in people if p.offboarded_at is not None]
        people = [p for p in people if p.offboarded_at is None]
        for person in gone:
            self.message_user(request, f"{person.email} is offboarded already.", messages.INFO)
        if not people:
            return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))
        data = request.POST if request.method == "POST" else None
        candidates = (
            User.objects.filter(is_active=True, is_superuser=False)
            .exclude(pk__in=[p.pk for p in people])
            .order_by("display_name", "email")
        )
        form = OffboardForm(data)
        rows = []
        for person in people:
            preview = selectors.offboarding_preview(user=person)
            head = preview.default_successor
            initial = {"successor": head} if head is not None and head not in people else {}
            successor_form = SuccessorForm(
                data, prefix=f"u{person.pk}", candidates=candidates, initial=initial
            )
            rows.append((preview, successor_form))
        if data is not None and form.is_valid() and all(f.is_valid() for _, f in rows):
            return self._offboard(request, form, rows)
        return self._page(
            request,
            "offboard.html",
            "Offboard" + (f" {people[0]}" if len(people) == 1 else f" {len(people)} people"),
            people,
            form=form,
            rows=rows,
        )

    def _offboard(
        self,
        request: HttpRequest,
        form: OffboardForm,
        rows: list[tuple[selectors.OffboardingPreview, SuccessorForm]],
    ) -> HttpResponse:
        data = form.cleaned_data
        hold = offboarding.Hold(reason=data["hold_reason"]) if data["hold"] else None
        reports = []
        for preview, successor_form in rows:
            successor = successor_form.cleaned_data["successor"]
            try:
                outcome = offboarding.offboard(
                    actor=request.user,  # type: ignore[arg-type]
                    user_id=preview.user.pk,
                    successor_id=successor.pk if successor else None,
                    effective_at=data["effective_at"],
                    hold=hold,
                )
            except ValidationError as error:
                self.message_user(
                    request,
                    f"{preview.user} was not offboarded: {' '.join(error.messages)}",
                    messages.ERROR,
                )
                continue
            if outcome.scheduled is not None:
                when = date_format(localtime(outcome.scheduled.effective_at), "j F Y, H:i")
                self.message_user(request, f"{preview.user} will be offboarded on {when}.", messages.SUCCESS)
            elif outcome.report is not None:
                reports.append(outcome.report)
                self.message_user(
                    request,
                    f"{preview.user} is offboarded: signed out everywhere, groups and channels handed "
                    "over, conversations archived.",
                    messages.SUCCESS,
                )
        if len(reports) == 1 and len(rows) == 1:
            return HttpResponseRedirect(
                reverse("admin:accounts_offboardingreport_change", args=[reports[0].pk])
            )
        return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))

    def reactivate_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_offboard_permission(request):
            raise PermissionDenied
        people = self._selected(request)
        returning = [p for p in people if p.offboarded_at is not None]
        for person in people:
            if person.offboarded_at is None:
                self.message_user(request, f"{person.email} is not offboarded.", messages.INFO)
        if not returning:
            return (
                self._back(request, people)
                if people
                else HttpResponseRedirect(reverse("admin:accounts_user_changelist"))
            )
        form = ReactivateForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            for person in returning:
                try:
                    offboarding.reactivate(
                        actor=request.user,  # type: ignore[arg-type]
                        user_id=person.pk,
                        reason=form.cleaned_data["reason"],
                    )
                except ValidationError as error:
                    self.message_user(request, " ".join(error.messages), messages.ERROR)
                else:
                    self.message_user(
                        request,
                        f"{person.email} can sign in again; their direct conversations are open to them.",
                        messages.SUCCESS,
                    )
            return self._back(request, returning)
        return self._page(request, "reactivate.html", "Reactivate", returning, form=form)

    def restrict_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_restrict_permission(request):
            raise PermissionDenied
        people = [p for p in self._selected(request) if p.processing_restricted_at is None]
        if not people:
            self.message_user(
                request, "Select people whose processing is not restricted yet.", messages.WARNING
            )
            return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))
        form = RestrictProcessingForm(
            request.POST if request.method == "POST" else None, initial={"legal_basis": DEFAULT_ERASURE_BASIS}
        )
        if form.is_valid():
            for person in people:
                try:
                    offboarding.processing_restrict(
                        actor=request.user,  # type: ignore[arg-type]
                        user_id=person.pk,
                        request=form.cleaned_data["request"],
                        legal_basis=form.cleaned_data["legal_basis"],
                    )
                except ValidationError as error:
                    self.message_user(request, f"{person.email}: {' '.join(error.messages)}", messages.ERROR)
                else:
                    self.message_user(
                        request,
                        f"Processing of {person.email}'s data is restricted: hidden from chat, directory and "
                        "search, kept for the auditors, erased when retention ends.",
                        messages.SUCCESS,
                    )
            return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))
        return self._page(request, "restrict.html", "Restrict processing", people, form=form)

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
            actor=request.user,  # type: ignore[arg-type]
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
        return bool(request.user.is_active and request.user.is_superuser)

    def _roles_action(
        self,
        request: HttpRequest,
        queryset: QuerySet[User],
        *,
        add: tuple[str, ...] = (),
        remove: tuple[str, ...] = (),
    ) -> None:
        done = 0
        for person in queryset:
            try:
                change = services.user_roles_set(
                    actor=request.user,  # type: ignore[arg-type]
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
    def grant_auditor(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._roles_action(request, queryset, add=(roles.AUDITORS,))

    @admin.action(description="Remove the Auditor role", permissions=["administer_roles"])
    def remove_auditor(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._roles_action(request, queryset, remove=(roles.AUDITORS,))

    @admin.action(description="Grant the Data protection role", permissions=["administer_roles"])
    def grant_data_protection(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._roles_action(request, queryset, add=(roles.DATA_PROTECTION,))

    @admin.action(description="Remove the Data protection role", permissions=["administer_roles"])
    def remove_data_protection(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._roles_action(request, queryset, remove=(roles.DATA_PROTECTION,))

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

    def get_urls(self) -> list[URLPattern]:
        return [
            path("bulk/", self.admin_site.admin_view(self.bulk_view), name="accounts_invitation_bulk"),
            *super().get_urls(),
        ]

    def bulk_view(self, request: HttpRequest) -> HttpResponse:
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
                    invited_by=request.user,  # type: ignore[arg-type]
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


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OffboardingReport)
class OffboardingReportAdmin(ReadOnlyAdmin):
    """Reports are read-only everywhere: the database refuses changes too."""

    list_display = [
        "user",
        "offboarded_at",
        "offboarded_by",
        "successor",
        "conversations",
        "messages",
        "files",
    ]
    list_select_related = ["user", "offboarded_by", "successor"]
    search_fields = ["user__email", "user__display_name"]
    date_hierarchy = "offboarded_at"

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:report_id>/pdf/",
                self.admin_site.admin_view(self.pdf_view),
                name="accounts_offboardingreport_pdf",
            ),
            *super().get_urls(),
        ]

    def _report(self, request: HttpRequest, report_id: Any) -> OffboardingReport:
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = self.get_queryset(request).filter(pk=report_id).select_related("user", "hold").first()
        if report is None:
            raise Http404("No such report.")
        return report

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        report = self._report(request, object_id)
        return TemplateResponse(
            request,
            "admin/accounts/offboardingreport/report.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": f"Offboarding report: {report.user}",
                "report": report,
                "data": report.content,
                "hash_ok": report.hash_matches(),
            },
        )

    def pdf_view(self, request: HttpRequest, report_id: int) -> HttpResponse:
        report = self._report(request, report_id)
        response = HttpResponse(report_pdf(report), content_type="application/pdf")
        name = f"offboarding-{report.user_id}-{report.offboarded_at:%Y%m%d}.pdf"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


@admin.register(ScheduledOffboarding)
class ScheduledOffboardingAdmin(ReadOnlyAdmin):
    list_display = ["user", "effective_at", "successor", "requested_by", "state", "error"]
    list_select_related = ["user", "successor", "requested_by"]
    search_fields = ["user__email", "user__display_name"]
    actions = ["cancel"]

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_scheduledoffboarding")

    @admin.action(description="Call off the selected offboardings", permissions=["cancel"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[ScheduledOffboarding]) -> None:
        for scheduled in queryset:
            offboarding.scheduled_cancel(actor=request.user, scheduled_id=scheduled.pk)  # type: ignore[arg-type]
        self.message_user(request, "Called off (those that had not run yet).", messages.SUCCESS)


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
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_administer_roles_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def _settle(self, request: HttpRequest, queryset: QuerySet[RoleGrant], confirm: bool) -> None:
        settle = services.role_grant_confirm if confirm else services.role_grant_cancel
        for grant in queryset.select_related("user"):
            try:
                settle(actor=request.user, grant=grant, origin=services.Origin.ADMIN_GRANTS)  # type: ignore[arg-type]
            except ValidationError as refusal:
                self.message_user(request, f"{grant}: {' '.join(refusal.messages)}", messages.ERROR)
            else:
                verb = "confirmed: it is in effect now" if confirm else "cancelled"
                self.message_user(request, f"{grant}: {verb}.", messages.SUCCESS)

    @admin.action(
        description="Confirm the selected grants (second administrator)", permissions=["administer_roles"]
    )
    def confirm(self, request: HttpRequest, queryset: QuerySet[RoleGrant]) -> None:
        self._settle(request, queryset, confirm=True)

    @admin.action(description="Cancel the selected grants", permissions=["administer_roles"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[RoleGrant]) -> None:
        self._settle(request, queryset, confirm=False)
