"""Writes on the core models. Each is atomic and records an AuditEvent."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, models, transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from phonenumbers import SUPPORTED_REGIONS

from voiso_byob.api_key_cache import forget_api_keys
from voiso_byob.cache import bump_telephony_generation
from voiso_byob.errors import DomainError
from voiso_byob.models import (
    ALLOWED_DESTINATION_RE,
    SLUG_RE,
    ApiKey,
    ApiKeyScope,
    AuditEvent,
    ContactCenter,
    Extension,
    ExtensionKind,
    ExternalTransferPolicy,
    Invitation,
    InvitationStatus,
    Membership,
    NumberType,
    Role,
    User,
)

logger = logging.getLogger(__name__)

Actor = Any  # a User, an ApiKey, or a label such as "manage.py" for scripts


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"from": old, "to": new}} for the fields that changed; the audit log's payload."""
    return {
        key: {"from": before.get(key), "to": value}
        for key, value in after.items()
        if before.get(key) != value
    }


def unique_name(
    value: str,
    *,
    among: QuerySet[Any],
    field: str,
    what: str,
    exclude: models.Model | None = None,
    max_length: int = 100,
) -> str:
    """A trimmed, non-empty name no other row of `among` has (case-insensitively), or DomainError.

    `among` is already scoped to the contact center; `what` names the thing in messages.
    """
    value = (value or "").strip()
    if not value:
        raise DomainError("required", f"Give the {what} a {field}.", field=field)
    if len(value) > max_length:
        raise DomainError("invalid", f"A {what} {field} is at most {max_length} characters.", field=field)
    clash = among.filter(**{f"{field}__iexact": value})
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists():
        raise DomainError(
            f"{field}_taken", f"{_article(what)} {what} {_verb(field)} {value!r} already exists.", field=field
        )
    return value


def _article(word: str) -> str:
    return "An" if word[0] in "aeiou" else "A"


def _verb(field: str) -> str:
    return {"name": "named", "label": "labelled"}.get(field, f"with the {field}")


def bump_routing_revision(center: ContactCenter) -> None:
    """Tell every process's flow cache that a route target changed (see ContactCenter.routing_revision)."""
    ContactCenter.objects.filter(pk=center.pk).update(routing_revision=F("routing_revision") + 1)
    bump_telephony_generation()


# --- extensions --------------------------------------------------------------------------


def claim_extension(*, center: ContactCenter, digits: str, kind: ExtensionKind) -> Extension:
    """Reserve `digits` in the center's number space, or raise `extension_taken`.

    The unique constraint on (contact_center, digits) is the arbiter: two
    concurrent claims of the same digits cannot both commit, whatever the
    pre-checks saw. The savepoint keeps the caller's transaction usable.
    """
    center.validate_extension_digits(digits)
    try:
        with transaction.atomic():
            extension = Extension.objects.create(contact_center=center, digits=digits, kind=kind)
    except IntegrityError:
        raise _extension_taken(digits) from None
    bump_routing_revision(center)
    return extension


def _extension_taken(digits: str) -> DomainError:
    return DomainError("extension_taken", f"Extension {digits} is already in use.", field="extension")


def set_extension(
    *, center: ContactCenter, current: Extension | None, digits: str | None, kind: ExtensionKind
) -> Extension | None:
    """Give an owner the extension `digits` (None or "" removes it). Returns the new extension.

    Renumbering keeps the row (owners keep pointing at it) and lets the unique
    constraint reject a taken number.
    """
    digits = (digits or "").strip()
    if not digits:
        if current is not None:
            current.delete()
            bump_routing_revision(center)
        return None
    if current is None:
        return claim_extension(center=center, digits=digits, kind=kind)
    if current.digits == digits:
        return current
    center.validate_extension_digits(digits)
    try:
        with transaction.atomic():
            Extension.objects.filter(pk=current.pk).update(digits=digits)
    except IntegrityError:
        raise _extension_taken(digits) from None
    current.digits = digits
    bump_routing_revision(center)
    return current


