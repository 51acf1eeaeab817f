"""Calls in Django admin, for staff: all read-only.

Events are append-only; records and handoffs are folded from them (an edit would be undone by the
next event of the call); provider reports are what the provider sent. Tables grow by the million,
so lists skip the full count.
"""

from django.contrib import admin

from reporting.models import (
    CallEvent,
    CallRecord,
    CallRollup,
    Handoff,
    HandoffRollup,
    ProviderCallReport,
    StaleBucket,
)
from voiso_byob.admin import ReadOnlyAdmin, ReadOnlyInline


class HandoffInline(ReadOnlyInline):
    model = Handoff
    fields = ["sequence", "state", "target_type", "target_extension", "target_name", "refer_to", "sip_status"]


@admin.register(CallRecord)
class CallRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "call_id",
        "contact_center",
        "status",
        "direction",
        "from_number",
        "to_number",
        "virtual_agent",
        "queue",
        "bot_outcome",
        "handoff_count",
        "started_at",
    ]
    list_filter = ["status", "direction", "bot_outcome", "hangup_by", "contact_center"]
    search_fields = ["call_id", "from_number", "to_number", "provider_call_id", "contact_center__slug"]
    list_select_related = ["contact_center", "virtual_agent", "queue"]
    show_full_result_count = False
    inlines = [HandoffInline]


@admin.register(CallEvent)
class CallEventAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "type", "call_id", "event_id", "contact_center", "received_at"]
    list_filter = ["type", "contact_center"]
    search_fields = ["call_id", "event_id"]
    list_select_related = ["contact_center"]
    show_full_result_count = False


@admin.register(Handoff)
class HandoffAdmin(ReadOnlyAdmin):
    list_display = [
        "call_record",
        "sequence",
        "contact_center",
        "virtual_agent",
        "state",
        "target_type",
        "target_extension",
        "target_name",
        "sip_status",
        "requested_at",
    ]
    list_filter = ["state", "target_type", "contact_center"]
    search_fields = ["call_record__call_id", "refer_to", "target_extension", "target_name"]
    list_select_related = ["contact_center", "call_record", "virtual_agent"]
    show_full_result_count = False


@admin.register(ProviderCallReport)
class ProviderCallReportAdmin(ReadOnlyAdmin):
    list_display = ["provider_call_id", "provider", "contact_center", "integration", "call_id", "received_at"]
    list_filter = ["provider", "contact_center"]
    search_fields = ["provider_call_id", "call_id", "summary"]
    list_select_related = ["contact_center", "integration", "call_record"]
    show_full_result_count = False


# Rollups are derived (reporting.rollups); `manage.py rebuild_rollups` is how to mend them, so staff
# only look, e.g. to check a quarter-hour against the records behind it.
@admin.register(CallRollup)
class CallRollupAdmin(ReadOnlyAdmin):
    list_display = [
        "bucket", "contact_center", "virtual_agent", "queue", "campaign_ref", "direction",
        "calls", "offered", "attempts",
    ]  # fmt: skip
    list_filter = ["direction", "contact_center"]
    search_fields = ["campaign_ref", "contact_center__slug"]
    list_select_related = ["contact_center"]
    date_hierarchy = "bucket"
    show_full_result_count = False


@admin.register(HandoffRollup)
class HandoffRollupAdmin(ReadOnlyAdmin):
    list_display = [
        "bucket", "contact_center", "virtual_agent", "target_type", "state", "sip_status", "reason", "n",
    ]  # fmt: skip
    list_filter = ["state", "target_type", "contact_center"]
    search_fields = ["reason", "failure_reason", "contact_center__slug"]
    list_select_related = ["contact_center"]
    date_hierarchy = "bucket"
    show_full_result_count = False


# What the fold worker has still to recompute (`manage.py fold_rollups`): a long list here means
# the worker is not running.
@admin.register(StaleBucket)
class StaleBucketAdmin(ReadOnlyAdmin):
    list_display = ["bucket", "contact_center", "id"]
    list_filter = ["contact_center"]
    search_fields = ["contact_center__slug"]
    list_select_related = ["contact_center"]
    show_full_result_count = False
