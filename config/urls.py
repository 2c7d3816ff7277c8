from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Kontor administration"
admin.site.site_title = "Kontor admin"
admin.site.index_title = "People and organisation"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("", include("messenger.urls")),
]
