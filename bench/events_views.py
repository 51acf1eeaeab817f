"""The yardstick bench/events_http.py measures the events endpoint against (served at /bench/events-minimal).

What any authenticated event store must do per event, and nothing more: one indexed SELECT for
the API key (by its prefix, hash compared, scope and revocation checked) and one INSERT of the
raw event. No validation beyond JSON, no records, no handoffs, no feed, no counters.
"""

from __future__ import annotations

import json
import secrets

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from reporting.models import CallEvent
from voiso_byob.models import ApiKey, ApiKeyScope, hash_api_key

_KEY_SQL = (
    f"SELECT contact_center_id, hashed_key, scope, revoked_at FROM {ApiKey._meta.db_table} WHERE prefix = %s"
)
_INSERT_SQL = (
    f"INSERT INTO {CallEvent._meta.db_table} "
    "(contact_center_id, event_id, type, call_id, occurred_at, received_at, data, refs) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, '{}') ON CONFLICT (contact_center_id, event_id) DO NOTHING"
)


@csrf_exempt
def events_minimal(request: HttpRequest) -> JsonResponse:
    header = request.headers.get("Authorization", "")
    raw = header[7:] if header.startswith("Bearer ") else ""
    with connection.cursor() as cursor:
        cursor.execute(_KEY_SQL, [ApiKey.prefix_of(raw)])
        row = cursor.fetchone()
        if row is None or not secrets.compare_digest(row[1], hash_api_key(raw)) or row[3] is not None:
            return JsonResponse(
                {"error": {"code": "invalid_api_key", "message": "Invalid API key."}}, status=401
            )
        if row[2] != ApiKeyScope.TELEPHONY:
            return JsonResponse({"error": {"code": "permission_denied", "message": "Scope."}}, status=403)
        try:
            event = json.loads(request.body)
            params = [
                row[0],
                event["id"],
                event["type"],
                event["call_id"],
                event["occurred_at"],
                timezone.now(),
            ]
        except (ValueError, KeyError, TypeError):
            return JsonResponse({"error": {"code": "parse_error", "message": "Bad event."}}, status=400)
        cursor.execute(_INSERT_SQL, [*params, json.dumps(event.get("data", {}))])
        inserted = cursor.rowcount
    return JsonResponse({"accepted": inserted, "duplicates": 1 - inserted}, status=202)
