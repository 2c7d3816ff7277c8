"""Routes of the workspace area: reconstruct."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
