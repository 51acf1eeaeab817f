"""Campaigns, leads and do-not-call entries as the REST API reads and writes them.

Writes go through campaigns.services; these only check shapes. The lead import and the bulk
do-not-call add are checked by hand (`lead_rows`, `do_not_call_rows`): 10,000 items through a
DRF serializer each would cost seconds, and the answer lists problems by index, all or nothing.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

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
from campaigns.services import MAX_LEADS_PER_REQUEST, DoNotCallRow, LeadRow
from routing.models import PhoneNumber, Queue
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter

HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
# A SIP header name (RFC 3261 token) starting X-; ours (X-Voiso-…) cannot be set by a lead.
CONTEXT_HEADER = re.compile(r"X-[A-Za-z0-9!#$%&'*+.^_`|~-]{1,62}")
CONTEXT_HEADER_PATTERN = r"^X-[A-Za-z0-9!#$%&'*+.^_`|~-]{1,62}$"
RESERVED_HEADER_PREFIX = "x-voiso-"
MAX_CONTEXT_HEADERS = 20
MAX_CONTEXT_VALUE = 1024
MAX_PHONE_TEXT = 64
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
    leads = LeadCountsSerializer(help_text="Leads by status.")
    total = serializers.IntegerField(help_text="Every lead of the campaign.")
    attempts_today = serializers.IntegerField(help_text="Calls placed since midnight in the center's zone.")
    connects = serializers.IntegerField(help_text="Calls a bot answered.")
    handoffs = serializers.IntegerField(help_text="Calls handed off to a person.")


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


class ShapeErrors(Exception):
    """Items of a batch that are not the declared shape: {index: {field: [messages]}}; nothing is stored."""

    def __init__(
        self, problems: dict[int, dict[str, list[str]]] | None = None, *, total: int = 0, message: str = ""
    ) -> None:
        super().__init__(message)
        self.problems = problems or {}
        self.total = total
        self.message = message


def _batch(data: object, *, what: str) -> list[Any]:
    if not isinstance(data, list):
        raise ShapeErrors(message=f"Send a JSON array of {what}.")
    if not data:
        raise ShapeErrors(message=f"Send at least one {what[:-1]}.")
    if len(data) > MAX_LEADS_PER_REQUEST:
        raise ShapeErrors(message=f"At most {MAX_LEADS_PER_REQUEST} {what} per request.")
    return data


def _text(
    item: dict[str, Any], name: str, errors: dict[str, list[str]], *, limit: int, required: bool = False
) -> str:
    if name not in item:
        if required:
            errors[name] = ["This field is required."]
        return ""
    value = item[name]
    if not isinstance(value, str):
        errors[name] = ["Not a valid string."]
        return ""
    if len(value) > limit:
        errors[name] = [f"Ensure this field has no more than {limit} characters."]
        return ""
    if "\x00" in value:  # PostgreSQL's text cannot hold NUL
        errors[name] = ["Null characters are not allowed."]
        return ""
    return value


def _context(value: object, errors: dict[str, list[str]]) -> dict[str, str]:
    if not isinstance(value, dict):
        errors["context"] = ["An object of X- header names to text values."]
        return {}
    if len(value) > MAX_CONTEXT_HEADERS:
        errors["context"] = [f"At most {MAX_CONTEXT_HEADERS} headers."]
        return {}
    problems = []
    seen: set[str] = set()
    for name, text in value.items():
        if not CONTEXT_HEADER.fullmatch(name):
            problems.append(f"{name[:70]!r} is not a header name starting X-.")
        elif name.lower().startswith(RESERVED_HEADER_PREFIX):
            problems.append(f"{name} is reserved: X-Voiso- headers are set by the dialer.")
        elif name.lower() in seen:
            problems.append(f"{name} is given twice (header names ignore case).")
        elif not isinstance(text, str) or len(text) > MAX_CONTEXT_VALUE:
            problems.append(f"{name}: text of at most {MAX_CONTEXT_VALUE} characters.")
        elif "\r" in text or "\n" in text or "\x00" in text:
            problems.append(f"{name}: a header value cannot contain CR, LF or NUL.")
        seen.add(name.lower())
    if problems:
        errors["context"] = problems
    return value  # type: ignore[return-value]


def lead_rows(data: object) -> list[LeadRow]:
    """A lead import's body as rows; raises ShapeErrors (every bad item, by index) on any shape problem."""
    items = _batch(data, what="leads")
    rows: list[LeadRow] = []
    problems: dict[int, dict[str, list[str]]] = {}
    for index, item in enumerate(items):
        errors: dict[str, list[str]] = {}
        if not isinstance(item, dict):
            problems[index] = {"non_field_errors": ["Each lead is an object."]}
            continue
        phone = _text(item, "phone_number", errors, limit=MAX_PHONE_TEXT, required=True)
        name = _text(item, "name", errors, limit=150)
        source = _text(item, "source", errors, limit=150)
        priority = item.get("priority", 500)
        if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 1000:
            errors["priority"] = ["A whole number from 1 to 1000."]
        active = item.get("active", True)
        if not isinstance(active, bool):
            errors["active"] = ["Must be true or false."]
        context = _context(item["context"], errors) if "context" in item else {}
        if errors:
            problems[index] = errors
        elif not problems:
            rows.append(LeadRow(phone, name, source, priority, active, dict(context)))
    if problems:
        raise ShapeErrors(problems, total=len(items))
    return rows


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


def do_not_call_rows(data: object, *, campaigns: dict[str, Campaign]) -> list[DoNotCallRow]:
    """A bulk add's body as rows; raises ShapeErrors by index. `campaigns`: the center's, by id text."""
    items = _batch(data, what="numbers")
    rows: list[DoNotCallRow] = []
    problems: dict[int, dict[str, list[str]]] = {}
    for index, item in enumerate(items):
        errors: dict[str, list[str]] = {}
        if not isinstance(item, dict):
            problems[index] = {"non_field_errors": ["Each number is an object."]}
            continue
        phone = _text(item, "phone", errors, limit=MAX_PHONE_TEXT, required=True)
        reason = _text(item, "reason", errors, limit=255)
        campaign = None
        given = item.get("campaign")
        if given is not None:
            campaign = campaigns.get(given.lower()) if isinstance(given, str) else None
            if campaign is None:
                errors["campaign"] = ["No such campaign in this contact center."]
        if errors:
            problems[index] = errors
        elif not problems:
            rows.append(DoNotCallRow(phone=phone, reason=reason, campaign=campaign))
    if problems:
        raise ShapeErrors(problems, total=len(items))
    return rows


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
