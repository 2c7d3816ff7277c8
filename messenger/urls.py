from django.urls import path

from messenger import views

app_name = "messenger"

urlpatterns = [
    path("", views.home, name="home"),
]
