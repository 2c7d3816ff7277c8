"""Routes of the workspace area: exports."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
