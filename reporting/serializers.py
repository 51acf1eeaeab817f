"""Call records as the calls API shows them (read-only)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from reporting.forms import ATTEMPT_CHOICES, HANDOFF_CHOICES, OUTCOME_CHOICES, QUEUE_RESULT_CHOICES
from reporting.models import CallEvent, CallRecord, Direction, Handoff, ProviderCallReport
from reporting.queries import MAX_CURSOR_LENGTH, MAX_PAGE_SIZE, PAGE_SIZE


class CallFilterQuerySerializer(serializers.Serializer):
    """The query string of `GET /api/v1/calls/`, for the schema. Validation is reporting.forms'."""

    date_from = serializers.DateField(required=False, help_text="First day (in `tz`).")
    date_to = serializers.DateField(required=False, help_text="Last day, inclusive.")
    tz = serializers.CharField(
        required=False, help_text="IANA time zone of the dates. Default: the center's."
    )
    started_from = serializers.DateTimeField(
        required=False, help_text="Calls started at or after this moment (ISO 8601 with an offset)."
    )
    started_before = serializers.DateTimeField(required=False, help_text="Calls started before this moment.")
    direction = serializers.ChoiceField(choices=Direction.choices, required=False)
    virtual_agent = serializers.ListField(
        child=serializers.UUIDField(), required=False, help_text="Repeatable."
    )
    queue = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        help_text="Repeatable: the queue the call entered last.",
    )
    campaign = serializers.ListField(child=serializers.UUIDField(), required=False, help_text="Repeatable.")
    handed_off = serializers.ChoiceField(choices=["true", "false"], required=False)
    outcome = serializers.ChoiceField(
        choices=[value for value, _ in OUTCOME_CHOICES if value], required=False, help_text="The bot outcome."
    )
    queue_result = serializers.ChoiceField(
        choices=[value for value, _ in QUEUE_RESULT_CHOICES if value], required=False
    )
    handoff = serializers.ChoiceField(
        choices=[value for value, _ in HANDOFF_CHOICES if value],
        required=False,
        help_text="Calls with at least one handoff in this state.",
    )
    attempt = serializers.ChoiceField(
        choices=[value for value, _ in ATTEMPT_CHOICES if value],
        required=False,
        help_text="Dialer calls by result.",
    )
    number = serializers.CharField(required=False, help_text="Part of the caller's or the called number.")
    after = serializers.CharField(
        required=False, max_length=MAX_CURSOR_LENGTH, help_text="The opaque cursor from a page's `next`."
    )
    page_size = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_PAGE_SIZE, help_text=f"Default {PAGE_SIZE}."
    )


class NamedRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class AnsweredBySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField(source="user.display_name")


class CallRecordSerializer(serializers.ModelSerializer):
    virtual_agent = NamedRefSerializer(allow_null=True)
    queue = NamedRefSerializer(allow_null=True)
    answered_by = AnsweredBySerializer(allow_null=True)
    url = serializers.HyperlinkedIdentityField(
        view_name="call-detail", lookup_field="call_id", lookup_url_kwarg="call_id"
    )

    class Meta:
        model = CallRecord
        fields = [
            "call_id",
            "url",
            "status",
            "direction",
            "from_number",
            "to_number",
            "virtual_agent",
            "queue",
            "answered_by",
            "answered_extension",
            "campaign_ref",
            "lead_ref",
            "provider_call_id",
            "started_at",
            "bot_connected_at",
            "handoff_requested_at",
            "agent_connected_at",
            "ended_at",
            "total_seconds",
            "bot_seconds",
            "queue_wait_seconds",
            "human_seconds",
            "end_reason",
            "hangup_by",
            "recording_url",
            "bot_outcome",
            "handoff_count",
            "event_count",
        ]
        read_only_fields = fields


@extend_schema_serializer(many=False)  # the page is one object, not an array of pages
class CallPageSerializer(serializers.Serializer):
    """For the schema: one page of `GET /api/v1/calls/`."""

    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last one.")
    results = CallRecordSerializer(many=True)


class HandoffSerializer(serializers.ModelSerializer):
    virtual_agent = serializers.UUIDField(source="virtual_agent_id", allow_null=True)

    class Meta:
        model = Handoff
        fields = [
            "sequence",
            "state",
            "virtual_agent",
            "refer_to",
            "referred_by",
            "context",
            "target_type",
            "target_ref",
            "target_extension",
            "target_name",
            "target_error",
            "requested_at",
            "accepted_at",
            "completed_at",
            "failed_at",
            "sip_status",
            "failure_reason",
            "answered_by",
        ]
        read_only_fields = fields


class CallEventSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="event_id", help_text="The SIP layer's event id.")
    # A plain string in the schema: the event types are already an enum of the events API's
    # request, and a second "type" enum there would give both an unstable generated name.
    type = serializers.CharField(help_text="The event type, as posted to /api/v1/telephony/events.")

    class Meta:
        model = CallEvent
        fields = ["id", "type", "occurred_at", "received_at", "data"]
        read_only_fields = fields


class ProviderReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProviderCallReport
        fields = ["provider", "provider_call_id", "summary", "transcript", "recording_url", "ended_reason"]
        read_only_fields = fields


class CallDetailExtrasSerializer(serializers.Serializer):
    """What a call's own page adds to its list row."""

    handoffs = HandoffSerializer(many=True)
    # Set by the view: events have no foreign key to the record (they may arrive before it).
    events = CallEventSerializer(many=True, source="timeline")
    provider_reports = ProviderReportSerializer(many=True)


class CallDetailSerializer(CallRecordSerializer):
    handoffs = HandoffSerializer(many=True)
    events = CallEventSerializer(many=True, source="timeline")
    provider_reports = ProviderReportSerializer(many=True)

    class Meta(CallRecordSerializer.Meta):
        fields = [*CallRecordSerializer.Meta.fields, "handoffs", "events", "provider_reports"]
        read_only_fields = fields