# --- contact centers ---------------------------------------------------------------------


@transaction.atomic
def create_contact_center(
    *,
    slug: str,
    name: str,
    admin_email: str,
    admin_password: str | None,
    byob_enabled: bool = False,
    timezone_name: str = "UTC",
    extension_length: int = 4,
    by: Actor = "system",
) -> ContactCenter:
    slug = slug.strip().lower()
    if not SLUG_RE.fullmatch(slug):
        raise DomainError(
            "invalid_slug",
            "The slug must be one DNS label: lower-case letters, digits and inner hyphens.",
            field="slug",
        )
    if ContactCenter.objects.filter(slug=slug).exists():
        raise DomainError("slug_taken", f"A contact center with slug {slug!r} exists.", field="slug")
    center = ContactCenter(
        slug=slug,
        name=name.strip() or slug,
        byob_enabled=byob_enabled,
        timezone=timezone_name,
        extension_length=extension_length,
    )
    try:
        center.full_clean()
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise DomainError("invalid", messages[0], field=field) from None
    center.save()
    AuditEvent.record(
        center=center,
        by=by,
        action="contact_center.created",
        target=center,
        changes={"slug": slug, "name": center.name, "byob_enabled": byob_enabled},
    )
    add_member(center=center, email=admin_email, role=Role.ADMINISTRATOR, password=admin_password, by=by)
    return center


# --- members -----------------------------------------------------------------------------


def _normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if len(email) > 254:
        raise DomainError("invalid_email", "Email addresses are at most 254 characters.", field="email")
    try:
        validate_email(email)
    except ValidationError:
        raise DomainError("invalid_email", "Enter a valid email address.", field="email") from None
    return email


@transaction.atomic
def add_member(
    *,
    center: ContactCenter,
    email: str,
    role: str,
    by: Actor,
    extension: str | None = None,
    password: str | None = None,
    full_name: str = "",
) -> Membership:
    """Add a person to a contact center at once, creating their account if the email is new.

    For staff and scripts (create_contact_center, seed_demo, tests' factories), who see every
    account anyway. A center's administrators invite instead (invite_member): they must not learn
    whether an address has an account, nor change anything of the person before they accept.
    A password may only be set for a new account.
    """
    email = _normalise_email(email)
    if role not in Role.values:
        raise DomainError("invalid_role", f"Role must be one of {', '.join(Role.values)}.", field="role")
    user = User.objects.filter(email=email).first()
    if user is None:
        if password:
            try:
                validate_password(password, User(email=email, full_name=full_name))
            except ValidationError as exc:
                raise DomainError("weak_password", " ".join(exc.messages), field="password") from None
        user = User.objects.create_user(email, password or None, full_name=full_name.strip())
    else:
        if password:
            raise DomainError(
                "password_not_allowed",
                "This email already has an account; its owner keeps their own password.",
                field="password",
            )
        if Membership.objects.filter(user=user, contact_center=center).exists():
            raise DomainError(
                "already_member", f"{email} is already a member of this contact center.", field="email"
            )
    ext = set_extension(center=center, current=None, digits=extension, kind=ExtensionKind.AGENT)
    membership = Membership.objects.create(user=user, contact_center=center, role=role, extension=ext)
    AuditEvent.record(
        center=center,
        by=by,
        action="member.added",
        target=membership,
        changes={"email": email, "role": role, "extension": ext.digits if ext else None},
    )
    return membership


# --- invitations -------------------------------------------------------------------------
# Administrators add people by inviting an e-mail address. Until the person accepts, nothing of
# theirs changes, and the administrator learns nothing about the address: the answer, the audit
# row and the e-mail are the same whether it has an account (in any center) or not.


def portal_url_for(request: HttpRequest) -> str:
    """The scheme and host e-mailed links start with: PORTAL_URL, else the request's own."""
    return settings.PORTAL_URL or request.build_absolute_uri("/").rstrip("/")


