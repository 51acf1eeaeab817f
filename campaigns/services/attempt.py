"""Attempts: what the events say happened to a dial, and what follows for its lead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from campaigns.models import (
    DIALER_CALL_ID_PREFIX,
    AttemptOutcome,
    CallAttempt,
    Lead,
    LeadStatus,
)

# call.ended's end_reason for a call no bot answered → the attempt's outcome.
_UNANSWERED_OUTCOMES = {
    "busy": AttemptOutcome.BUSY,
    "no_answer": AttemptOutcome.NO_ANSWER,
    "machine": AttemptOutcome.MACHINE,
    "failed": AttemptOutcome.FAILED,
    "rejected": AttemptOutcome.REJECTED,
    "invalid_number": AttemptOutcome.INVALID_NUMBER,
}


@dataclass(frozen=True, slots=True)
class CallEventFact:
    """What ingestion passes on for one new event of a call: campaigns need only these."""

    call_id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any]


def is_dialer_call(call_id: str) -> bool:
    """The dialer names its calls (the switch reports them under that id): no query to tell them."""
    return call_id.startswith(DIALER_CALL_ID_PREFIX)


OUTCOME_EVENT_TYPES = frozenset({"bot.connected", "handoff.requested", "call.ended"})


def apply_call_events(*, center_id: Any, facts: Sequence[CallEventFact]) -> int:
    """Moves the attempts (and their leads) of the campaign calls among `facts`; returns how many.

    Called by event ingestion inside its transaction for every new event, whatever the call: one
    indexed query finds the calls that are campaign attempts, and the others cost nothing more.
    Idempotent: an attempt already ended is not ended twice.
    """
    facts = [fact for fact in facts if fact.type in OUTCOME_EVENT_TYPES]
    if not facts:
        return 0
    # Only the attempts are locked ("self"): locking the joined campaign too would serialise every
    # event of a campaign's calls and deadlock with the dialer's inserts checking their foreign keys.
    attempts = {
        attempt.call_id: attempt
        for attempt in CallAttempt.objects.select_for_update(of=("self",))
        .select_related("lead", "campaign")
        .filter(contact_center_id=center_id, call_id__in={fact.call_id for fact in facts})
    }
    moved = 0
    for fact in sorted(facts, key=lambda fact: fact.occurred_at):
        attempt = attempts.get(fact.call_id)
        if attempt is None or attempt.ended_at is not None:
            continue
        moved += 1
        if fact.type == "bot.connected":
            attempt.answered_at = attempt.answered_at or fact.occurred_at
            attempt.save(update_fields=["answered_at"])
        elif fact.type == "handoff.requested":
            attempt.handed_off = True
            attempt.save(update_fields=["handed_off"])
        else:
            _end_attempt(attempt, fact)
    return moved


def _end_attempt(attempt: CallAttempt, fact: CallEventFact) -> None:
    reason = str(fact.data.get("end_reason") or "")
    if attempt.answered_at is not None:
        outcome = AttemptOutcome.COMPLETED
    else:
        outcome = _UNANSWERED_OUTCOMES.get(reason, AttemptOutcome.FAILED)
    status = fact.data.get("sip_status")
    end_attempt(
        attempt,
        outcome=outcome,
        at=fact.occurred_at,
        sip_status=status if isinstance(status, int) and not isinstance(status, bool) else None,
    )


def end_attempt(attempt: CallAttempt, *, outcome: str, at: datetime, sip_status: int | None = None) -> None:
    """Closes the attempt and decides its lead: done, retried after the outcome's delay, or finished."""
    attempt.ended_at = at
    attempt.outcome = outcome
    attempt.sip_status = sip_status
    attempt.save(update_fields=["ended_at", "outcome", "sip_status"])
    lead = Lead.objects.select_for_update().get(pk=attempt.lead_id)
    lead.last_outcome = outcome
    if lead.status == LeadStatus.IN_PROGRESS:
        delay = attempt.campaign.retry_delay_minutes(outcome)
        if outcome == AttemptOutcome.COMPLETED:
            lead.status = LeadStatus.DONE
        elif delay is None:
            lead.status = LeadStatus.FAILED
        elif lead.attempts >= attempt.campaign.max_attempts:
            lead.status = LeadStatus.EXHAUSTED
        else:
            lead.status = LeadStatus.RETRY
            lead.next_attempt_at = at + timedelta(minutes=delay)
    lead.save(update_fields=["status", "last_outcome", "next_attempt_at"])
