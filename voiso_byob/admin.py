from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest

from voiso_byob.api_key_cache import forget_api_keys
from voiso_byob.forms import ThrottledAdminAuthenticationForm
from voiso_byob.models import ApiKey, AuditEvent, ContactCenter, Extension, Invitation, Membership, User
from voiso_byob.services import bump_routing_revision

# The sign-in throttle holds in Django admin too (the backend enforces it; this form explains it).
admin.site.login_form = ThrottledAdminAuthenticationForm


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff look, never touch: for append-only data (events, reports, version history), rows
    folded from it (call records, handoffs), and configuration whose changes must go through
    the portal or API (they validate, audit and move the telephony generation; admin would not).
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    raw_id_fields = ["extension"]


@admin.register(ContactCenter)
class ContactCenterAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "byob_enabled", "extension_length", "external_transfer_policy", "created"]
    list_filter = ["byob_enabled", "external_transfer_policy"]
    list_editable = ["byob_enabled"]
    search_fields = ["name", "slug"]
    readonly_fields = ["sip_domain", "created"]
    inlines = [MembershipInline]

    @admin.display(description="SIP domain")
    def sip_domain(self, obj: ContactCenter) -> str:
        return obj.sip_domain

    def save_model(self, request: HttpRequest, obj: ContactCenter, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # Keys carry their contact center in the cache, and compiled flows its timezone and
        # external-transfer policy: a changed center must be re-read everywhere.
        forget_api_keys(obj.api_keys.all())
        bump_routing_revision(obj)
        if change and form.changed_data:
            AuditEvent.record(
                center=obj,
                by=request.user,
                action="contact_center.updated",
                target=obj,
                changes={field: form.cleaned_data.get(field) for field in form.changed_data},
            )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "contact_center", "role", "extension", "created"]
    list_filter = ["role", "contact_center"]
    search_fields = ["user__email", "contact_center__slug", "extension__digits"]
    list_select_related = ["user", "contact_center", "extension"]
    autocomplete_fields = ["user", "contact_center"]
    raw_id_fields = ["extension"]


@admin.register(Extension)
class ExtensionAdmin(admin.ModelAdmin):
    list_display = ["digits", "kind", "contact_center", "created"]
    list_filter = ["kind", "contact_center"]
    search_fields = ["digits", "contact_center__slug"]
    list_select_related = ["contact_center"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created in the portal or with `create_api_key`; here staff inspect and revoke."""

    list_display = ["name", "prefix", "scope", "contact_center", "created", "last_used_at", "revoked_at"]
    list_filter = ["scope", "contact_center"]
    search_fields = ["name", "prefix", "contact_center__slug"]
    list_select_related = ["contact_center"]
    # hashed_key is deliberately absent: not even its hash is shown.
    fields = [
        "contact_center",
        "name",
        "scope",
        "prefix",
        "created",
        "created_by",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = ["contact_center", "name", "scope", "prefix", "created", "created_by", "last_used_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created", "contact_center", "actor_repr", "action", "target_type", "target_repr"]
    list_filter = ["action", "target_type", "contact_center"]
    search_fields = ["actor_repr", "action", "target_repr", "target_id"]
    list_select_related = ["contact_center"]
    date_hierarchy = "created"


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    """Invitations are sent, resent and revoked by a center's administrators (audited, e-mailed)."""

    list_display = [
        "email",
        "contact_center",
        "role",
        "invited_by",
        "sent_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    ]
    list_filter = ["role", "contact_center"]
    search_fields = ["email", "contact_center__slug"]
    list_select_related = ["contact_center", "invited_by"]
    # hashed_token is deliberately absent, as an API key's hash.
    fields = [
        "contact_center",
        "email",
        "role",
        "invited_by",
        "created",
        "sent_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
    ]
