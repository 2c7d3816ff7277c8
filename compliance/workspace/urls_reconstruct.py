"""Routes of the workspace area: reconstruct (at /compliance/conversations/)."""

from django.urls import URLPattern, path

from compliance.workspace import views_reconstruct as views

urlpatterns: list[URLPattern] = [
    path("<int:case_id>/", views.conversation_list, name="conversations"),
    path("<int:case_id>/<int:conversation_id>/", views.conversation, name="conversation"),
    path(
        "<int:case_id>/<int:conversation_id>/files/<str:sha256>/",
        views.archived_file,
        name="archived_file",
    ),
]
