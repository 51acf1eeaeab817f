"""Campaigns, leads and do-not-call entries as the REST API reads and writes them.

Writes go through campaigns.services; these only check shapes. The batch bodies (lead import,
bulk do-not-call add) are checked by campaigns.batches; their serializers here describe them for
the schema only.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.batches import MAX_CONTEXT_HEADERS, MAX_CONTEXT_VALUE, MAX_PHONE_TEXT
from campaigns.models import (
    DEFAULT_RETRY_MINUTES,
    WEEKDAYS,
    AttemptOutcome,
    AutoPauseReason,
    Campaign,
    CampaignStatus,
    DoNotCall,
    Lead,
    LeadStatus,
)
from campaigns.services import MAX_LEADS_PER_REQUEST
from routing.models import PhoneNumber, Queue
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter

HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_DEFAULT_HOURS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "20:00"}]


class CallingHoursSerializer(serializers.Serializer):
    days = serializers.ListField(child=serializers.ChoiceField(choices=WEEKDAYS), min_length=1, max_length=7)
    start = serializers.RegexField(HHMM, help_text="HH:MM, in each lead's local time.")
    end = serializers.RegexField(HHMM, help_text="HH:MM, after start (no overnight ranges).")


class RetryMinutesSerializer(serializers.Serializer):
    """Minutes before a lead is tried again after each outcome; `rejected` and `invalid_number` never are."""

    busy = serializers.IntegerField(min_value=1, max_value=10_080, required=False)
    no_answer = serializers.IntegerField(min_value=1, max_value=10_080, required=False)
    machine = serializers.IntegerField(min_value=1, max_value=10_080, required=False)
    failed = serializers.IntegerField(min_value=1, max_value=10_080, required=False)

    def to_internal_value(self, data: Any) -> Any:
        # A delay for an outcome that never retries would be dropped in silence: say so instead.
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        if unknown:
            raise serializers.ValidationError(
                {name: ["Only busy, no_answer, machine and failed are retried."] for name in unknown},
                code="invalid_retry_minutes",
            )
        return super().to_internal_value(data)


class LeadCountsSerializer(serializers.Serializer):
    new = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    retry = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    dnc = serializers.IntegerField()
    exhausted = serializers.IntegerField()


class ProgressSerializer(serializers.Serializer):
    """What `campaigns.progress` defines; "today" starts at midnight in the center's time zone."""

    leads = LeadCountsSerializer(help_text="Leads by status.")
    total = serializers.IntegerField(help_text="Every lead of the campaign.")
    finished = serializers.IntegerField(help_text="Leads no longer open: done, failed, dnc or exhausted.")
    attempts_today = serializers.IntegerField(help_text="Calls placed today.")
    connects_today = serializers.IntegerField(help_text="Of today's calls, those a bot answered.")
    handoffs_today = serializers.IntegerField(help_text="Of today's calls, those handed off to a person.")
    attempts = serializers.IntegerField(help_text="Calls placed since the campaign began.")
    connects = serializers.IntegerField(help_text="Calls a bot answered since the campaign began.")
    handoffs = serializers.IntegerField(help_text="Calls handed off to a person since the campaign began.")
    calls_in_progress = serializers.IntegerField(help_text="Calls placed and not ended yet.")


