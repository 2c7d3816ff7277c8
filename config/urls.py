from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from config import views

admin.site.site_header = "Kontor administration"
admin.site.site_title = "Kontor admin"
admin.site.index_title = "People and organisation"
# Sign in to the admin through allauth: the same second factor and rate limits.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    # For load balancers, monitors and Prometheus (docs/deployment.md).
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics_view, name="metrics"),
    # Offboarding reports and schedules moved to the hr app (issue 17): links kept
    # from before (bookmarks, tickets) lead to the same pages.
    re_path(
        r"^admin/accounts/(?P<model>offboardingreport|scheduledoffboarding)/(?P<rest>.*)$",
        RedirectView.as_view(url="/admin/hr/%(model)s/%(rest)s", query_string=True),
    ),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("compliance/", include("compliance.urls")),
    path("", include("accounts.urls")),
    path("", include("messenger.urls")),
]
