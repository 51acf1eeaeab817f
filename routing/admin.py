from django.contrib import admin

from routing.models import Queue


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ["name", "extension", "contact_center", "strategy", "max_wait_seconds", "failover_action"]
    list_filter = ["strategy", "failover_action", "contact_center"]
    search_fields = ["name", "extension__digits", "contact_center__slug"]
    list_select_related = ["extension", "contact_center"]
    raw_id_fields = ["extension", "failover_queue"]
    filter_horizontal = ["members"]
