"""The predicates behind the report figures, on CallRecord, in one place: the reports count with
them (as FILTER clauses) and the Calls page filters with them (reporting.queries), so a figure
and the list it drills down to can never disagree. Definitions: the reports' module docstrings.
"""

from __future__ import annotations

from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce

from reporting.models import BotOutcome, CallStatus, Handoff, HandoffState
from routing.models import SERVICE_LEVEL_DEFAULT

# --- bots (reporting.reports.virtual_agents) --------------------------------------------------
REACHED = Q(bot_outcome__in=[BotOutcome.CONTAINED, BotOutcome.HANDED_OFF, BotOutcome.ABANDONED_IN_BOT])
CONTAINED = Q(bot_outcome=BotOutcome.CONTAINED)
HANDED_OFF = Q(bot_outcome=BotOutcome.HANDED_OFF)
ABANDONED_IN_BOT = Q(bot_outcome=BotOutcome.ABANDONED_IN_BOT)
IN_BOT = Q(bot_outcome=BotOutcome.NONE, bot_connected_at__isnull=False, status=CallStatus.IN_PROGRESS)

OUTCOMES = {
    "reached_bot": REACHED,
    "contained": CONTAINED,
    "handed_off": HANDED_OFF,
    "abandoned_in_bot": ABANDONED_IN_BOT,
    "in_bot": IN_BOT,
}

# --- queues (reporting.reports.queues) --------------------------------------------------------
OFFERED = Q(queue_entered_at__isnull=False)
ANSWERED = OFFERED & Q(queue_answered_at__isnull=False)
ABANDONED = OFFERED & Q(queue_answered_at__isnull=True, status=CallStatus.ENDED)
WAITING = OFFERED & Q(queue_answered_at__isnull=True, status=CallStatus.IN_PROGRESS)
# T of the call's queue; a deleted queue's calls (queue NULL) are held to the default.
WITHIN_SERVICE_LEVEL = ANSWERED & Q(
    queue_wait_seconds__lte=Coalesce(F("queue__service_level_seconds"), SERVICE_LEVEL_DEFAULT)
)

QUEUE_RESULTS = {
    "offered": OFFERED,
    "answered": ANSWERED,
    "abandoned": ABANDONED,
    "waiting": WAITING,
    "within_service_level": WITHIN_SERVICE_LEVEL,
}

# --- the dialer (reporting.reports.campaigns) -------------------------------------------------
DROPPED_REASON = "dropped"
UNANSWERED_REASONS = ("busy", "no_answer", "machine")
DIALLED = ~Q(campaign_ref="")
BOT_ANSWERED = Q(bot_connected_at__isnull=False)
_NO_BOT_ENDED = Q(bot_connected_at__isnull=True, status=CallStatus.ENDED)
DROPPED = _NO_BOT_ENDED & Q(end_reason=DROPPED_REASON)

ATTEMPT_RESULTS = {
    "dialled": DIALLED,
    "connected": DIALLED & (BOT_ANSWERED | DROPPED),
    "completed": DIALLED & BOT_ANSWERED,
    "busy": DIALLED & _NO_BOT_ENDED & Q(end_reason="busy"),
    "no_answer": DIALLED & _NO_BOT_ENDED & Q(end_reason="no_answer"),
    "machine": DIALLED & _NO_BOT_ENDED & Q(end_reason="machine"),
    "failed": DIALLED & _NO_BOT_ENDED & ~Q(end_reason__in=UNANSWERED_REASONS),
    "ringing": DIALLED & Q(bot_connected_at__isnull=True, status=CallStatus.IN_PROGRESS),
    "dropped": DIALLED & DROPPED,
    "handed_off": DIALLED & Q(handoff_count__gt=0),
}


# --- handoffs: calls with at least one handoff in a state ------------------------------------
def _has_handoff(**conditions: object) -> Q:
    return Q(Exists(Handoff.objects.filter(call_record=OuterRef("pk"), **conditions)))


HANDOFF_RESULTS = {
    "requested": Q(handoff_count__gt=0),
    "completed": _has_handoff(state=HandoffState.COMPLETED),
    "failed": _has_handoff(state=HandoffState.FAILED),
}
