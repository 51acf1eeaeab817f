"""The real URLs plus the benchmarks' yardstick views (ROOT_URLCONF=bench.urls)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from bench.events_views import events_minimal
from bench.export_views import calls_export_models
from voiso_byob.urls import urlpatterns as app_urlpatterns


@csrf_exempt
def minimal(request: HttpRequest) -> JsonResponse:
    """Constant JSON: no auth, no database; the yardstick the telephony endpoints are measured against."""
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/minimal", minimal, name="bench_minimal"),
    path("bench/events-minimal", events_minimal, name="bench_events_minimal"),  # bench/events_http.py
    path("bench/calls-export-models.csv", calls_export_models),  # bench/exports.py
    *app_urlpatterns,
]
