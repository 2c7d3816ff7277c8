"""The auditor workspace at /compliance/: its routes are in
``compliance.workspace.urls``, all of them behind ``compliance.workspace.access``."""

from django.urls import include, path

app_name = "compliance"

urlpatterns = [
    path("", include("compliance.workspace.urls")),
]
