from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("people/<int:user_id>/avatar.png", views.avatar, name="avatar"),
    path("invite/<str:token>/", views.invitation_accept, name="invitation_accept"),
]
