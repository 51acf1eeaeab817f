"""The reports' answers, field by field, for the OpenAPI schema and the JSON (no "any object")."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from rest_framework import serializers

from reporting.models import Direction
from reporting.reports.filters import INTERVAL_CHOICES, MAX_DAYS, MAX_IDS


class ReportQuerySerializer(serializers.Serializer):
    """The query string, for the schema. Validation is reporting.reports.filters.ReportFilterForm's."""

    start = serializers.DateField(
        required=False, help_text="First day, in `tz`. Default: 6 days before `end`."
    )
    end = serializers.DateField(required=False, help_text="Last day, inclusive, in `tz`. Default: today.")
    tz = serializers.CharField(required=False, help_text="IANA time zone. Default: the contact center's.")
    interval = serializers.ChoiceField(
        choices=[value for value, _ in INTERVAL_CHOICES],
        required=False,
        help_text="Grouping of `series` (default `day`). The longest range, in days: "
        + ", ".join(f"{interval} {days}" for interval, days in MAX_DAYS.items())
        + ".",
    )
    virtual_agent = serializers.ListField(
        child=serializers.UUIDField(), required=False, max_length=MAX_IDS, help_text="Repeatable."
    )
    queue = serializers.ListField(
        child=serializers.UUIDField(), required=False, max_length=MAX_IDS, help_text="Repeatable."
    )
    campaign = serializers.ListField(
        child=serializers.UUIDField(), required=False, max_length=MAX_IDS, help_text="Repeatable."
    )
    direction = serializers.ChoiceField(choices=Direction.choices, required=False)


class VirtualAgentQuerySerializer(ReportQuerySerializer):
    context_key = serializers.CharField(
        required=False,
        max_length=64,
        help_text="The handoff context header to break handoffs down by (X-Reason).",
    )


class LocalDateTimeField(serializers.DateTimeField):
    """ISO 8601 with the report zone's offset (DRF would convert it to the server's zone)."""

    def to_representation(self, value: Any) -> str:
        return value.isoformat()


def _count(text: str) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=0, help_text=text)


def _rate(text: str) -> serializers.FloatField:
    return serializers.FloatField(
        allow_null=True, min_value=0, max_value=1, help_text=f"{text} Null when ÷ 0."
    )


def _seconds(text: str) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=f"{text} Seconds; null without calls.")


class _Envelope(serializers.Serializer):
    tz = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField(help_text="Inclusive.")
    interval = serializers.ChoiceField(choices=[value for value, _ in INTERVAL_CHOICES])


# --- virtual agents ---------------------------------------------------------------------------


class VirtualAgentCallFiguresSerializer(serializers.Serializer):
    calls = _count("Calls that reached a bot, outcome decided: contained + handed_off + abandoned_in_bot.")
    contained = _count("Ended in the bot without a handoff.")
    handed_off = _count("At least one handoff (REFER) requested.")
    abandoned_in_bot = _count("The caller hung up soon after the bot answered, no handoff.")
    in_progress = _count("With a bot now, outcome not decided yet (not in `calls`).")
    containment_rate = _rate("contained ÷ calls.")
    handoff_rate = _rate("handed_off ÷ calls.")
    abandon_rate = _rate("abandoned_in_bot ÷ calls.")
    bot_time_mean = _seconds("Time with the bot, mean.")
    bot_time_p50 = _seconds("Time with the bot, median.")
    bot_time_p90 = _seconds("Time with the bot, 90th percentile.")
    time_to_handoff_mean = _seconds("Bot answer to first REFER, mean.")
    time_to_handoff_p50 = _seconds("Bot answer to first REFER, median.")
    time_to_handoff_p90 = _seconds("Bot answer to first REFER, 90th percentile.")


class HandoffFiguresSerializer(serializers.Serializer):
    handoffs_requested = _count("REFERs of these calls.")
    handoffs_completed = _count("REFERs whose final NOTIFY was 2xx.")
    handoffs_failed = _count("REFERs that failed.")
    handoff_success_rate = _rate("handoffs_completed ÷ handoffs_requested.")


class VirtualAgentFiguresSerializer(VirtualAgentCallFiguresSerializer, HandoffFiguresSerializer):
    pass


class HandoffsByTargetSerializer(serializers.Serializer):
    queue = _count("To a queue.")
    user = _count("To a person's extension.")
    virtual_agent = _count("To another bot.")
    external = _count("To an external number.")
    unresolved = _count("The Refer-To named nothing of the center.")


class HandoffFailureSerializer(serializers.Serializer):
    reason = serializers.CharField()
    sip_status = serializers.IntegerField(allow_null=True)
    count = _count("Failed handoffs with this reason and status.")


class ContextValueSerializer(serializers.Serializer):
    value = serializers.CharField(help_text="Empty: the bot passed no such header.")
    count = _count("Handoffs.")


class HandoffsByContextSerializer(serializers.Serializer):
    key = serializers.CharField()
    values = ContextValueSerializer(many=True)


class VirtualAgentTotalsSerializer(VirtualAgentFiguresSerializer):
    handoffs_by_target = HandoffsByTargetSerializer()
    failures = HandoffFailureSerializer(many=True, help_text="By reason and SIP status, most frequent first.")
    handoffs_by_context = HandoffsByContextSerializer()


class VirtualAgentRowSerializer(VirtualAgentFiguresSerializer):
    virtual_agent = serializers.UUIDField(allow_null=True, help_text="Null: a bot since deleted.")
    name = serializers.CharField()


