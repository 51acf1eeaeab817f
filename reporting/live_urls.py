"""The Live page and its catch-up endpoint (mounted at /live/ by voiso_byob.urls)."""

from django.urls import path

from reporting import live_views

urlpatterns = [
    path("", live_views.live, name="live"),
    path("events/", live_views.live_events, name="live_events"),
]
