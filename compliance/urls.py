"""The auditor workspace at /compliance/. Each area keeps its routes in its
own module; all of them are behind ``compliance.workspace.access``."""

from django.urls import include, path

app_name = "compliance"

urlpatterns = [
    path("", include("compliance.workspace.urls_cases")),
    path("search/", include("compliance.workspace.urls_search")),
    path("conversations/", include("compliance.workspace.urls_reconstruct")),
    path("exports/", include("compliance.workspace.urls_exports")),
]
