"""HR's part of the admin: offboarding, reactivation and processing restriction
on the people list, the offboarding reports and the scheduled offboardings.

``accounts.admin.UserAdmin`` is the people list as the accounts app knows it;
this module registers a subclass in its place (same model, so the same URLs,
URL names and templates: ``admin:accounts_user_offboard`` and
``admin/accounts/user/offboard.html`` stay), adding the HR actions and pages.
"""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from accounts.admin import StatusFilter
from accounts.admin import UserAdmin as AccountsUserAdmin
from accounts.admin.common import ReadOnlyAdmin
from accounts.http import AuthenticatedHttpRequest
from accounts.models import User
from compliance.audit import Origin
from compliance.lifecycle import DEFAULT_ERASURE_BASIS
from hr import selectors, services
from hr.forms import OffboardForm, ReactivateForm, RestrictProcessingForm, SuccessorForm
from hr.models import OffboardingReport, ScheduledOffboarding
from hr.report_pdf import report_pdf


class HrStatusFilter(StatusFilter):
    """The people list's status filter, with those whose offboarding is scheduled."""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [*super().lookups(request, model_admin), ("scheduled", "Offboarding scheduled")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        if self.value() == "scheduled":
            pending = Q(
                scheduled_offboardings__done_at__isnull=True,
                scheduled_offboardings__cancelled_at__isnull=True,
            )
            return queryset.filter(pending, scheduled_offboardings__isnull=False).distinct()
        return super().queryset(request, queryset)


class UserAdmin(AccountsUserAdmin):
    list_filter = [HrStatusFilter, "department", "groups"]
    readonly_fields = [*AccountsUserAdmin.readonly_fields, "offboarding"]
    actions = ["offboard_selected", "reactivate_selected", "restrict_selected", *AccountsUserAdmin.actions]
    fieldsets = (
        *AccountsUserAdmin.fieldsets[:-1],  # all but "History", the last, which gains a field
        (
            "History",
            {"fields": ["date_joined", "last_login", "offboarded_at", "offboarded_by", "offboarding"]},
        ),
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
                            reverse("admin:hr_offboardingreport_change", args=[r.pk]),
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

    def offboard_view(self, request: AuthenticatedHttpRequest) -> HttpResponse:
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
        request: AuthenticatedHttpRequest,
        form: OffboardForm,
        rows: list[tuple[selectors.OffboardingPreview, SuccessorForm]],
    ) -> HttpResponse:
        data = form.cleaned_data
        hold = services.Hold(reason=data["hold_reason"]) if data["hold"] else None
        reports = []
        for preview, successor_form in rows:
            successor = successor_form.cleaned_data["successor"]
            try:
                outcome = services.offboard(
                    actor=request.user,
                    user_id=preview.user.pk,
                    successor_id=successor.pk if successor else None,
                    effective_at=data["effective_at"],
                    hold=hold,
                    origin=Origin.of(request),
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
            return HttpResponseRedirect(reverse("admin:hr_offboardingreport_change", args=[reports[0].pk]))
        return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))

    def reactivate_view(self, request: AuthenticatedHttpRequest) -> HttpResponse:
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
                    services.reactivate(
                        actor=request.user,
                        user_id=person.pk,
                        reason=form.cleaned_data["reason"],
                        origin=Origin.of(request),
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

    def restrict_view(self, request: AuthenticatedHttpRequest) -> HttpResponse:
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
                    services.processing_restrict(
                        actor=request.user,
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


admin.site.unregister(User)
admin.site.register(User, UserAdmin)


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
                name="hr_offboardingreport_pdf",
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
            "admin/hr/offboardingreport/report.html",
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
        return request.user.has_perm("hr.change_scheduledoffboarding")

    @admin.action(description="Call off the selected offboardings", permissions=["cancel"])
    def cancel(self, request: AuthenticatedHttpRequest, queryset: QuerySet[ScheduledOffboarding]) -> None:
        for scheduled in queryset:
            services.scheduled_cancel(actor=request.user, scheduled_id=scheduled.pk)
        self.message_user(request, "Called off (those that had not run yet).", messages.SUCCESS)
