"""The real URLs plus a minimal comparison view, for bench/telephony_http.py (ROOT_URLCONF=bench.urls)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from bench.events_views import events_minimal
from voiso_byob.urls import urlpatterns as app_urlpatterns


@csrf_exempt
def minimal(request: HttpRequest) -> JsonResponse:
    """Constant JSON: no auth, no database; the yardstick the telephony endpoints are measured against."""
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/minimal", minimal, name="bench_minimal"),
    path("bench/events-minimal", events_minimal, name="bench_events_minimal"),  # bench/events_http.py
    *app_urlpatterns,
]