class CampaignSerializer(serializers.ModelSerializer):
    """PUT replaces the whole campaign: unsent optional fields return to the defaults declared here."""

    name = serializers.CharField(max_length=100)
    virtual_agents = serializers.PrimaryKeyRelatedField(
        many=True,
        allow_empty=False,
        queryset=VirtualAgent.objects.none(),
        help_text="Ids of the virtual agents that take the calls (at least one).",
    )
    handoff_queue = serializers.PrimaryKeyRelatedField(
        queryset=Queue.objects.none(), allow_null=True, default=None
    )
    handoff_queue_threshold = serializers.IntegerField(
        min_value=1,
        max_value=1000,
        default=5,
        help_text="Pause while more handed-off callers than this wait in the handoff queue.",
    )
    caller_ids = serializers.PrimaryKeyRelatedField(
        many=True,
        queryset=PhoneNumber.objects.none(),
        default=list,
        help_text="Ids of this center's phone numbers to call from.",
    )
    timezone = serializers.CharField(
        max_length=64, allow_blank=True, default="", help_text="IANA zone; empty: the center's."
    )
    calling_hours = CallingHoursSerializer(
        many=True,
        default=lambda: [dict(item) for item in _DEFAULT_HOURS],
        help_text="In each lead's local time, inside the center's legal window. Default Mon-Fri 09:00-20:00.",
    )
    max_attempts = serializers.IntegerField(min_value=1, max_value=20, default=3)
    retry_minutes = RetryMinutesSerializer(
        default=dict, help_text=f"Unsent outcomes take the defaults {DEFAULT_RETRY_MINUTES}."
    )
    priority = serializers.IntegerField(
        min_value=1, max_value=1000, default=100, help_text="Among the center's campaigns; lower first."
    )
    status = serializers.ChoiceField(choices=CampaignStatus.choices, read_only=True)
    status_reason = serializers.ChoiceField(
        choices=AutoPauseReason.choices,
        allow_blank=True,
        read_only=True,
        help_text="Why an auto_paused campaign waits; empty otherwise.",
    )
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "virtual_agents",
            "handoff_queue",
            "handoff_queue_threshold",
            "caller_ids",
            "timezone",
            "calling_hours",
            "max_attempts",
            "retry_minutes",
            "priority",
            "status",
            "status_reason",
            "progress",
            "created",
        ]
        read_only_fields = ["id", "status", "status_reason", "created"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        center: ContactCenter | None = self.context.get("center")
        if center is not None:
            # Relations resolve inside the caller's contact center only: another's id is "does not exist".
            self.fields["virtual_agents"].child_relation.queryset = VirtualAgent.objects.for_center(center)
            self.fields["caller_ids"].child_relation.queryset = PhoneNumber.objects.for_center(center)
            self.fields["handoff_queue"].queryset = Queue.objects.for_center(center)

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, campaign: Campaign) -> dict[str, Any]:
        # Computed for the whole page by the view (campaigns.progress): no query per campaign.
        return ProgressSerializer(self.context["progress"][campaign.pk]).data


def campaign_service_kwargs(data: dict[str, Any]) -> dict[str, Any]:
    """validated_data → keyword arguments of create_campaign / update_campaign (only the fields sent)."""
    kwargs = {
        key: data[key]
        for key in (
            "name",
            "virtual_agents",
            "handoff_queue",
            "handoff_queue_threshold",
            "caller_ids",
            "calling_hours",
            "max_attempts",
            "retry_minutes",
            "priority",
        )
        if key in data
    }
    if "calling_hours" in kwargs:
        kwargs["calling_hours"] = [
            {"days": list(item["days"]), "start": item["start"], "end": item["end"]}
            for item in kwargs["calling_hours"]
        ]
    if "retry_minutes" in kwargs:
        kwargs["retry_minutes"] = dict(kwargs["retry_minutes"])
    if "timezone" in data:
        kwargs["timezone_name"] = data["timezone"]
    return kwargs


# --- leads --------------------------------------------------------------------------------------


class LeadSerializer(serializers.ModelSerializer):
    phone_number = serializers.CharField(source="phone", help_text="E.164.")
    active = serializers.BooleanField(source="is_active")
    context = serializers.DictField(
        child=serializers.CharField(), help_text="Sent to the bot as SIP X- headers."
    )
    timezones = serializers.ListField(
        child=serializers.CharField(), help_text="IANA zones the number may be in; empty: the campaign's."
    )
    last_outcome = serializers.ChoiceField(
        choices=AttemptOutcome.choices, allow_blank=True, help_text="Empty before the first attempt ends."
    )

    class Meta:
        model = Lead
        fields = [
            "id",
            "phone_number",
            "name",
            "source",
            "priority",
            "active",
            "context",
            "timezones",
            "status",
            "attempts",
            "next_attempt_at",
            "last_outcome",
            "created",
        ]
        read_only_fields = fields


class LeadPageSerializer(serializers.Serializer):
    """For the schema: one page of `GET /api/v1/campaigns/<id>/leads/`."""

    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last one.")
    results = LeadSerializer(many=True)


class LeadFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=LeadStatus.choices, required=False)
    active = serializers.ChoiceField(choices=["true", "false"], required=False)
    q = serializers.CharField(required=False, max_length=100, help_text="Part of the number or the name.")
    after = serializers.CharField(
        required=False, max_length=100, help_text="The opaque cursor from a page's `next`."
    )
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200, help_text="Default 50.")


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": MAX_CONTEXT_HEADERS,
        "additionalProperties": {
            "type": "string",
            "maxLength": MAX_CONTEXT_VALUE,
            "pattern": "^[^\r\n\x00]*$",
        },
    }
)
class ContextField(serializers.DictField):
    """For the schema: a lead's context (OpenAPI 3.0 cannot say its names' pattern; `lead_rows` checks it)."""


