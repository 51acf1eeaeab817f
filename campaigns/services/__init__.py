"""Writes on campaigns, leads, the do-not-call lists and call attempts. Atomic and audited.

One module per noun; everything public is imported here, so `from campaigns.services import f`
works (the status machine is described in `campaigns.services.campaign`).
"""

from campaigns.services.attempt import (
    OUTCOME_EVENT_TYPES,
    CallEventFact,
    apply_call_events,
    end_attempt,
    is_dialer_call,
)
from campaigns.services.campaign import (
    auto_pause_campaign,
    auto_resume_campaign,
    complete_campaign,
    create_campaign,
    delete_campaign,
    pause_campaign,
    start_campaign,
    stop_campaign,
    update_campaign,
)
from campaigns.services.do_not_call import (
    DoNotCallResult,
    DoNotCallRow,
    add_do_not_call,
    add_do_not_call_many,
    remove_do_not_call,
)
from campaigns.services.lead import (
    MAX_LEADS_PER_REQUEST,
    ImportResult,
    LeadRow,
    ReadRows,
    import_leads,
    import_read_rows,
    read_numbers,
)
from campaigns.services.numbers import blocked_numbers, classify_number
from campaigns.services.policy import dialer_policy

__all__ = [
    "MAX_LEADS_PER_REQUEST",
    "OUTCOME_EVENT_TYPES",
    "CallEventFact",
    "DoNotCallResult",
    "DoNotCallRow",
    "ImportResult",
    "LeadRow",
    "ReadRows",
    "add_do_not_call",
    "add_do_not_call_many",
    "apply_call_events",
    "auto_pause_campaign",
    "auto_resume_campaign",
    "blocked_numbers",
    "classify_number",
    "complete_campaign",
    "create_campaign",
    "delete_campaign",
    "dialer_policy",
    "end_attempt",
    "import_leads",
    "import_read_rows",
    "is_dialer_call",
    "pause_campaign",
    "read_numbers",
    "remove_do_not_call",
    "start_campaign",
    "stop_campaign",
    "update_campaign",
]
