from django.contrib import admin

from routing.models import Flow, FlowVersion, MenuState, PhoneNumber, Queue
from voiso_byob.admin import ReadOnlyAdmin, ReadOnlyInline


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ["name", "extension", "contact_center", "strategy", "max_wait_seconds", "failover_action"]
    list_filter = ["strategy", "failover_action", "contact_center"]
    search_fields = ["name", "extension__digits", "contact_center__slug"]
    list_select_related = ["extension", "contact_center"]
    raw_id_fields = ["extension", "failover_queue"]
    filter_horizontal = ["members"]


class FlowVersionInline(ReadOnlyInline):
    model = FlowVersion
    fields = ["number", "state", "created", "created_by", "published_at"]
    ordering = ["-number"]


# Flows and numbers are read-only here: a publish validates and compiles the graph, and every
# change moves the telephony generation and is audited; the builder and the API do that.
@admin.register(Flow)
class FlowAdmin(ReadOnlyAdmin):
    list_display = ["name", "contact_center", "published_version", "after_hours_flow", "created"]
    list_filter = ["contact_center"]
    search_fields = ["name", "contact_center__slug"]
    list_select_related = ["contact_center", "published_version", "after_hours_flow"]
    inlines = [FlowVersionInline]


@admin.register(FlowVersion)
class FlowVersionAdmin(ReadOnlyAdmin):
    """The history: published and archived versions are never edited again."""

    list_display = ["flow", "number", "state", "is_valid", "created", "created_by", "published_at"]
    list_filter = ["state", "flow__contact_center"]
    search_fields = ["flow__name", "flow__contact_center__slug"]
    list_select_related = ["flow", "created_by"]

    @admin.display(boolean=True, description="valid")
    def is_valid(self, obj: FlowVersion) -> bool:
        return obj.is_valid


@admin.register(PhoneNumber)
class PhoneNumberAdmin(ReadOnlyAdmin):
    list_display = ["number", "label", "contact_center", "flow", "created"]
    list_filter = ["contact_center"]
    search_fields = ["number", "label", "contact_center__slug", "flow__name"]
    list_select_related = ["contact_center", "flow"]


@admin.register(MenuState)
class MenuStateAdmin(ReadOnlyAdmin):
    """Menu answers kept only while Redis is down (routing.menu_state); the next answer takes them."""

    list_display = ["call_id", "contact_center", "expires_at"]
    list_filter = ["contact_center"]
    search_fields = ["call_id", "contact_center__slug"]
    list_select_related = ["contact_center"]
