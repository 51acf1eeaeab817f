"""Core models: users, tenants (contact centers), memberships, extensions, API keys, audit."""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import uuid
import zoneinfo
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

from voiso_byob.errors import DomainError
from voiso_byob.phone import number_facts

# One DNS label, lower case: the SIP domain is "{slug}.{SIP_DOMAIN_SUFFIX}".
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# ASCII digits only: "\d" would also accept Arabic-Indic or full-width digits.
EXTENSION_RE = re.compile(r"^[0-9]+$")

EXTENSION_LENGTH_MIN = 3
EXTENSION_LENGTH_MAX = 20


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> User:
        # Emails are stored lower-cased; sign-in is case-insensitive.
        return self.get(email=(username or "").strip().lower())

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Signs in with an email address; belongs to contact centers via Membership."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=dj_timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    @property
    def display_name(self) -> str:
        return self.full_name or self.email


class ExternalTransferPolicy(models.TextChoices):
    ALLOWED = "allowed", "External numbers allowed"
    BLOCKED = "blocked", "External numbers blocked"


class NumberType(models.TextChoices):
    """phonenumbers' number types, as a center's denied list names them (voiso_byob.phone.NUMBER_TYPES)."""

    FIXED_LINE = "fixed_line", "Fixed line"
    MOBILE = "mobile", "Mobile"
    FIXED_LINE_OR_MOBILE = "fixed_line_or_mobile", "Fixed line or mobile (not told apart)"
    TOLL_FREE = "toll_free", "Toll free"
    PREMIUM_RATE = "premium_rate", "Premium rate"
    SHARED_COST = "shared_cost", "Shared cost"
    VOIP = "voip", "VoIP"
    PERSONAL_NUMBER = "personal_number", "Personal number (follow-me, e.g. UK 070)"
    PAGER = "pager", "Pager"
    UAN = "uan", "Universal access number"
    VOICEMAIL = "voicemail", "Voicemail access"
    UNKNOWN = "unknown", "Unknown type"


# The types toll fraud pays out through: the caller's center is billed, the number's owner is paid.
DEFAULT_DENIED_NUMBER_TYPES = " ".join(
    [NumberType.PREMIUM_RATE, NumberType.SHARED_COST, NumberType.PERSONAL_NUMBER]
)
# An allowed destination: a country (ISO 3166 alpha-2, "GB") or an E.164 prefix ("+4420").
ALLOWED_DESTINATION_RE = re.compile(r"^(?:[A-Z]{2}|\+[1-9][0-9]{0,14})$")


@functools.cache
def known_timezones() -> frozenset[str]:
    """The IANA zones of this machine's tz database, read once: available_timezones() walks the
    whole tz directory (~20 ms), and every report request checks its `tz`."""
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(value: str) -> None:
    from django.core.exceptions import ValidationError

    if value not in known_timezones():
        raise ValidationError(f"{value!r} is not a known time zone.")


class ContactCenterQuerySet(models.QuerySet["ContactCenter"]):
    def for_user(self, user: User) -> ContactCenterQuerySet:
        return self.filter(memberships__user=user).distinct()


