from django.urls import path

from virtual_agents import views

app_name = "virtual_agents"

urlpatterns = [
    path("", views.index, name="index"),
    path("connect/", views.connect_start, name="connect"),
    path("integrations/<uuid:pk>/", views.integration_detail, name="integration_detail"),
    path("integrations/<uuid:pk>/verify/", views.integration_verify, name="integration_verify"),
    path("integrations/<uuid:pk>/edit/", views.integration_edit, name="integration_edit"),
    path("integrations/<uuid:pk>/delete/", views.integration_delete, name="integration_delete"),
    path("integrations/<uuid:pk>/agents/new/", views.agent_create, name="agent_create"),
    path("<uuid:pk>/", views.agent_detail, name="agent_detail"),
    path("<uuid:pk>/edit/", views.agent_edit, name="agent_edit"),
    path("<uuid:pk>/check/", views.agent_check, name="agent_check"),
    path("<uuid:pk>/disconnect/", views.agent_disconnect, name="agent_disconnect"),
    path("<uuid:pk>/reconnect/", views.agent_reconnect, name="agent_reconnect"),
    path("<uuid:pk>/delete/", views.agent_delete, name="agent_delete"),
]
