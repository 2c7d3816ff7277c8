from django.urls import path

from messenger import file_views, views

app_name = "messenger"

urlpatterns = [
    path("", views.home, name="home"),
    # A conversation and what its members do in it.
    path("c/<int:conversation_id>/", views.conversation, name="conversation"),
    path("c/<int:conversation_id>/send/", views.message_send, name="send"),
    path("c/<int:conversation_id>/settings/", views.conversation_settings, name="settings"),
    path("c/<int:conversation_id>/rename/", views.conversation_rename, name="rename"),
    path("c/<int:conversation_id>/topic/", views.conversation_topic, name="topic"),
    path("c/<int:conversation_id>/mute/", views.conversation_mute, name="mute"),
    path("c/<int:conversation_id>/leave/", views.conversation_leave, name="leave"),
    path("c/<int:conversation_id>/archive/", views.channel_archive, name="archive"),
    path("c/<int:conversation_id>/members/add/", views.members_add, name="members_add"),
    path("c/<int:conversation_id>/members/<int:user_id>/remove/", views.member_remove, name="member_remove"),
    path("c/<int:conversation_id>/externals/allow/", views.externals_allow, name="externals_allow"),
    path("c/<int:conversation_id>/externals/add/", views.external_add, name="external_add"),
    path(
        "c/<int:conversation_id>/externals/<int:user_id>/remove/",
        views.external_remove,
        name="external_remove",
    ),
    path("c/<int:conversation_id>/files/", file_views.conversation_files, name="files"),
    path("files/upload/", file_views.file_upload, name="file_upload"),
    path("files/<int:file_id>/", file_views.file_download, name="file"),
    path("files/<int:file_id>/preview/", file_views.file_preview, name="file_preview"),
    path("m/<int:message_id>/edit/", views.message_edit, name="message_edit"),
    path("m/<int:message_id>/delete/", views.message_delete, name="message_delete"),
    path("m/<int:message_id>/react/", views.message_react, name="message_react"),
    # Starting and finding conversations.
    path("people/", views.people, name="people"),
    path("people/<int:user_id>/message/", views.direct_open, name="direct_open"),
    path("groups/new/", views.group_new, name="group_new"),
    path("channels/", views.channels, name="channels"),
    path("channels/new/", views.channel_new, name="channel_new"),
    path("channels/<int:conversation_id>/join/", views.channel_join, name="channel_join"),
    path("search/", views.search, name="search"),
    path("sidebar/", views.sidebar, name="sidebar"),
]
