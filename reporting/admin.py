"""Calls in Django admin, for staff: all read-only.

Events are append-only; records and handoffs are folded from them (an edit would be undone by the
next event of the call); provider reports are what the provider sent. Tables grow by the million,
so lists skip the full count.
"""

from django.contrib import admin

from reporting.models import CallEvent, CallRecord, Handoff, ProviderCallReport
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
