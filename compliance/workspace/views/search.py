"""The search page of a case: the form, the hits, and one audit event per search.

A search is logged once, when it is made; its further pages carry a signed
cursor bound to the case and the criteria, so paging through a logged search
writes nothing more, while any other query (or a forged or stale cursor)
counts as a new search and is logged.
"""

from typing import Any
from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from accounts.http import AuthenticatedHttpRequest
from compliance.audit import Origin
from compliance.models import ArchivedMessage
from compliance.workspace import search
from compliance.workspace.access import auditor_required
from compliance.workspace.cases import case_for_results
from compliance.workspace.forms.search import SearchForm
from compliance.workspace.views.shared import refusals_shown


def conversation_link(case_id: int, message: ArchivedMessage) -> str | None:
    """The reconstruction of the hit's conversation at the hit's moment,
    scrolled to the message."""
    try:
        base = reverse("compliance:conversation", args=[case_id, message.conversation_id])
    except NoReverseMatch:  # the reconstruction page is not part of this build
        return None
    return f"{base}?{urlencode({'at': message.at.isoformat()})}#m{message.message_id}"


@auditor_required
@refusals_shown
@require_GET
def search_page(request: AuthenticatedHttpRequest, case_id: int) -> HttpResponse:
    case = case_for_results(request.user, case_id)
    # A search is made by submitting the form (its words may be empty: the
    # filters alone are a search); opening the page shows the form only.
    submitted = "q" in request.GET
    form = SearchForm(request.GET if submitted else None, choices=search.filter_choices())
    context: dict[str, Any] = {"nav": "search", "case": case, "form": form, "searched": False}
    if submitted and form.is_valid():
        results = search.search_results(
            actor=request.user,
            case=case,
            criteria=form.criteria(),
            cursor=request.GET.get("after"),
            origin=Origin.of(request),
        )
        for hit in results.page.hits:
            hit.link = conversation_link(case.pk, hit.message)
        context.update(
            searched=True,
            criteria=results.criteria,
            hits=results.page.hits,
            total=results.total,
            capped=results.capped,
            # Both continue the logged search: no new audit event.
            first_token=results.first_token,
            next_token=results.next_token,
        )
    return render(request, "compliance/search.html", context, status=400 if form.errors else 200)