@transaction.atomic
def invite_member(
    *, center: ContactCenter, email: str, role: str, by: Actor, portal_url: str
) -> tuple[Invitation, bool]:
    """Invite `email` to `center` as `role` and e-mail them a link; returns (invitation, is_new).

    Inviting an address that has an open invitation here (a retried request, a changed role)
    refreshes that one: new role, new link, new expiry, e-mailed again. `portal_url` is the
    scheme and host the link starts with.
    """
    email = _normalise_email(email)
    if role not in Role.values:
        raise DomainError("invalid_role", f"Role must be one of {', '.join(Role.values)}.", field="role")
    # Only this center's own members are named: the administrator sees them on the Members page.
    if Membership.objects.for_center(center).filter(user__email=email).exists():
        raise DomainError(
            "already_member", f"{email} is already a member of this contact center.", field="email"
        )
    raw, hashed = Invitation.generate_token()
    now = timezone.now()
    fields = {
        "role": role,
        "hashed_token": hashed,
        "sent_at": now,
        "expires_at": now + timedelta(days=settings.INVITATION_DAYS),
        "invited_by": by if isinstance(by, User) else None,
    }
    # Lock the open invitation: two refreshes at once must leave one link working, not neither.
    invitation = Invitation.objects.select_for_update().for_center(center).open().filter(email=email).first()
    is_new = invitation is None
    if is_new:
        try:
            with transaction.atomic():
                invitation = Invitation.objects.create(contact_center=center, email=email, **fields)
        except IntegrityError:
            # A concurrent invite of the same address committed first (the one-open constraint).
            invitation = Invitation.objects.select_for_update().for_center(center).open().get(email=email)
            is_new = False
    if not is_new:
        for name, value in fields.items():
            setattr(invitation, name, value)
        invitation.save(update_fields=[*fields])
    AuditEvent.record(
        center=center,
        by=by,
        action="invitation.sent" if is_new else "invitation.resent",
        target=invitation,
        changes={"email": email, "role": role},
    )
    _mail_invitation_on_commit(invitation=invitation, raw_token=raw, by=by, portal_url=portal_url)
    return invitation, is_new