class ContactCenter(models.Model):
    """The tenant. Everything a customer configures hangs off one of these."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    slug = models.CharField(
        max_length=63,
        unique=True,
        validators=[RegexValidator(SLUG_RE, "One DNS label: lower-case letters, digits and inner hyphens.")],
        help_text="Tenant part of the SIP domain: {slug}.voiso.com",
    )
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    byob_enabled = models.BooleanField(
        "Bring Your Own Bot enabled",
        default=False,
        help_text="Staff switch: administrators can connect bot providers only when on.",
    )
    extension_length = models.PositiveSmallIntegerField(
        default=4,
        validators=[
            MinValueValidator(EXTENSION_LENGTH_MIN),
            MaxValueValidator(EXTENSION_LENGTH_MAX),
        ],
    )
    external_transfer_policy = models.CharField(
        max_length=16,
        choices=ExternalTransferPolicy.choices,
        default=ExternalTransferPolicy.ALLOWED,
        help_text="Whether bots may hand calls off to external numbers.",
    )
    # The toll-fraud guard on external handoffs (bots' REFERs, flows' external routes), managed by
    # administrators in the portal. Space-separated tokens rather than JSON: the telephony hot path
    # reads them as plain columns of its one query (routing.hotpath) and keys its memory by them.
    external_allowed_destinations = models.CharField(
        max_length=2000,
        blank=True,
        help_text="Countries (GB) and number prefixes (+4420), space-separated; empty: every country.",
    )
    external_denied_number_types = models.CharField(
        max_length=200,
        blank=True,
        default=DEFAULT_DENIED_NUMBER_TYPES,
        help_text="NumberType values, space-separated: never dialled, whatever the allowed destinations.",
    )
    external_only_bot_targets = models.BooleanField(
        default=False,
        help_text="A bot's REFER may name only an external number configured as a bot's handoff target.",
    )
    # Bumped by every write that changes where calls can go (extensions, queues, bots),
    # so compiled flows cached in every process know to rebuild. Read with the phone
    # number on each route request: no extra query.
    routing_revision = models.PositiveBigIntegerField(default=0, editable=False)
    created = models.DateTimeField(default=dj_timezone.now)

    objects = ContactCenterQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(extension_length__gte=EXTENSION_LENGTH_MIN)
                & Q(extension_length__lte=EXTENSION_LENGTH_MAX),
                name="voiso_byob_contactcenter_extension_length_range",
            ),
            models.CheckConstraint(
                condition=Q(external_transfer_policy__in=ExternalTransferPolicy.values),
                name="voiso_byob_contactcenter_external_policy_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def sip_domain(self) -> str:
        return f"{self.slug}.{settings.SIP_DOMAIN_SUFFIX}"

    @property
    def allows_external_transfers(self) -> bool:
        return self.external_transfer_policy == ExternalTransferPolicy.ALLOWED

    @property
    def allowed_destinations(self) -> list[str]:
        return self.external_allowed_destinations.split()

    @property
    def denied_number_types(self) -> list[str]:
        return self.external_denied_number_types.split()

    def external_refusal(self, number: str) -> str | None:
        """Why the toll-fraud guard refuses an external handoff to `number` (valid E.164), or None.

        The denied number types win over the allowed destinations: "+44" does not let a UK
        premium-rate number through. The on/off policy and "only the bots' targets" (which needs a
        query) are checked by the callers.
        """
        region, kind = number_facts(number)
        if kind in self.denied_number_types:
            label = NumberType(kind).label.lower()
            return f"{number} is a {label} number, which this contact center never dials."
        allowed = self.allowed_destinations
        if allowed and not any(
            number.startswith(entry) if entry.startswith("+") else region == entry for entry in allowed
        ):
            return f"{number} is not in this contact center's allowed destinations ({', '.join(allowed)})."
        return None

    def validate_extension_digits(self, digits: str) -> str:
        """Return the digits if they are a valid extension here, else raise DomainError."""
        if not isinstance(digits, str) or not EXTENSION_RE.fullmatch(digits):
            raise DomainError(
                "invalid_extension",
                "An extension is made of the digits 0-9 only.",
                field="extension",
            )
        if len(digits) != self.extension_length:
            raise DomainError(
                "invalid_extension",
                f"Extensions in this contact center have {self.extension_length} digits.",
                field="extension",
            )
        return digits


class Role(models.TextChoices):
    ADMINISTRATOR = "administrator", "Administrator"
    SUPERVISOR = "supervisor", "Supervisor"
    AGENT = "agent", "Agent"


class ExtensionKind(models.TextChoices):
    AGENT = "agent", "User"
    QUEUE = "queue", "Queue"
    VIRTUAL_AGENT = "virtual_agent", "Virtual agent"


class ExtensionQuerySet(models.QuerySet["Extension"]):
    def for_center(self, center: ContactCenter) -> ExtensionQuerySet:
        return self.filter(contact_center=center)


class Extension(models.Model):
    """One number space per contact center.

    The owner (an agent's membership, a queue or a virtual agent) points here
    with a one-to-one field; `kind` says which, so resolving
    `sip:4323@acme.voiso.com` is one indexed lookup on (contact_center, digits).
    Owners live in apps to the right of this one, hence the reverse relation.
    """

    contact_center = models.ForeignKey(ContactCenter, on_delete=models.CASCADE, related_name="extensions")
    digits = models.CharField(max_length=EXTENSION_LENGTH_MAX)
    kind = models.CharField(max_length=16, choices=ExtensionKind.choices)
    created = models.DateTimeField(default=dj_timezone.now)

    objects = ExtensionQuerySet.as_manager()

    class Meta:
        ordering = ["digits"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact_center", "digits"], name="voiso_byob_extension_unique_digits"
            ),
            models.CheckConstraint(
                condition=Q(digits__regex=r"^[0-9]+$"), name="voiso_byob_extension_ascii_digits"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=ExtensionKind.values), name="voiso_byob_extension_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.digits


class MembershipQuerySet(models.QuerySet["Membership"]):
    def for_center(self, center: ContactCenter) -> MembershipQuerySet:
        return self.filter(contact_center=center)

    def administrators(self) -> MembershipQuerySet:
        return self.filter(role=Role.ADMINISTRATOR)


class Membership(models.Model):
    """A user's role in one contact center, with an optional extension calls can reach."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    contact_center = models.ForeignKey(ContactCenter, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    extension = models.OneToOneField(
        Extension,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="membership",
    )
    created = models.DateTimeField(default=dj_timezone.now)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "contact_center"], name="voiso_byob_membership_unique_user_center"
            ),
            models.CheckConstraint(
                condition=Q(role__in=Role.values), name="voiso_byob_membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} of {self.contact_center.slug}"

    @property
    def is_administrator(self) -> bool:
        return self.role == Role.ADMINISTRATOR

    @property
    def can_configure(self) -> bool:
        return self.role == Role.ADMINISTRATOR

    @property
    def can_read_configuration(self) -> bool:
        return self.role in (Role.ADMINISTRATOR, Role.SUPERVISOR)


class InvitationStatus(models.TextChoices):
    """Derived from an invitation's times, never stored: `expired` follows from the clock."""

    PENDING = "pending", "Pending"
    EXPIRED = "expired", "Expired"
    ACCEPTED = "accepted", "Accepted"
    REVOKED = "revoked", "Revoked"


def hash_invitation_token(raw: str) -> str:
    # 256 random bits, as API keys: a fast hash is safe; the link's token itself is never stored.
    return hashlib.sha256(raw.encode()).hexdigest()


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def for_center(self, center: ContactCenter) -> InvitationQuerySet:
        return self.filter(contact_center=center)

    def open(self) -> InvitationQuerySet:
        """Neither accepted nor revoked (expired ones included): at most one per (center, email)."""
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True)

    def by_token(self, raw: str) -> InvitationQuerySet:
        return self.filter(hashed_token=hash_invitation_token(raw))


