"""Routes of the workspace area: search."""

from django.urls import URLPattern, path

from compliance.workspace import views_search as views

urlpatterns: list[URLPattern] = [
    path("<int:case_id>/", views.search_page, name="search"),
]
