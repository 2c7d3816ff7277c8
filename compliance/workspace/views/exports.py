"""Pages of exports: the case's exports with their progress, a form to
export a conversation range (a search is exported from the search page,
which posts here: ``export_search_form.html``), and the download. Each view
checks the case (``case_for_results``; a closed case or one awaiting approval
shows the refusal's reason), makes one service call and renders or redirects."""

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.http import AuthenticatedHttpRequest
from compliance.models import Case, Export
from compliance.workspace import exports, search
from compliance.workspace.access import auditor_required
from compliance.workspace.cases import case_for_results
from compliance.workspace.forms.exports import ExportForm, search_export_parameters
from compliance.workspace.forms.search import SearchForm
from compliance.workspace.views.shared import refusals_shown

EXPORTS_SHOWN = 50


@dataclass(frozen=True)
class Row:
    export: Export
    scope: str

    @property
    def running(self) -> bool:
        return self.export.status in (Export.Status.QUEUED, Export.Status.RUNNING)

    @property
    def hash_lines(self) -> tuple[str, str]:
        """The ZIP's SHA-256 in two halves: a table cell holds 32 characters."""
        return self.export.sha256[:32], self.export.sha256[32:]


def _row(export: Export, titles: dict[int, str] | None = None) -> Row:
    return Row(export=export, scope=exports.describe_scope(export.parameters, titles or {}))


def _request_export(
    request: AuthenticatedHttpRequest, case: Case, form: ExportForm | SearchForm
) -> Export | None:
    """Ask the service for the export the valid ``form`` describes; its
    refusal goes onto the form (nothing was written)."""
    if isinstance(form, SearchForm):
        parameters = search_export_parameters(form.criteria())
        formats = list(exports.FORMATS)
    else:
        parameters, formats = form.parameters(), form.cleaned_data["formats"]
    try:
        return exports.export_request(
            actor=request.user, case_id=case.pk, parameters=parameters, formats=formats, request=request
        )
    except ValidationError as error:
        form.add_error(None, error)
        return None


@auditor_required
@refusals_shown
@require_http_methods(["GET", "POST"])
def exports_page(request: AuthenticatedHttpRequest, case_id: int) -> HttpResponse:
    case = case_for_results(request.user, case_id)
    conversations = search.filter_choices().conversations
    searched: SearchForm | None = None
    form = ExportForm(
        request.POST if request.method == "POST" and request.POST.get("kind") != "search" else None,
        conversations=conversations,
        initial={"conversation": request.GET.get("conversation")},
    )
    if request.method == "POST":
        if request.POST.get("kind") == "search":
            searched = SearchForm(request.POST, choices=search.filter_choices())
            valid = searched.is_valid()
            export = _request_export(request, case, searched) if valid else None
        else:
            export = _request_export(request, case, form) if form.is_valid() else None
        if export is not None:
            messages.success(
                request,
                f"Export {export.pk} requested: it is built in the background, its progress shows below.",
            )
            return redirect("compliance:exports", case.pk)
    titles = dict(conversations)
    rows = [_row(e, titles) for e in exports.exports_for_case(case=case)[:EXPORTS_SHOWN]]
    context = {"nav": "exports", "case": case, "rows": rows, "form": form, "search_form": searched}
    failed = bool(form.errors or (searched is not None and searched.errors))
    return render(request, "compliance/exports.html", context, status=400 if failed else 200)


@auditor_required
@refusals_shown
@require_GET
def export_status(request: AuthenticatedHttpRequest, case_id: int, export_id: int) -> HttpResponse:
    """One export's row: what the page polls (htmx) while the export runs."""
    case, export = exports.export_for_case(actor=request.user, case_id=case_id, export_id=export_id)
    conversation = export.parameters.get("conversation_id")
    titles = exports.conversation_titles([int(conversation)] if conversation else [])
    return render(request, "compliance/export_row.html", {"case": case, "row": _row(export, titles)})


@auditor_required
@refusals_shown
@require_GET
def export_download(request: AuthenticatedHttpRequest, case_id: int, export_id: int) -> HttpResponseBase:
    export, handle = exports.export_download(
        actor=request.user, case_id=case_id, export_id=export_id, request=request
    )
    return FileResponse(
        handle,
        as_attachment=True,
        filename=f"kontor-export-{export.pk}.zip",
        content_type="application/zip",
    )