class LeadInSerializer(serializers.Serializer):
    """For the schema: one item of a lead import (checked by `lead_rows`)."""

    phone_number = serializers.CharField(
        max_length=MAX_PHONE_TEXT,
        help_text="E.164, or national in the center's default region. An unusable one is `rejected`.",
    )
    name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    source = serializers.CharField(required=False, allow_blank=True, max_length=150)
    priority = serializers.IntegerField(
        required=False, min_value=1, max_value=1000, help_text="Default 500; lower first."
    )
    active = serializers.BooleanField(required=False, help_text="Default true.")
    context = ContextField(
        required=False,
        help_text=(
            f"Up to {MAX_CONTEXT_HEADERS} SIP headers for the bot: names X-… (a header token, not "
            "X-Voiso-…, each once whatever its case), values text without CR, LF or NUL."
        ),
    )


class LeadImportSerializer(serializers.Serializer):
    """For the schema: a lead import's body, an array of 1 to 10,000 LeadIn (see LeadImportSchema)."""


class IndexIdSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    id = serializers.UUIDField()


class LeadRejectedSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    phone_number = serializers.CharField()
    reason = serializers.ChoiceField(choices=["invalid_number", "dnc", "not_dialable"])


class LeadDuplicateSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    phone_number = serializers.CharField()


class LeadImportResultSerializer(serializers.Serializer):
    created = IndexIdSerializer(many=True)
    rejected = LeadRejectedSerializer(many=True)
    duplicates = LeadDuplicateSerializer(
        many=True, help_text="Already in the campaign, or earlier in this request."
    )


# --- do not call --------------------------------------------------------------------------------


class DoNotCallSerializer(serializers.ModelSerializer):
    phone = serializers.CharField(
        max_length=MAX_PHONE_TEXT, help_text="E.164, or national in the center's default region."
    )
    reason = serializers.CharField(max_length=255, allow_blank=True, default="")
    campaign = serializers.PrimaryKeyRelatedField(
        queryset=Campaign.objects.none(),
        allow_null=True,
        default=None,
        help_text="The campaign whose list this is; null: the center-wide list.",
    )

    class Meta:
        model = DoNotCall
        fields = ["id", "phone", "reason", "campaign", "created"]
        read_only_fields = ["id", "created"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        center: ContactCenter | None = self.context.get("center")
        if center is not None:
            self.fields["campaign"].queryset = Campaign.objects.for_center(center)


class DoNotCallFilterSerializer(serializers.Serializer):
    campaign = serializers.UUIDField(required=False, help_text="Only this campaign's list.")
    q = serializers.CharField(required=False, max_length=100, help_text="Part of the number or the reason.")


class DoNotCallInSerializer(serializers.Serializer):
    """For the schema: one item of a bulk add (checked by `do_not_call_rows`)."""

    phone = serializers.CharField(max_length=MAX_PHONE_TEXT)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=255)
    campaign = serializers.UUIDField(
        required=False, allow_null=True, help_text="Null or absent: center-wide."
    )


class DoNotCallBulkSerializer(serializers.Serializer):
    """For the schema: a bulk add's body, an array of 1 to 10,000 DoNotCallIn (see LeadImportSchema)."""


class DoNotCallRejectedSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    phone = serializers.CharField()
    reason = serializers.ChoiceField(choices=["invalid_number"])


class DoNotCallBulkResultSerializer(serializers.Serializer):
    created = IndexIdSerializer(many=True)
    existing = IndexIdSerializer(many=True, help_text="Already on that list (or earlier in this request).")
    rejected = DoNotCallRejectedSerializer(many=True)


class LeadImportSchema(OpenApiSerializerExtension):
    """The batch bodies as arrays with their bounds: drf-spectacular gives `many=True` no maxItems."""

    target_class = "campaigns.serializers.LeadImportSerializer"
    item: type[serializers.Serializer] = LeadInSerializer

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        return {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_LEADS_PER_REQUEST,
            "items": auto_schema.resolve_serializer(self.item, direction).ref,
        }


class DoNotCallBulkSchema(LeadImportSchema):
    target_class = "campaigns.serializers.DoNotCallBulkSerializer"
    item = DoNotCallInSerializer