class VirtualAgentPointSerializer(VirtualAgentFiguresSerializer):
    bucket = LocalDateTimeField(help_text="The bucket's start, with the report zone's offset.")


class VirtualAgentReportSerializer(_Envelope):
    totals = VirtualAgentTotalsSerializer()
    rows = VirtualAgentRowSerializer(many=True)
    series = VirtualAgentPointSerializer(many=True, help_text="Every bucket of the range; [] for `none`.")


# --- queues -----------------------------------------------------------------------------------


class QueueFiguresSerializer(serializers.Serializer):
    offered = _count("Calls that entered the queue: answered + abandoned + waiting.")
    answered = _count("An agent connected after the entry.")
    abandoned = _count("Ended without an agent.")
    waiting = _count("In the queue now.")
    answered_within_service_level = _count("Answered within the queue's service_level_seconds.")
    answer_rate = _rate("answered ÷ offered.")
    abandon_rate = _rate("abandoned ÷ offered.")
    service_level = _rate("answered_within_service_level ÷ offered.")
    wait_mean = _seconds("Wait of answered calls, mean.")
    wait_p50 = _seconds("Wait of answered calls, median.")
    wait_p90 = _seconds("Wait of answered calls, 90th percentile.")
    handle_time_mean = _seconds("The human leg of answered calls, mean.")
    handle_time_p50 = _seconds("The human leg of answered calls, median.")
    handle_time_p90 = _seconds("The human leg of answered calls, 90th percentile.")


class QueueRowSerializer(QueueFiguresSerializer):
    queue = serializers.UUIDField(allow_null=True, help_text="Null: a queue since deleted.")
    name = serializers.CharField()
    extension = serializers.CharField()
    service_level_seconds = serializers.IntegerField()


class QueuePointSerializer(QueueFiguresSerializer):
    bucket = LocalDateTimeField(help_text="The bucket's start, with the report zone's offset.")


class QueueReportSerializer(_Envelope):
    totals = QueueFiguresSerializer()
    rows = QueueRowSerializer(many=True)
    series = QueuePointSerializer(many=True, help_text="Every bucket of the range; [] for `none`.")


# --- campaigns --------------------------------------------------------------------------------


class CampaignFiguresSerializer(serializers.Serializer):
    attempts = _count("Dialer calls: completed + busy + no_answer + machine + failed + in_progress.")
    leads = _count("Distinct leads dialled.")
    connects = _count("A person answered: a bot took the call, or the switch dropped it.")
    completed = _count("A bot answered.")
    busy = _count("Busy.")
    no_answer = _count("No answer.")
    machine = _count("An answering machine.")
    failed = _count("Ended otherwise (failed, rejected, invalid number, dropped, …).")
    in_progress = _count("Ringing now.")
    dropped = _count("A person answered and no bot took the call within 2 s (end_reason `dropped`).")
    handoffs = _count("Calls a bot handed off.")
    connect_rate = _rate("connects ÷ attempts.")
    attempts_per_lead = serializers.FloatField(allow_null=True, help_text="attempts ÷ leads. Null when ÷ 0.")
    drop_rate = _rate("dropped ÷ connects.")


class CampaignRowSerializer(CampaignFiguresSerializer):
    campaign = serializers.UUIDField(
        allow_null=True, help_text="Null: no campaign of the center has this id."
    )
    campaign_ref = serializers.CharField(help_text="The campaign id the calls carried.")
    name = serializers.CharField()


class CampaignPointSerializer(CampaignFiguresSerializer):
    bucket = LocalDateTimeField(help_text="The bucket's start, with the report zone's offset.")


class CampaignReportSerializer(_Envelope):
    totals = CampaignFiguresSerializer()
    rows = CampaignRowSerializer(many=True)
    series = CampaignPointSerializer(many=True, help_text="Every bucket of the range; [] for `none`.")


# --- the answer without DRF's per-field cost ----------------------------------------------------

Plan = Callable[[Any], Any]


def _scalar(field: serializers.Field) -> Plan:
    if isinstance(field, serializers.IntegerField):
        return int
    if isinstance(field, serializers.FloatField):
        return float
    if isinstance(field, (serializers.DateField, serializers.DateTimeField)):  # LocalDateTimeField too
        return lambda value: value.isoformat()
    if isinstance(field, serializers.ChoiceField):
        return lambda value: value
    if isinstance(field, (serializers.CharField, serializers.UUIDField)):
        return str
    raise TypeError(f"no plain form for {type(field).__name__}")


def _plan(serializer: serializers.Serializer) -> Plan:
    steps: list[tuple[str, Plan]] = []
    for name, field in serializer.fields.items():
        if isinstance(field, serializers.ListSerializer):
            item = _plan(field.child)
            steps.append((name, lambda values, item=item: [item(value) for value in values]))
        elif isinstance(field, serializers.Serializer):
            steps.append((name, _plan(field)))
        else:
            steps.append((name, _scalar(field)))
    return lambda data: {
        name: (None if (value := data[name]) is None else step(value)) for name, step in steps
    }


@functools.cache
def plain(serializer_class: type[serializers.Serializer]) -> Plan:
    """What `serializer_class(report).data` gives (its declared fields only, the same types), as one
    function built once: DRF's field-by-field machinery cost ~0.2-1 s for a month of 15-minute
    points (bench/README.md). tests/reporting/test_reports_api.py compares the two."""
    return _plan(serializer_class())
