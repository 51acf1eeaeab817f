"""Dialer campaigns: bots as the agents of outbound calls.

A campaign dials its leads with its virtual agents as the agents. Every dial is one `CallAttempt`;
what happened to it comes back through the events API (reporting calls `campaigns.services`).
Legal limits that no campaign may widen live per center in `DialerPolicy` and, per region, in
`RegionalCallingRule` (data staff edit in Django admin, not code: the state tables disagree and change).

One module per noun; everything public is imported here, so `from campaigns.models import X` works.
"""

from campaigns.models.attempt import DIALER_CALL_ID_PREFIX, AttemptOutcome, CallAttempt
from campaigns.models.campaign import (
    DEFAULT_RETRY_MINUTES,
    RETRYABLE_OUTCOMES,
    WEEKDAYS,
    AutoPauseReason,
    Campaign,
    CampaignQuerySet,
    CampaignStatus,
)
from campaigns.models.do_not_call import DoNotCall
from campaigns.models.lead import (
    DIALABLE_LEAD_STATUSES,
    E164_REGEX,
    OPEN_LEAD_STATUSES,
    Lead,
    LeadQuerySet,
    LeadStatus,
)
from campaigns.models.lead_import import (
    LeadImport,
    LeadImportChunk,
    LeadImportQuerySet,
    LeadImportReject,
    LeadImportStatus,
)
from campaigns.models.policy import DialerPolicy, RegionalCallingRule

__all__ = [
    "DEFAULT_RETRY_MINUTES",
    "DIALABLE_LEAD_STATUSES",
    "DIALER_CALL_ID_PREFIX",
    "E164_REGEX",
    "OPEN_LEAD_STATUSES",
    "RETRYABLE_OUTCOMES",
    "WEEKDAYS",
    "AttemptOutcome",
    "AutoPauseReason",
    "CallAttempt",
    "Campaign",
    "CampaignQuerySet",
    "CampaignStatus",
    "DialerPolicy",
    "DoNotCall",
    "Lead",
    "LeadImport",
    "LeadImportChunk",
    "LeadImportQuerySet",
    "LeadImportReject",
    "LeadImportStatus",
    "LeadQuerySet",
    "LeadStatus",
    "RegionalCallingRule",
]