class Invitation(models.Model):
    """An administrator's offer of a role in their center to an e-mail address.

    Nothing of the person's changes until they accept through the e-mailed link (no membership,
    no session moved), and the offer reads the same whether the address has an account or not.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contact_center = models.ForeignKey(ContactCenter, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    hashed_token = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(default=dj_timezone.now)
    # The last (re)send: each one mints a new link and restarts the clock.
    sent_at = models.DateTimeField(default=dj_timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["email"]
        constraints = [
            # A retried invite refreshes the open one rather than adding a second link.
            models.UniqueConstraint(
                fields=["contact_center", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="voiso_byob_invitation_one_open_per_email",
            ),
            models.CheckConstraint(
                condition=Q(role__in=Role.values), name="voiso_byob_invitation_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(revoked_at__isnull=True),
                name="voiso_byob_invitation_accepted_or_revoked",
            ),
        ]

    def __str__(self) -> str:
        return f"invitation of {self.email} as {self.get_role_display()}"

    @staticmethod
    def generate_token() -> tuple[str, str]:
        """Return (raw token for the link, its hash for the row)."""
        raw = secrets.token_urlsafe(32)
        return raw, hash_invitation_token(raw)

    def status(self, now: Any = None) -> InvitationStatus:
        if self.accepted_at is not None:
            return InvitationStatus.ACCEPTED
        if self.revoked_at is not None:
            return InvitationStatus.REVOKED
        if self.expires_at <= (now or dj_timezone.now()):
            return InvitationStatus.EXPIRED
        return InvitationStatus.PENDING

    @property
    def is_pending(self) -> bool:
        return self.status() == InvitationStatus.PENDING


class ApiKeyScope(models.TextChoices):
    TELEPHONY = "telephony", "Telephony (SIP layer)"
    READ = "read", "Read"
    ADMIN = "admin", "Admin"


API_KEY_PREFIX = "vbk_"


def hash_api_key(raw: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is safe and keeps the
    # telephony hot path cheap; a slow KDF protects low-entropy passwords only.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def for_center(self, center: ContactCenter) -> ApiKeyQuerySet:
        return self.filter(contact_center=center)

    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A machine credential. Only the SHA-256 of the key is stored; the key is shown once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contact_center = models.ForeignKey(ContactCenter, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=16, choices=ApiKeyScope.choices)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, editable=False)
    created = models.DateTimeField(default=dj_timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    # last_used_at is written at most this often (see api_key_cache.touch_api_key), so a
    # busy telephony key does not turn every request into a write.
    LAST_USED_RESOLUTION = timedelta(seconds=60)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(
                condition=Q(scope__in=ApiKeyScope.values), name="voiso_byob_apikey_scope_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def generate() -> tuple[str, str, str]:
        """Return (raw key, visible prefix, hash)."""
        prefix = API_KEY_PREFIX + secrets.token_hex(4)
        raw = f"{prefix}_{secrets.token_urlsafe(32)}"
        return raw, prefix, hash_api_key(raw)

    @staticmethod
    def prefix_of(raw: str) -> str:
        return raw[: len(API_KEY_PREFIX) + 8]

    def matches(self, raw: str) -> bool:
        return secrets.compare_digest(self.hashed_key, hash_api_key(raw))


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def for_center(self, center: ContactCenter) -> AuditEventQuerySet:
        return self.filter(contact_center=center)


class AuditEvent(models.Model):
    """Who did what to which object, when. Append-only; every configuration write adds one."""

    contact_center = models.ForeignKey(
        ContactCenter, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Kept as text so the log survives the actor's deletion.
    actor_repr = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(default=dj_timezone.now)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            # The audit log page: one center's events, newest first.
            models.Index(fields=["contact_center", "-created"], name="voiso_byob_audit_center_time"),
        ]

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M} {self.actor_repr} {self.action} {self.target_repr}"

    def change_lines(self, names: dict[str, str]) -> list[tuple[str, str]]:
        """(field, "old → new" or value) pairs for display; a value found in `names` (an id) shows
        as its name."""
        lines = []
        for field, value in (self.changes or {}).items():
            if isinstance(value, dict) and set(value) == {"from", "to"}:
                text = f"{_show(value['from'], names)} → {_show(value['to'], names)}"
            else:
                text = _show(value, names)
            lines.append((field, text))
        return lines

    def changed_values(self) -> set[str]:
        """Every text value in the changes (lists and old → new pairs opened)."""
        found: set[str] = set()
        for value in (self.changes or {}).values():
            parts = (
                [value["from"], value["to"]]
                if isinstance(value, dict) and set(value) == {"from", "to"}
                else [value]
            )
            for part in parts:
                found.update(str(item) for item in (part if isinstance(part, list) else [part]) if item)
        return found

    @classmethod
    def record(
        cls,
        *,
        center: ContactCenter | None,
        by: Any,
        action: str,
        target: models.Model,
        changes: dict[str, Any] | None = None,
    ) -> AuditEvent:
        actor = by if isinstance(by, User) else None
        api_key = by if isinstance(by, ApiKey) else None
        if actor is not None:
            actor_repr = actor.email
        elif api_key is not None:
            actor_repr = f"API key {api_key.name} ({api_key.prefix})"
        else:
            actor_repr = str(by) if by else "system"
        return cls.objects.create(
            contact_center=center,
            actor=actor,
            api_key=api_key,
            actor_repr=actor_repr[:255],
            action=action,
            target_type=target._meta.label_lower,
            target_id=str(target.pk),
            target_repr=str(target)[:255],
            changes=changes or {},
        )


def _show(value: Any, names: dict[str, str]) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(names.get(str(item), str(item)) for item in value) or "—"
    return names.get(str(value), str(value))
