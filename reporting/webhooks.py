"""POST /api/v1/webhooks/<provider>/<integration id>/: bot providers' post-call reports.

No session and no API key: the provider's signature over the raw body is the authentication
(virtual_agents.webhooks). The integration in the URL picks the secret and the contact
center; one of another provider, a generic SIP bot or an unknown id is 404. A request that
fails the signature check (401), is not JSON or not a report (400) stores nothing; a
re-sent report updates the one stored for its provider call.

The body is read in chunks while the HMAC is computed, so an ElevenLabs `post_call_audio`
(base64 audio, several MB) is verified and acknowledged without being held in memory;
only bodies up to MAX_PARSED_BYTES are decoded. Secrets, signature headers and bodies are
never logged.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reporting.provider_reports import store_report
from virtual_agents.models import ProviderIntegration
from virtual_agents.webhooks import (
    WEBHOOK_PROVIDERS,
    PayloadError,
    SignatureError,
    parse_report,
    signing_secret,
    verifier_for,
)
from voiso_byob.api_errors import error_body

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
# A post-call transcript is tens of KB; an ElevenLabs audio payload is several MB and ignored.
MAX_PARSED_BYTES = 4 * 1024 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024


def _error(status: int, code: str, message: str, **extra: Any) -> Response:
    return Response(error_body(code, message, **extra), status=status)


def _not_found() -> Response:
    return _error(404, "not_found", "Not found.")


class WebhookAck(serializers.Serializer):
    # A plain string, not an enum: another "status" enum would collide in the schema's names.
    status = serializers.CharField(help_text='"stored", or "ignored" for events without a report.')
    event = serializers.CharField(help_text="The provider's event or message type.")
    report = serializers.IntegerField(required=False, help_text="The stored report's id.")
    is_new = serializers.BooleanField(required=False)
    matched = serializers.BooleanField(required=False, help_text="Whether the call record was found.")


class ProviderWebhookView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="provider_webhook",
        summary="A bot provider's post-call report (signed)",
        description=(
            "ElevenLabs (`ElevenLabs-Signature`), Vapi (`x-signature` + `x-timestamp`, or "
            "`X-Vapi-Secret`) and Retell (`x-retell-signature`). The body is the provider's own "
            "JSON, signed as sent. Events without a report are acknowledged with `ignored`."
        ),
        parameters=[
            OpenApiParameter("provider", str, OpenApiParameter.PATH, enum=list(WEBHOOK_PROVIDERS)),
            OpenApiParameter("integration_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
        ],
        request=OpenApiTypes.OBJECT,
        responses={
            200: WebhookAck,
            400: OpenApiResponse(description="Not JSON, or not a report we can read."),
            401: OpenApiResponse(description="Missing, malformed, stale or wrong signature."),
            404: OpenApiResponse(description="No such integration for this provider."),
            413: OpenApiResponse(description="Body larger than 64 MB."),
        },
        auth=[],
        tags=["webhooks"],
    )
    def post(self, request: Request, provider: str, integration_id: UUID) -> Response:
        if provider not in WEBHOOK_PROVIDERS:
            return _not_found()
        integration = (
            ProviderIntegration.objects.filter(pk=integration_id, provider=provider)
            .select_related("contact_center")
            .first()
        )
        if integration is None:
            return _not_found()
        log_context = {"provider": provider, "integration": str(integration.pk)}
        try:
            verifier = verifier_for(
                provider,
                request.headers,
                secret=signing_secret(provider, integration.credentials),
                now=time.time(),
            )
            body, size = self._read_body(request, verifier)
            if size > MAX_BODY_BYTES:
                return _error(413, "payload_too_large", "The body is larger than 64 MB.")
            verifier.verify()
        except SignatureError as exc:
            logger.warning("webhook refused (%s): %s", exc.code, log_context)
            return _error(401, exc.code, exc.message)
        if body is None:
            # Verified, but too large to be a report (ElevenLabs audio): acknowledged, not kept.
            logger.info("webhook ignored, %d bytes: %s", size, log_context)
            return Response({"status": "ignored", "event": "too_large"})
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "invalid_json", "The body is not valid JSON.")
        try:
            report = parse_report(provider, payload)
        except PayloadError as exc:
            extra = {"fields": exc.fields} if exc.fields else {}
            return _error(400, "invalid_report", exc.message, **extra)
        if report is None:
            return Response({"status": "ignored", "event": _event_name(provider, payload)})
        stored = store_report(integration=integration, report=report)
        logger.info(
            "webhook %s stored report %s (matched: %s): %s",
            report.event,
            stored.report.pk,
            stored.report.call_record_id is not None,
            log_context,
        )
        return Response(
            {
                "status": "stored",
                "event": report.event,
                "report": stored.report.pk,
                "is_new": stored.is_new,
                "matched": stored.report.call_record_id is not None,
            }
        )

    @staticmethod
    def _read_body(request: Request, verifier: Any) -> tuple[bytes | None, int]:
        """Feed the whole body to the verifier; keep it only while it is small enough to parse."""
        kept: list[bytes] | None = []
        size = 0
        while chunk := request._request.read(CHUNK):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                break
            verifier.update(chunk)
            if kept is not None:
                kept.append(chunk)
                if size > MAX_PARSED_BYTES:
                    kept = None
        return (b"".join(kept) if kept is not None else None), size


def _event_name(provider: str, payload: dict[str, Any]) -> str:
    if provider == "vapi":
        message = payload.get("message")
        value = message.get("type") if isinstance(message, dict) else None
    elif provider == "retell":
        value = payload.get("event")
    else:
        value = payload.get("type")
    return value[:64] if isinstance(value, str) else "unknown"


provider_webhook = ProviderWebhookView.as_view()