@transaction.atomic
def resend_invitation(*, invitation: Invitation, by: Actor, portal_url: str) -> Invitation:
    """A new link (the old one stops working) and a new expiry, e-mailed again."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at or invitation.revoked_at:
        raise DomainError("invitation_closed", "This invitation was already accepted or revoked.", status=409)
    center = invitation.contact_center
    refreshed, _ = invite_member(
        center=center, email=invitation.email, role=invitation.role, by=by, portal_url=portal_url
    )
    return refreshed


@transaction.atomic
def revoke_invitation(*, invitation: Invitation, by: Actor) -> Invitation:
    # Locked: a revoke racing the person's acceptance is one or the other, never both.
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise DomainError(
            "invitation_accepted", "This invitation was accepted: remove the member instead.", status=409
        )
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        AuditEvent.record(
            center=invitation.contact_center,
            by=by,
            action="invitation.revoked",
            target=invitation,
            changes={"email": invitation.email, "role": invitation.role},
        )
    return invitation


def invitation_refusal(invitation: Invitation) -> DomainError | None:
    """Why the link cannot be used (revoked, expired, already used), or None."""
    status = invitation.status()
    if status == InvitationStatus.REVOKED:
        return DomainError(
            "invitation_revoked", "This invitation was withdrawn by the contact center.", status=410
        )
    if status == InvitationStatus.EXPIRED:
        return DomainError(
            "invitation_expired",
            "This invitation has expired. Ask the contact center's administrator to send it again.",
            status=410,
        )
    if status == InvitationStatus.ACCEPTED:
        return DomainError("invitation_accepted", "This invitation has already been accepted.", status=410)
    return None


@transaction.atomic
def accept_invitation(*, invitation: Invitation, user: User) -> Membership:
    """The signed-in person, owner of the invited address, joins the center.

    Their sessions stay in the center they are working in: they switch when they choose to.
    """
    invitation = Invitation.objects.select_for_update().select_related("contact_center").get(pk=invitation.pk)
    # Checked under the lock: a link followed twice at once joins once.
    refusal = invitation_refusal(invitation)
    if refusal is not None:
        raise refusal
    if user.email != invitation.email:
        raise DomainError(
            "wrong_account",
            f"This invitation is for {invitation.email}; you are signed in as {user.email}.",
            status=403,
        )
    return _join(invitation=invitation, user=user)


@transaction.atomic
def create_account_from_invitation(*, invitation: Invitation, full_name: str, password: str) -> Membership:
    """For an address with no account yet: the person names themselves and chooses a password;
    the account and the membership are created together."""
    invitation = Invitation.objects.select_for_update().select_related("contact_center").get(pk=invitation.pk)
    refusal = invitation_refusal(invitation)
    if refusal is not None:
        raise refusal
    full_name = (full_name or "").strip()
    if len(full_name) > 150:
        raise DomainError("invalid", "A name is at most 150 characters.", field="full_name")
    try:
        validate_password(password, User(email=invitation.email, full_name=full_name))
    except ValidationError as exc:
        raise DomainError("weak_password", " ".join(exc.messages), field="password") from None
    account_exists = DomainError(
        "account_exists", f"{invitation.email} has an account now: sign in to accept.", status=409
    )
    if User.objects.filter(email=invitation.email).exists():
        raise account_exists
    try:
        with transaction.atomic():
            user = User.objects.create_user(invitation.email, password, full_name=full_name)
    except IntegrityError:
        # The same address signed up through another center's invitation a moment ago.
        raise account_exists from None
    return _join(invitation=invitation, user=user)


def _join(*, invitation: Invitation, user: User) -> Membership:
    center = invitation.contact_center
    # Added by other means since the invite (a staff script): the invitation is used up, no second row.
    membership = Membership.objects.filter(user=user, contact_center=center).first()
    if membership is None:
        membership = Membership.objects.create(user=user, contact_center=center, role=invitation.role)
        AuditEvent.record(
            center=center,
            by=user,
            action="member.added",
            target=membership,
            changes={"email": user.email, "role": membership.role, "extension": None},
        )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    AuditEvent.record(
        center=center,
        by=user,
        action="invitation.accepted",
        target=invitation,
        changes={"email": invitation.email, "role": membership.role},
    )
    return membership


def _mail_invitation_on_commit(*, invitation: Invitation, raw_token: str, by: Actor, portal_url: str) -> None:
    center = invitation.contact_center
    link = f"{portal_url.rstrip('/')}{reverse('invitation_accept', args=[raw_token])}"
    # One text for every address: whether it has an account shows only where the link lands.
    context = {
        "center": center,
        "role": invitation.get_role_display(),
        "inviter": by.display_name if isinstance(by, User) else f"An administrator of {center.name}",
        "link": link,
        "days": settings.INVITATION_DAYS,
    }
    subject = f"You are invited to {center.name}"
    body = render_to_string("voiso_byob/invitation_email.txt", context)
    email = invitation.email
    # After commit, so a rolled-back invite sends nothing; robust, so a mail server that fails
    # leaves the invitation stored (and logged) for the administrator to resend.
    transaction.on_commit(lambda: send_mail(subject, body, None, [email]), robust=True)


def _lock_administrators(center: ContactCenter) -> int:
    # Two administrators demoting each other at once must not leave the center
    # with none: lock the administrator rows before counting them.
    return len(list(Membership.objects.select_for_update().for_center(center).administrators()))


@transaction.atomic
def update_member(
    *,
    membership: Membership,
    by: Actor,
    role: str | None = None,
    extension: str | type[Ellipsis] | None = ...,
    full_name: str | None = None,
) -> Membership:
    center = membership.contact_center
    before = {
        "role": membership.role,
        "extension": _digits(membership.extension),
        "full_name": membership.user.full_name,
    }
    if role is not None and role != membership.role:
        if role not in Role.values:
            raise DomainError("invalid_role", f"Role must be one of {', '.join(Role.values)}.", field="role")
        if membership.role == Role.ADMINISTRATOR and _lock_administrators(center) <= 1:
            raise DomainError(
                "last_administrator",
                "A contact center needs at least one administrator.",
                field="role",
            )
        membership.role = role
    if extension is not ...:
        if not (extension or "").strip() and membership.extension_id:
            queues = list(membership.queues.values_list("name", flat=True))
            if queues:
                raise DomainError(
                    "extension_in_use",
                    f"{membership.user.email} is a member of {', '.join(sorted(queues))}; a queue cannot "
                    "ring someone without an extension. Take them out of those queues first.",
                    field="extension",
                )
        membership.extension = set_extension(
            center=center, current=membership.extension, digits=extension, kind=ExtensionKind.AGENT
        )
    if full_name is not None and full_name.strip() != membership.user.full_name:
        # The name is the person's, seen by every center they work for: an administrator of one
        # may name an account only while it belongs to their center alone (and not to anyone
        # but the person once it is shared: they rename themselves on their profile page).
        is_shared = Membership.objects.filter(user=membership.user).exclude(contact_center=center).exists()
        if is_shared and by != membership.user:
            raise DomainError(
                "shared_profile",
                f"{membership.user.email} also works for another contact center; only they can change "
                "their name (on their profile page).",
                field="full_name",
                status=403,
            )
        membership.user.full_name = full_name.strip()
        membership.user.save(update_fields=["full_name"])
    membership.save(update_fields=["role", "extension"])
    after = {
        "role": membership.role,
        "extension": _digits(membership.extension),
        "full_name": membership.user.full_name,
    }
    changes = diff(before, after)
    if changes:
        AuditEvent.record(center=center, by=by, action="member.updated", target=membership, changes=changes)
    return membership


@transaction.atomic
def update_own_profile(*, user: User, center: ContactCenter, full_name: str) -> User:
    """The person renames themselves (shared by every center they work for); audited in `center`,
    where they did it."""
    full_name = (full_name or "").strip()
    if len(full_name) > 150:
        raise DomainError("invalid", "A name is at most 150 characters.", field="full_name")
    if full_name != user.full_name:
        changes = diff({"full_name": user.full_name}, {"full_name": full_name})
        user.full_name = full_name
        user.save(update_fields=["full_name"])
        AuditEvent.record(center=center, by=user, action="user.profile_updated", target=user, changes=changes)
    return user


@transaction.atomic
def remove_member(*, membership: Membership, by: Actor) -> None:
    center = membership.contact_center
    if membership.role == Role.ADMINISTRATOR and _lock_administrators(center) <= 1:
        raise DomainError("last_administrator", "A contact center needs at least one administrator.")
    AuditEvent.record(
        center=center,
        by=by,
        action="member.removed",
        target=membership,
        changes={
            "email": membership.user.email,
            "role": membership.role,
            "extension": _digits(membership.extension),
        },
    )
    extension = membership.extension
    membership.delete()
    if extension is not None:
        extension.delete()
        bump_routing_revision(center)


def _digits(extension: Extension | None) -> str | None:
    return extension.digits if extension else None


# --- API keys ----------------------------------------------------------------------------


@transaction.atomic
def create_api_key(*, center: ContactCenter, name: str, scope: str, by: Actor) -> tuple[ApiKey, str]:
    """Create a key; returns it with the raw key, which is never retrievable again."""
    name = (name or "").strip()
    if not name:
        raise DomainError("required", "Give the key a name.", field="name")
    if scope not in ApiKeyScope.values:
        raise DomainError(
            "invalid_scope", f"Scope must be one of {', '.join(ApiKeyScope.values)}.", field="scope"
        )
    raw, prefix, hashed = ApiKey.generate()
    key = ApiKey.objects.create(
        contact_center=center,
        name=name[:100],
        scope=scope,
        prefix=prefix,
        hashed_key=hashed,
        created_by=by if isinstance(by, User) else None,
    )
    AuditEvent.record(
        center=center, by=by, action="api_key.created", target=key, changes={"name": key.name, "scope": scope}
    )
    return key, raw


@transaction.atomic
def revoke_api_key(*, key: ApiKey, by: Actor) -> ApiKey:
    # Lock the row: a double-clicked revoke must record one audit event.
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        # Now, and again after commit: a request between the two could re-cache the old row.
        forget_api_keys([key])
        transaction.on_commit(lambda: forget_api_keys([key]))
        AuditEvent.record(center=key.contact_center, by=by, action="api_key.revoked", target=key)
    return key


# --- external transfers (the toll-fraud guard) ------------------------------------------

MAX_ALLOWED_DESTINATIONS = 200


def _allowed_destinations(values: list[str]) -> list[str]:
    """Countries upper-cased and known to phonenumbers, prefixes as + and digits; order kept, no repeats."""
    entries: list[str] = []
    for raw in values:
        entry = raw.strip().replace(" ", "")
        entry = entry.upper() if entry[:1].isalpha() else entry
        if not ALLOWED_DESTINATION_RE.fullmatch(entry) or (
            not entry.startswith("+") and entry not in SUPPORTED_REGIONS
        ):
            raise DomainError(
                "invalid_destination",
                f"{raw[:40]!r} is neither a country code (GB, US) nor a number prefix (+4420).",
                field="allowed_destinations",
            )
        if entry not in entries:
            entries.append(entry)
    if len(entries) > MAX_ALLOWED_DESTINATIONS:
        raise DomainError(
            "too_many_destinations",
            f"At most {MAX_ALLOWED_DESTINATIONS} allowed destinations.",
            field="allowed_destinations",
        )
    return entries


@transaction.atomic
def update_external_transfers(
    *,
    center: ContactCenter,
    by: Actor,
    is_allowed: bool,
    allowed_destinations: list[str],
    denied_number_types: list[str],
    is_only_bot_targets: bool,
) -> ContactCenter:
    """Set whether and where calls may be handed to external numbers; audited, seen by every process."""
    unknown = [kind for kind in denied_number_types if kind not in NumberType.values]
    if unknown:
        raise DomainError(
            "invalid_number_type", f"Unknown number type {unknown[0][:40]!r}.", field="denied_number_types"
        )
    center = ContactCenter.objects.select_for_update().get(pk=center.pk)
    before = _external_settings(center)
    center.external_transfer_policy = (
        ExternalTransferPolicy.ALLOWED if is_allowed else ExternalTransferPolicy.BLOCKED
    )
    center.external_allowed_destinations = " ".join(_allowed_destinations(allowed_destinations))
    # Stored in the choices' order, so the same set is the same text (and no audit row).
    center.external_denied_number_types = " ".join(
        kind for kind in NumberType.values if kind in set(denied_number_types)
    )
    center.external_only_bot_targets = is_only_bot_targets
    changes = diff(before, _external_settings(center))
    if not changes:
        return center
    center.save(
        update_fields=[
            "external_transfer_policy",
            "external_allowed_destinations",
            "external_denied_number_types",
            "external_only_bot_targets",
        ]
    )
    AuditEvent.record(
        center=center,
        by=by,
        action="contact_center.external_transfers_updated",
        target=center,
        changes=changes,
    )
    # Compiled flows carry these rules, and API keys their center: both must be re-read everywhere.
    forget_api_keys(center.api_keys.all())
    bump_routing_revision(center)
    center.refresh_from_db(fields=["routing_revision"])
    return center


def _external_settings(center: ContactCenter) -> dict[str, Any]:
    return {
        "is_allowed": center.allows_external_transfers,
        "allowed_destinations": center.allowed_destinations,
        "denied_number_types": center.denied_number_types,
        "is_only_bot_targets": center.external_only_bot_targets,
    }
