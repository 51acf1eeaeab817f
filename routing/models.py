"""Queues, phone numbers and flows: how calls reach virtual agents and humans."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter, Extension, Membership


class QueueStrategy(models.TextChoices):
    RING_ALL = "ring_all", "Ring all"
    ROUND_ROBIN = "round_robin", "Round robin"
    LONGEST_IDLE = "longest_idle", "Longest idle"


class FailoverAction(models.TextChoices):
    VOICEMAIL = "voicemail", "Voicemail"
    QUEUE = "queue", "Another queue"
    EXTERNAL = "external", "External number"
    HANGUP = "hangup", "Hang up"


MAX_WAIT_LIMIT = 86_400
# A queue's service level threshold T: "answered within T seconds" (reporting.reports.queues).
SERVICE_LEVEL_MIN, SERVICE_LEVEL_MAX, SERVICE_LEVEL_DEFAULT = 5, 600, 20


class QueueQuerySet(models.QuerySet["Queue"]):
    def for_center(self, center: ContactCenter) -> QueueQuerySet:
        return self.filter(contact_center=center)

    def with_details(self) -> QueueQuerySet:
        return self.select_related("extension", "failover_queue__extension").prefetch_related(
            "members__user", "members__extension", "virtual_agent_members__extension"
        )


class Queue(models.Model):
    """Where a handed-off caller waits for a human; a REFER target by its extension."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contact_center = models.ForeignKey(ContactCenter, on_delete=models.CASCADE, related_name="queues")
    name = models.CharField(max_length=100)
    # PROTECT: a queue without its extension could not be reached by a REFER.
    extension = models.OneToOneField(Extension, on_delete=models.PROTECT, related_name="queue")
    strategy = models.CharField(max_length=16, choices=QueueStrategy.choices, default=QueueStrategy.RING_ALL)
    members = models.ManyToManyField(Membership, blank=True, related_name="queues")
    # Bots take queue calls too; only those with an extension can be rung.
    virtual_agent_members = models.ManyToManyField(VirtualAgent, blank=True, related_name="queues")
    max_wait_seconds = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(5), MaxValueValidator(MAX_WAIT_LIMIT)]
    )
    service_level_seconds = models.PositiveIntegerField(
        default=SERVICE_LEVEL_DEFAULT,
        validators=[MinValueValidator(SERVICE_LEVEL_MIN), MaxValueValidator(SERVICE_LEVEL_MAX)],
        help_text="Service level: the share of offered callers answered within this many seconds.",
    )
    failover_action = models.CharField(
        max_length=16, choices=FailoverAction.choices, default=FailoverAction.VOICEMAIL
    )
    # PROTECT: deleting a queue another queue fails over to would strand its callers.
    failover_queue = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="failover_sources"
    )
    failover_number = models.CharField(max_length=16, blank=True)
    created = models.DateTimeField(default=timezone.now)

    objects = QueueQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            # Case-insensitive, as the service's check: "Sales" and "sales" are one queue.
            models.UniqueConstraint(F("contact_center"), Lower("name"), name="routing_queue_unique_name"),
            models.CheckConstraint(
                condition=Q(strategy__in=QueueStrategy.values), name="routing_queue_strategy_valid"
            ),
            models.CheckConstraint(
                condition=Q(failover_action__in=FailoverAction.values),
                name="routing_queue_failover_action_valid",
            ),
            models.CheckConstraint(
                condition=(
                    Q(failover_action=FailoverAction.QUEUE, failover_queue__isnull=False)
                    | (~Q(failover_action=FailoverAction.QUEUE) & Q(failover_queue__isnull=True))
                ),
                name="routing_queue_failover_queue_iff_action",
            ),
            models.CheckConstraint(
                condition=(
                    Q(failover_action=FailoverAction.EXTERNAL) & ~Q(failover_number="")
                    | ~Q(failover_action=FailoverAction.EXTERNAL) & Q(failover_number="")
                ),
                name="routing_queue_failover_number_iff_action",
            ),
            models.CheckConstraint(
                condition=Q(max_wait_seconds__gte=5) & Q(max_wait_seconds__lte=MAX_WAIT_LIMIT),
                name="routing_queue_max_wait_range",
            ),
            models.CheckConstraint(
                condition=Q(service_level_seconds__gte=SERVICE_LEVEL_MIN)
                & Q(service_level_seconds__lte=SERVICE_LEVEL_MAX),
                name="routing_queue_service_level_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.extension.digits})"

    @property
    def failover_label(self) -> str:
        if self.failover_action == FailoverAction.QUEUE and self.failover_queue:
            return f"Queue {self.failover_queue.name}"
        if self.failover_action == FailoverAction.EXTERNAL:
            return f"External {self.failover_number}"
        return self.get_failover_action_display()


class OrderedJSONField(models.TextField):
    """JSON kept as text, so key order survives: PostgreSQL's jsonb would re-sort a menu's keys,
    a graph's nodes and a schedule's days. Never queried into, so nothing is lost."""

    description = "JSON, key order preserved"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return None if value is None else json.loads(value)

    def to_python(self, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    def get_prep_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=False)

    def value_to_string(self, obj: models.Model) -> str:
        return self.get_prep_value(self.value_from_object(obj)) or ""


class FlowQuerySet(models.QuerySet["Flow"]):
    def for_center(self, center: ContactCenter) -> FlowQuerySet:
        return self.filter(contact_center=center)


class Flow(models.Model):
    """A call flow: a node graph, edited as versions; one version is published and runs.

    `business_hours` (the schedule-node format, empty = always open) gates the whole flow:
    outside them a call runs `after_hours_flow` instead, when one is set.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contact_center = models.ForeignKey(ContactCenter, on_delete=models.CASCADE, related_name="flows")
    name = models.CharField(max_length=100)
    business_hours = OrderedJSONField(default=dict, blank=True)
    # PROTECT: a flow another flow chains to cannot vanish from under it.
    after_hours_flow = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="chained_from"
    )
    published_version = models.OneToOneField(
        "FlowVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)

    objects = FlowQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(F("contact_center"), Lower("name"), name="routing_flow_unique_name"),
            models.CheckConstraint(
                condition=~Q(after_hours_flow=F("id")), name="routing_flow_not_chained_to_itself"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class FlowVersionState(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    ARCHIVED = "archived", "Archived"


class FlowVersion(models.Model):
    """One saved graph of a flow. Published and archived versions are never edited again."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=FlowVersionState.choices, default=FlowVersionState.DRAFT)
    graph = OrderedJSONField(default=dict)
    # Validation outcome when saved: [{"node", "field", "code", "message"}]; empty = publishable.
    problems = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "number"], name="routing_flowversion_unique_number"),
            # One draft and one published version per flow at most: editing and publishing
            # never fork the flow.
            models.UniqueConstraint(
                fields=["flow"], condition=Q(state="draft"), name="routing_flowversion_one_draft"
            ),
            models.UniqueConstraint(
                fields=["flow"], condition=Q(state="published"), name="routing_flowversion_one_published"
            ),
            models.CheckConstraint(
                condition=Q(state__in=FlowVersionState.values), name="routing_flowversion_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.flow.name} v{self.number} ({self.state})"

    @property
    def is_valid(self) -> bool:
        return not self.problems


class PhoneNumberQuerySet(models.QuerySet["PhoneNumber"]):
    def for_center(self, center: ContactCenter) -> PhoneNumberQuerySet:
        return self.filter(contact_center=center)


class PhoneNumber(models.Model):
    """A DID (E.164). Calls to it run its flow; unique across all contact centers."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contact_center = models.ForeignKey(ContactCenter, on_delete=models.CASCADE, related_name="phone_numbers")
    number = models.CharField(max_length=16, unique=True)
    label = models.CharField(max_length=100, blank=True)
    # PROTECT: deleting a flow that numbers run would silently drop their calls.
    flow = models.ForeignKey(
        Flow, null=True, blank=True, on_delete=models.PROTECT, related_name="phone_numbers"
    )
    created = models.DateTimeField(default=timezone.now)

    objects = PhoneNumberQuerySet.as_manager()

    class Meta:
        ordering = ["number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(number__regex=r"^\+[1-9][0-9]{1,14}$"), name="routing_phonenumber_e164"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.label}".strip()


class MenuState(models.Model):
    """Where a call waits in its flow's menu, kept here only while the shared cache (Redis) is down.

    Normally a call's menu state lives in Redis (routing.menu_state); this table keeps the calls of
    an outage answerable until Redis is back. A row is taken (read and deleted) by the call's next
    answer, and expires with the cache entry's lifetime.
    """

    id = models.BigAutoField(primary_key=True)
    contact_center = models.ForeignKey(ContactCenter, on_delete=models.CASCADE, related_name="+")
    call_id = models.CharField(max_length=256)
    state = models.JSONField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["contact_center", "call_id"], name="routing_menustate_one_per_call"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.call_id} (until {self.expires_at:%H:%M:%S})"
