"""Pages of legal holds: the list with what each covers, setting one, one
hold with its coverage, releasing it. The holds themselves are
``compliance.services``'s; their coverage is read by ``holds``."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.http import AuthenticatedHttpRequest
from compliance import services as compliance_services
from compliance.audit import Origin
from compliance.workspace import holds
from compliance.workspace.access import auditor_required
from compliance.workspace.forms.holds import HoldForm, HoldReleaseForm


@auditor_required
@require_GET
def hold_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    listed = list(holds.holds_with_coverage())
    context = {
        "nav": "holds",
        "active": [hold for hold in listed if hold.released_at is None],
        "released": [hold for hold in listed if hold.released_at is not None],
    }
    return render(request, "compliance/holds.html", context)


@auditor_required
@require_http_methods(["GET", "POST"])
def hold_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    # A GET may prefill the form, e.g. from a reconstructed conversation.
    form = HoldForm(request.POST) if request.method == "POST" else HoldForm(initial=request.GET.dict())
    if form.is_bound and form.is_valid():
        try:
            hold = compliance_services.hold_set(
                actor=request.user, origin=Origin.of(request), **form.cleaned_data
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Legal hold “{hold.name}” set.")
            return redirect("compliance:hold", hold_id=hold.pk)
    status = 400 if form.is_bound else 200
    return render(request, "compliance/hold_form.html", {"nav": "holds", "form": form}, status=status)


@auditor_required
@require_GET
def hold_detail(request: AuthenticatedHttpRequest, hold_id: int) -> HttpResponse:
    hold, coverage = holds.hold_detail(hold_id)
    context = {"nav": "holds", "hold": hold, "coverage": coverage, "release_form": HoldReleaseForm()}
    return render(request, "compliance/hold.html", context)


@auditor_required
@require_POST
def hold_release(request: AuthenticatedHttpRequest, hold_id: int) -> HttpResponse:
    hold, coverage = holds.hold_detail(hold_id)
    form = HoldReleaseForm(request.POST)
    if not form.is_valid():
        context = {"nav": "holds", "hold": hold, "coverage": coverage, "release_form": form}
        return render(request, "compliance/hold.html", context, status=400)
    if hold.released_at is not None:
        messages.info(request, "This hold was already released.")
    else:
        compliance_services.hold_release(
            actor=request.user, hold_id=hold.pk, reason=form.cleaned_data["reason"], origin=Origin.of(request)
        )
        messages.success(request, f"Legal hold “{hold.name}” released.")
    return redirect("compliance:hold", hold_id=hold.pk)
