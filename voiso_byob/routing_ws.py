"""Websocket URL table. The live feed consumer (/ws/live/) arrives with the reporting issue."""

from __future__ import annotations

websocket_urlpatterns: list = []
