"""Routes of the workspace area: search."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
