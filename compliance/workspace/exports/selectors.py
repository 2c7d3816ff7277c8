"""Reading exports: a case's exports, one of them, and the archive's titles."""

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User
from compliance.models import ArchivedMessage, Case, Export
from compliance.workspace.cases import case_for_results


def exports_for_case(*, case: Case) -> QuerySet[Export]:
    return Export.objects.filter(case=case).select_related("requested_by").order_by("-requested_at", "-pk")


def conversation_titles(conversation_ids: list[int]) -> dict[int, str]:
    """The archive's title of each conversation (its newest index row's)."""
    titles: dict[int, str] = {}
    for conversation_id in conversation_ids:
        title = (
            ArchivedMessage.objects.filter(conversation_id=conversation_id)
            .order_by("-at")
            .values_list("conversation_title", flat=True)
            .first()
        )
        if title:
            titles[conversation_id] = title
    return titles


def export_for_case(*, actor: User, case_id: int, export_id: int) -> tuple[Case, Export]:
    """An export of a case whose results ``actor`` may open; Http404 otherwise."""
    case = case_for_results(actor, case_id)
    export = Export.objects.select_related("requested_by").filter(pk=export_id, case=case).first()
    if export is None:
        raise Http404("Not found")
    return case, export
