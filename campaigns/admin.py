from django.contrib import admin

from campaigns.models import (
    CallAttempt,
    Campaign,
    DialerPolicy,
    DoNotCall,
    Lead,
    LeadImport,
    LeadImportChunk,
    LeadImportReject,
    RegionalCallingRule,
)
from voiso_byob.admin import ReadOnlyAdmin


# The legal frame is data staff keep: a center's window and daily cap, and the regional rules
# (state laws change, and the published tables disagree), so these two are editable here.
@admin.register(DialerPolicy)
class DialerPolicyAdmin(admin.ModelAdmin):
    list_display = ["contact_center", "default_region", "legal_start", "legal_end", "daily_cap"]
    search_fields = ["contact_center__slug", "contact_center__name"]
    list_select_related = ["contact_center"]
    raw_id_fields = ["contact_center"]


@admin.register(RegionalCallingRule)
class RegionalCallingRuleAdmin(admin.ModelAdmin):
    list_display = ["region", "start", "end", "max_attempts_per_24h", "effective_from", "source"]
    search_fields = ["region", "source"]


# Campaigns, leads and do-not-call entries change through the portal or API (validated and
# audited); attempts and imports are the dialer's record of what it did.
@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "contact_center",
        "status",
        "status_reason",
        "priority",
        "max_attempts",
        "created",
    ]
    list_filter = ["status", "contact_center"]
    search_fields = ["name", "contact_center__slug"]
    list_select_related = ["contact_center", "handoff_queue"]


@admin.register(Lead)
class LeadAdmin(ReadOnlyAdmin):
    list_display = ["phone", "name", "campaign", "status", "attempts", "next_attempt_at", "last_outcome"]
    list_filter = ["status", "last_outcome", "campaign__contact_center"]
    search_fields = ["phone", "name", "campaign__name"]
    list_select_related = ["campaign"]
    show_full_result_count = False  # millions of rows: no COUNT(*) on every page


@admin.register(DoNotCall)
class DoNotCallAdmin(ReadOnlyAdmin):
    list_display = ["phone", "contact_center", "campaign", "reason", "added_by", "created"]
    list_filter = ["contact_center"]
    search_fields = ["phone", "reason"]
    list_select_related = ["contact_center", "campaign", "added_by"]


@admin.register(CallAttempt)
class CallAttemptAdmin(ReadOnlyAdmin):
    list_display = [
        "call_id",
        "phone",
        "campaign",
        "number",
        "outcome",
        "sip_status",
        "claimed_at",
        "ended_at",
    ]
    list_filter = ["outcome", "handed_off", "campaign__contact_center"]
    search_fields = ["call_id", "phone", "campaign__name"]
    list_select_related = ["campaign"]
    show_full_result_count = False


@admin.register(LeadImport)
class LeadImportAdmin(ReadOnlyAdmin):
    list_display = ["filename", "campaign", "status", "rows", "created_leads", "created"]
    list_filter = ["status"]
    search_fields = ["filename", "campaign__name"]
    list_select_related = ["campaign"]


@admin.register(LeadImportChunk)
class LeadImportChunkAdmin(ReadOnlyAdmin):
    list_display = ["lead_import", "index", "first_row"]
    search_fields = ["lead_import__filename"]
    list_select_related = ["lead_import"]


@admin.register(LeadImportReject)
class LeadImportRejectAdmin(ReadOnlyAdmin):
    list_display = ["lead_import", "row", "number", "reason"]
    list_filter = ["reason"]
    search_fields = ["number", "lead_import__filename"]
    list_select_related = ["lead_import"]
