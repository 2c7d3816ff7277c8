"""Every route of the auditor workspace (at /compliance/, namespace
"compliance"), each behind a guard of ``compliance.workspace.access``."""

from django.urls import URLPattern, path

from compliance.workspace.views import cases, exports, holds, reconstruct, search, trail

urlpatterns: list[URLPattern] = [
    # Cases: the workspace's home.
    path("", cases.case_list, name="cases"),
    path("cases/new/", cases.case_open, name="case_open"),
    path("cases/<int:case_id>/", cases.case_detail, name="case"),
    path("cases/<int:case_id>/approve/", cases.case_approve, name="case_approve"),
    path("cases/<int:case_id>/close/", cases.case_close, name="case_close"),
    # Legal holds.
    path("holds/", holds.hold_list, name="holds"),
    path("holds/new/", holds.hold_new, name="hold_new"),
    path("holds/<int:hold_id>/", holds.hold_detail, name="hold"),
    path("holds/<int:hold_id>/release/", holds.hold_release, name="hold_release"),
    # The audit trail.
    path("audit/", trail.audit_trail, name="audit_trail"),
    path("audit/export.jsonl", trail.audit_trail_export, name="audit_trail_export"),
    # Searching the archive, within a case.
    path("search/<int:case_id>/", search.search_page, name="search"),
    # Reconstruction: archived conversations as they stood.
    path("conversations/<int:case_id>/", reconstruct.conversation_list, name="conversations"),
    path(
        "conversations/<int:case_id>/<int:conversation_id>/",
        reconstruct.conversation,
        name="conversation",
    ),
    path(
        "conversations/<int:case_id>/<int:conversation_id>/files/<str:sha256>/",
        reconstruct.archived_file,
        name="archived_file",
    ),
    # Exports.
    path("exports/<int:case_id>/", exports.exports_page, name="exports"),
    path("exports/<int:case_id>/<int:export_id>/", exports.export_status, name="export_status"),
    path(
        "exports/<int:case_id>/<int:export_id>/download/",
        exports.export_download,
        name="export_download",
    ),
]
