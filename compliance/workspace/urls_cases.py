"""Routes of the workspace area: cases (the home), legal holds, the audit trail."""

from django.urls import URLPattern, path

from compliance.workspace import views_cases as views

urlpatterns: list[URLPattern] = [
    path("", views.case_list, name="cases"),
    path("cases/new/", views.case_open, name="case_open"),
    path("cases/<int:case_id>/", views.case_detail, name="case"),
    path("cases/<int:case_id>/approve/", views.case_approve, name="case_approve"),
    path("cases/<int:case_id>/close/", views.case_close, name="case_close"),
    path("holds/", views.hold_list, name="holds"),
    path("holds/new/", views.hold_new, name="hold_new"),
    path("holds/<int:hold_id>/", views.hold_detail, name="hold"),
    path("holds/<int:hold_id>/release/", views.hold_release, name="hold_release"),
    path("audit/", views.audit_trail, name="audit_trail"),
    path("audit/export.jsonl", views.audit_trail_export, name="audit_trail_export"),
]
