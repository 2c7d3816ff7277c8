"""Routes of the workspace area: cases."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
