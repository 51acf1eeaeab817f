from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from virtual_agents.models import HandoffTarget, ProviderIntegration, VirtualAgent
from voiso_byob.admin import ReadOnlyAdmin


@admin.register(ProviderIntegration)
class ProviderIntegrationAdmin(admin.ModelAdmin):
    """Credentials are never shown, not even encrypted: only the masked hint."""

    list_display = ["label", "provider", "contact_center", "status", "credentials_hint", "last_verified_at"]
    list_filter = ["provider", "status", "contact_center"]
    search_fields = ["label", "contact_center__slug"]
    list_select_related = ["contact_center"]
    fields = [
        "contact_center",
        "provider",
        "label",
        "credentials_hint",
        "status",
        "last_verified_at",
        "last_error",
        "created",
    ]
    readonly_fields = [
        "contact_center",
        "provider",
        "credentials_hint",
        "status",
        "last_verified_at",
        "last_error",
        "created",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Adding one means verifying a key with the provider: the portal or the API does that.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class HandoffTargetInline(admin.TabularInline):
    model = HandoffTarget
    extra = 0
    fields = ["label", "sip_uri", "extension", "number"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(VirtualAgent)
class VirtualAgentAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "contact_center",
        "integration",
        "extension",
        "max_concurrent_calls",
        "is_enabled",
        "is_connected",
    ]
    list_filter = ["is_enabled", "is_connected", "integration__provider", "contact_center"]
    search_fields = ["name", "provider_agent_id", "extension__digits", "contact_center__slug"]
    list_select_related = ["contact_center", "integration", "extension"]
    raw_id_fields = ["extension", "default_handoff_extension"]
    readonly_fields = [
        "contact_center",
        "integration",
        "provider_agent_id",
        "provider_state",
        "is_connected",
        "created",
    ]
    inlines = [HandoffTargetInline]

    # Read-only for staff: a change here would skip the provider and the audit log, and a
    # delete would orphan the bot's setup at the provider. Changes go through the portal or API.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(HandoffTarget)
class HandoffTargetAdmin(ReadOnlyAdmin):
    """What was pushed into a bot's transfer tool at the provider; the portal's wizard changes it."""

    list_display = ["label", "sip_uri", "virtual_agent", "contact_center", "extension", "number", "created"]
    list_filter = ["virtual_agent__contact_center"]
    search_fields = [
        "label",
        "sip_uri",
        "number",
        "virtual_agent__name",
        "virtual_agent__contact_center__slug",
    ]
    list_select_related = ["virtual_agent__contact_center", "extension"]

    @admin.display(description="contact center", ordering="virtual_agent__contact_center__slug")
    def contact_center(self, obj: HandoffTarget) -> str:
        return str(obj.virtual_agent.contact_center)
