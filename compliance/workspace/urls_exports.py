"""Routes of the workspace area: exports."""

from django.urls import path

from compliance.workspace import views_exports

urlpatterns = [
    path("<int:case_id>/", views_exports.exports_page, name="exports"),
    path("<int:case_id>/<int:export_id>/", views_exports.export_status, name="export_status"),
    path("<int:case_id>/<int:export_id>/download/", views_exports.export_download, name="export_download"),
]
