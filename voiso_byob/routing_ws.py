"""Websocket URL table."""

from __future__ import annotations

from django.urls import path

from reporting.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi(), name="live_ws"),
]
