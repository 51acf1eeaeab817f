"""What happened on calls: raw events as received, and the records assembled from them.

`CallEvent` is append-only and idempotent by (contact center, event id). `CallRecord` and
`Handoff` are derived: ingestion folds *all* of a call's stored events, in a fixed order,
into them every time new events for the call arrive, under a row lock on the record. So the
result depends only on the set of events, never on the order or the number of times they
arrived. `ProviderCallReport` holds what a bot provider's post-call webhook told us
(transcript, summary, recording), matched to a record when one exists.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from routing.models import Flow, PhoneNumber, Queue
from virtual_agents.models import Provider, ProviderIntegration, VirtualAgent
from voiso_byob.models import ContactCenter, Membership

# Identifiers come from the SIP layer and the providers; long enough for a SIP Call-ID.
CALL_ID_MAX = 200
EVENT_ID_MAX = 200


class EventType(models.TextChoices):
    CALL_STARTED = "call.started", "Call started"
    BOT_CONNECTED = "bot.connected", "Bot connected"
    HANDOFF_REQUESTED = "handoff.requested", "Handoff requested"
    HANDOFF_ACCEPTED = "handoff.accepted", "Handoff accepted"
    HANDOFF_COMPLETED = "handoff.completed", "Handoff completed"
    HANDOFF_FAILED = "handoff.failed", "Handoff failed"
    QUEUE_ENTERED = "queue.entered", "Queue entered"
    AGENT_CONNECTED = "agent.connected", "Agent connected"
    CALL_ENDED = "call.ended", "Call ended"
    RECORDING_READY = "recording.ready", "Recording ready"


class CallEventQuerySet(models.QuerySet["CallEvent"]):
    def for_center(self, center: ContactCenter) -> CallEventQuerySet:
        return self.filter(contact_center=center)

    def for_call(self, center: ContactCenter, call_id: str) -> CallEventQuerySet:
        return self.filter(contact_center=center, call_id=call_id).order_by("occurred_at", "id")


class CallEvent(models.Model):
    """One event as the SIP layer sent it. Never updated, never deleted by the application."""

    id = models.BigAutoField(primary_key=True)
    # No index of its own: the (contact center, …) indexes below serve every lookup by center, and
    # each index is written on every one of the table's many inserts.
    contact_center = models.ForeignKey(
        ContactCenter, on_delete=models.CASCADE, related_name="call_events", db_index=False
    )
    event_id = models.CharField(max_length=EVENT_ID_MAX)
    type = models.CharField(max_length=32, choices=EventType.choices)
    call_id = models.CharField(max_length=CALL_ID_MAX)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    data = models.JSONField(default=dict, blank=True)
    # What the names in `data` resolved to when the event was stored (virtual agent, Refer-To
    # target, answering agent, dialled number): records are folded from these, so a call's
    # history does not change when configuration changes later (reporting.ingest).
    refs = models.JSONField(default=dict, blank=True)

    objects = CallEventQuerySet.as_manager()

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact_center", "event_id"], name="reporting_callevent_unique_event_id"
            ),
            models.CheckConstraint(
                condition=Q(type__in=EventType.values), name="reporting_callevent_type_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["contact_center", "call_id"], name="reporting_event_call_idx"),
            # The Live page's catch-up: a center's events received since a moment.
            models.Index(fields=["contact_center", "received_at"], name="reporting_event_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.call_id}"


class Direction(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"


class CallStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    ENDED = "ended", "Ended"


class BotOutcome(models.TextChoices):
    """The design's one cohort with mutually exclusive outcomes (calls that reached a bot).

    Blank: the call never reached a bot, or it is still with the bot and nothing is decided.
    """

    NONE = "", "—"
    CONTAINED = "contained", "Contained"
    HANDED_OFF = "handed_off", "Handed off"
    ABANDONED_IN_BOT = "abandoned_in_bot", "Abandoned in bot"


class HangupBy(models.TextChoices):
    NONE = "", "—"
    CALLER = "caller", "Caller"
    BOT = "bot", "Bot"
    AGENT = "agent", "Agent"
    SYSTEM = "system", "System"


class CallRecordQuerySet(models.QuerySet["CallRecord"]):
    def for_center(self, center: ContactCenter) -> CallRecordQuerySet:
        return self.filter(contact_center=center)

    def with_details(self) -> CallRecordQuerySet:
        return self.select_related(
            "virtual_agent", "queue", "flow", "phone_number", "answered_by__user"
        ).prefetch_related("handoffs")


class CallRecord(models.Model):
    """One per call, folded from its events (see the module docstring)."""

    id = models.BigAutoField(primary_key=True)
    # No index of its own: the (contact center, …) indexes below serve every lookup by center.
    contact_center = models.ForeignKey(
        ContactCenter, on_delete=models.CASCADE, related_name="call_records", db_index=False
    )
    call_id = models.CharField(max_length=CALL_ID_MAX)
    status = models.CharField(max_length=16, choices=CallStatus.choices, default=CallStatus.IN_PROGRESS)
    # Blank until call.started arrives (events may come in any order).
    direction = models.CharField(max_length=8, choices=Direction.choices, blank=True)
    from_number = models.CharField(max_length=64, blank=True)
    to_number = models.CharField(max_length=64, blank=True)
    # Inbound: the dialled number and the flow it ran (SET_NULL: a record outlives configuration).
    phone_number = models.ForeignKey(
        PhoneNumber, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    flow = models.ForeignKey(Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    virtual_agent = models.ForeignKey(
        VirtualAgent, null=True, blank=True, on_delete=models.SET_NULL, related_name="call_records"
    )
    # The bot the call is on now (set by bot.connected, cleared by the call's end or a completed
    # handoff elsewhere): routing's active-call counters move when it changes.
    active_virtual_agent = models.ForeignKey(
        VirtualAgent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The queue the call last entered: a queue.entered (a queue the flow dialled) or a handoff to a queue.
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    answered_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    answered_extension = models.CharField(max_length=32, blank=True)
    # Dialer references as the events carry them; the campaigns issue links them to its models.
    campaign_ref = models.CharField(max_length=64, blank=True)
    lead_ref = models.CharField(max_length=64, blank=True)
    # The bot provider's id for this call, when bot.connected carried it (matches post-call reports).
    provider_call_id = models.CharField(max_length=200, blank=True)

    started_at = models.DateTimeField(null=True, blank=True)
    bot_connected_at = models.DateTimeField(null=True, blank=True)
    handoff_requested_at = models.DateTimeField(null=True, blank=True)  # the first REFER
    agent_connected_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Seconds; null when the bounding events are missing.
    total_seconds = models.FloatField(null=True, blank=True)
    bot_seconds = models.FloatField(null=True, blank=True)
    queue_wait_seconds = models.FloatField(null=True, blank=True)
    human_seconds = models.FloatField(null=True, blank=True)
    # The last entry into a queue (the start of queue_wait_seconds) and the agent.connected that
    # ended that wait: the reports' offered / answered / abandoned (reporting.reports.queues).
    queue_entered_at = models.DateTimeField(null=True, blank=True)
    queue_answered_at = models.DateTimeField(null=True, blank=True)

    end_reason = models.CharField(max_length=64, blank=True)
    hangup_by = models.CharField(max_length=8, choices=HangupBy.choices, blank=True)
    recording_url = models.URLField(max_length=2000, blank=True)
    bot_outcome = models.CharField(max_length=16, choices=BotOutcome.choices, blank=True)
    handoff_count = models.PositiveSmallIntegerField(default=0)
    event_count = models.PositiveIntegerField(default=0)
    last_event_at = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(default=timezone.now)

    objects = CallRecordQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact_center", "call_id"], name="reporting_callrecord_unique_call"
            ),
            models.CheckConstraint(
                condition=Q(status__in=CallStatus.values), name="reporting_callrecord_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(direction__in=[*Direction.values, ""]),
                name="reporting_callrecord_direction_valid",
            ),
            models.CheckConstraint(
                condition=Q(bot_outcome__in=BotOutcome.values), name="reporting_callrecord_outcome_valid"
            ),
            models.CheckConstraint(
                condition=Q(hangup_by__in=HangupBy.values), name="reporting_callrecord_hangup_by_valid"
            ),
        ]
        indexes = [
            # The calls browser's default order and keyset pagination.
            models.Index(
                fields=["contact_center", "-started_at", "-id"], name="reporting_record_started_idx"
            ),
            models.Index(
                fields=["contact_center", "virtual_agent", "status"], name="reporting_record_bot_idx"
            ),
            # Callers waiting in a queue now (reporting.queries.queue_waiting: the dialer's pacing).
            models.Index(
                fields=["queue"],
                condition=Q(status="in_progress", agent_connected_at__isnull=True, queue__isnull=False),
                name="reporting_record_waiting_idx",
            ),
            # The campaigns report's distinct leads (reporting.reports.from_rollups.campaign_report:
            # a distinct count the rollups cannot hold), read from this index alone.
            models.Index(
                fields=[
                    "contact_center",
                    "started_at",
                    "campaign_ref",
                    "lead_ref",
                    "virtual_agent",
                    "queue",
                    "direction",
                ],
                condition=~Q(campaign_ref=""),
                name="reporting_record_dialled_idx",
            ),
            # A post-call webhook without our X-Voiso-Call-Id is matched by the provider's call id.
            models.Index(
                fields=["contact_center", "provider_call_id"],
                condition=~Q(provider_call_id=""),
                name="reporting_record_provider_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.call_id


class HandoffState(models.TextChoices):
    REQUESTED = "requested", "Requested"
    ACCEPTED = "accepted", "Accepted"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class TargetType(models.TextChoices):
    NONE = "", "Unresolved"
    QUEUE = "queue", "Queue"
    USER = "user", "User"
    VIRTUAL_AGENT = "virtual_agent", "Virtual agent"
    EXTERNAL = "external", "External number"


class HandoffQuerySet(models.QuerySet["Handoff"]):
    def for_center(self, center: ContactCenter) -> HandoffQuerySet:
        return self.filter(contact_center=center)


class Handoff(models.Model):
    """One per REFER a bot sent, numbered within its call in the order they happened."""

    id = models.BigAutoField(primary_key=True)
    # No indexes of their own: (contact center, requested at) and (call record, sequence) lead with them.
    contact_center = models.ForeignKey(
        ContactCenter, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    call_record = models.ForeignKey(
        CallRecord, on_delete=models.CASCADE, related_name="handoffs", db_index=False
    )
    sequence = models.PositiveSmallIntegerField()
    virtual_agent = models.ForeignKey(
        VirtualAgent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    refer_to = models.CharField(max_length=2048, blank=True)  # as received
    referred_by = models.CharField(max_length=2048, blank=True)
    context = models.JSONField(default=dict, blank=True)  # the X-headers the bot passed
    target_type = models.CharField(max_length=16, choices=TargetType.choices, blank=True)
    # The queue / membership / virtual agent id, or the E.164 number for an external target.
    target_ref = models.CharField(max_length=64, blank=True)
    target_extension = models.CharField(max_length=32, blank=True)
    target_name = models.CharField(max_length=200, blank=True)
    # Why the Refer-To did not resolve (the refer API's error code), when it did not.
    target_error = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=16, choices=HandoffState.choices, default=HandoffState.REQUESTED)
    requested_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    sip_status = models.PositiveSmallIntegerField(null=True, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    answered_by = models.CharField(max_length=64, blank=True)

    objects = HandoffQuerySet.as_manager()

    class Meta:
        ordering = ["call_record", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["call_record", "sequence"], name="reporting_handoff_unique_sequence"
            ),
            models.CheckConstraint(
                condition=Q(state__in=HandoffState.values), name="reporting_handoff_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(target_type__in=TargetType.values), name="reporting_handoff_target_type_valid"
            ),
        ]
        indexes = [models.Index(fields=["contact_center", "requested_at"], name="reporting_handoff_time_idx")]

    def __str__(self) -> str:
        return f"{self.call_record_id} #{self.sequence}"


class ProviderCallReportQuerySet(models.QuerySet["ProviderCallReport"]):
    def for_center(self, center: ContactCenter) -> ProviderCallReportQuerySet:
        return self.filter(contact_center=center)

    def unmatched(self) -> ProviderCallReportQuerySet:
        return self.filter(call_record__isnull=True)


class ProviderCallReport(models.Model):
    """A bot provider's post-call report, kept even before (or without) its call record."""

    id = models.BigAutoField(primary_key=True)
    contact_center = models.ForeignKey(ContactCenter, on_delete=models.CASCADE, related_name="+")
    integration = models.ForeignKey(
        ProviderIntegration, on_delete=models.CASCADE, related_name="call_reports"
    )
    provider = models.CharField(max_length=16, choices=Provider.choices)
    # The provider's own id for the call: a re-sent report updates, never duplicates.
    provider_call_id = models.CharField(max_length=200)
    # Our call id when the provider echoed the X-Voiso-Call-Id header we sent on the INVITE.
    call_id = models.CharField(max_length=CALL_ID_MAX, blank=True)
    call_record = models.ForeignKey(
        CallRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="provider_reports"
    )
    transcript = models.JSONField(default=list, blank=True)  # [{"role", "text", "seconds"?}]
    summary = models.TextField(blank=True)
    recording_url = models.URLField(max_length=2000, blank=True)
    ended_reason = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    objects = ProviderCallReportQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "provider_call_id"], name="reporting_report_unique_provider_call"
            ),
        ]
        indexes = [
            models.Index(fields=["contact_center", "call_id"], name="reporting_report_call_idx"),
            # attach_pending_reports: unmatched reports of a center by our call id / the provider's.
            models.Index(
                fields=["contact_center", "call_id"],
                condition=Q(call_record__isnull=True),
                name="reporting_report_wait_call_idx",
            ),
            models.Index(
                fields=["contact_center", "provider_call_id"],
                condition=Q(call_record__isnull=True),
                name="reporting_report_wait_prov_idx",
            ),
            # The Live page's catch-up: a center's matched reports changed since a moment.
            models.Index(
                fields=["contact_center", "updated", "id"],
                condition=Q(call_record__isnull=False),
                name="reporting_report_updated_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_call_id}"


# --- 15-minute rollups of the records and handoffs (reporting.rollups) ----------------------

# The rollups' stand-in for "no bot" / "no queue" in their keys: a NULL would never conflict in
# the upsert's unique key (NULLs are distinct), so each fold would add a row instead of adding up.
NO_ID = uuid.UUID(int=0)

CALL_ROLLUP_COUNTS = (
    # virtual agents (reporting.reports.virtual_agents)
    "calls", "contained", "handed_off", "abandoned_in_bot", "in_bot",
    "bot_time_n", "bot_time_us", "time_to_handoff_n", "time_to_handoff_us",
    # the records' handoffs, all and by final state (the series' handoff figures per bucket)
    "handoffs", "handoffs_completed", "handoffs_failed",
    # queues (reporting.reports.queues)
    "offered", "answered", "abandoned", "waiting", "answered_within_service_level",
    "wait_n", "wait_us", "handle_time_n", "handle_time_us",
    # campaigns (reporting.reports.campaigns)
    "attempts", "connects", "completed", "busy", "no_answer", "machine", "failed", "ringing",
    "dropped", "attempts_handed_off",
)  # fmt: skip
# Durations kept as one count per bin (reporting.reports.durations.EDGES): `<prefix>_h00` …
CALL_ROLLUP_HISTOGRAMS = ("bot_time", "time_to_handoff", "wait", "handle_time")


class RollupKey(models.Model):
    """What both rollups are keyed by: a call's 15-minute UTC bucket (of its start) and its
    report dimensions, as reporting.reports.filters filters and groups them."""

    id = models.BigAutoField(primary_key=True)
    # No index of its own: the unique key leads with it.
    contact_center = models.ForeignKey(
        ContactCenter, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    bucket = models.DateTimeField()
    # Ids, not foreign keys (NO_ID for none): a deleted bot or queue leaves its rows, which the
    # reports read as "deleted", as they read its records.
    virtual_agent = models.UUIDField(default=NO_ID)
    queue = models.UUIDField(default=NO_ID)
    campaign_ref = models.CharField(max_length=64, blank=True)
    direction = models.CharField(max_length=8, blank=True)

    KEY = ("contact_center", "bucket", "virtual_agent", "queue", "campaign_ref", "direction")

    class Meta:
        abstract = True


class CallRollup(RollupKey):
    """Counts, whole-microsecond sums and duration histograms of the records of one key."""

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=RollupKey.KEY, name="reporting_callrollup_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M} {self.virtual_agent}"


class HandoffRollup(RollupKey):
    """Handoffs of the calls of one key, by target type, state, SIP status (0: none), failure
    reason and the X-Reason value the bot passed ("" when none)."""

    target_type = models.CharField(max_length=16, blank=True)
    state = models.CharField(max_length=16)
    sip_status = models.PositiveSmallIntegerField(default=0)
    failure_reason = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    n = models.IntegerField(default=0)

    KEY = (*RollupKey.KEY, "target_type", "state", "sip_status", "failure_reason", "reason")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=(*RollupKey.KEY, "target_type", "state", "sip_status", "failure_reason", "reason"),
                name="reporting_handoffrollup_unique_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M} {self.state} x{self.n}"


class StaleBucket(models.Model):
    """A 15-minute bucket whose rollup rows no longer match its records: ingestion marks the
    buckets a fold changed (the bucket a record was in and the one it is in now), and the fold
    worker (reporting.rollups.fold_stale) recomputes them from the records once they settle, then
    deletes the marks it read. Append-only on the hot path: many marks of one bucket are one
    recompute, and two ingesting requests never wait for each other on a mark."""

    id = models.BigAutoField(primary_key=True)
    # No index: the worker reads the whole (small) table in id order; deleting a center scans it.
    contact_center = models.ForeignKey(
        ContactCenter, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    bucket = models.DateTimeField()
    marked_at = models.DateTimeField(default=timezone.now)  # the worker waits for a bucket to settle

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M}"


def _add_rollup_columns() -> None:
    from reporting.reports.durations import histogram_columns

    for name in CALL_ROLLUP_COUNTS:
        field_class = models.BigIntegerField if name.endswith("_us") else models.IntegerField
        CallRollup.add_to_class(name, field_class(default=0))
    for prefix in CALL_ROLLUP_HISTOGRAMS:
        for name in histogram_columns(prefix):
            CallRollup.add_to_class(name, models.IntegerField(default=0))


_add_rollup_columns()
