"""API authentication (Bearer API keys or the portal session) and the access rules.

The tenant is implied: by the key's contact center, or by the session's current one.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from voiso_byob import rate_limits
from voiso_byob.access import current_membership, has_unchosen_center
from voiso_byob.api_key_cache import cached_api_key, touch_api_key
from voiso_byob.models import ApiKey, ApiKeyScope, ContactCenter, User


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Authorization header must be 'Bearer <api key>'.", code="invalid_api_key"
            )
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        key = cached_api_key(ApiKey.prefix_of(raw))
        if key is None or not key.matches(raw):
            raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        if not key.is_active:
            raise exceptions.AuthenticationFailed("This API key has been revoked.", code="revoked_api_key")
        touch_api_key(key)
        return AnonymousUser(), key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


@dataclass(frozen=True)
class ApiAccess:
    center: ContactCenter
    can_read: bool
    can_write: bool
    is_telephony: bool
    by: User | ApiKey


def api_access(request: Request) -> ApiAccess | None:
    """What the caller may do, in which contact center; None when unauthenticated."""
    if hasattr(request, "_api_access"):
        return request._api_access  # type: ignore[attr-defined]
    access: ApiAccess | None = None
    if isinstance(request.auth, ApiKey):
        key = request.auth
        access = ApiAccess(
            center=key.contact_center,
            can_read=key.scope in (ApiKeyScope.READ, ApiKeyScope.ADMIN),
            can_write=key.scope == ApiKeyScope.ADMIN,
            is_telephony=key.scope == ApiKeyScope.TELEPHONY,
            by=key,
        )
    elif request.user and request.user.is_authenticated:
        membership = current_membership(request._request)
        if membership is not None:
            access = ApiAccess(
                center=membership.contact_center,
                can_read=membership.can_read_configuration,
                can_write=membership.can_configure,
                is_telephony=False,
                by=request.user,
            )
    request._api_access = access  # type: ignore[attr-defined]
    return access


def _require_authenticated(request: Request) -> ApiAccess:
    access = api_access(request)
    if access is None:
        if request.user and request.user.is_authenticated:
            if has_unchosen_center(request._request):
                raise exceptions.PermissionDenied(
                    "This session works in no contact center yet: choose one in the portal (/switch/)."
                )
            raise exceptions.PermissionDenied("You are not a member of any contact center.")
        raise exceptions.NotAuthenticated()
    return access


class ConfigurationAccess(BasePermission):
    """Reads for administrators, supervisors and read/admin keys; writes for administrators and admin keys."""

    def has_permission(self, request: Request, view: object) -> bool:
        access = _require_authenticated(request)
        allowed = access.can_read if request.method in SAFE_METHODS else access.can_write
        if not allowed:
            raise exceptions.PermissionDenied("Your role or API key scope does not allow this request.")
        return True


class TelephonyAccess(BasePermission):
    """The SIP layer's endpoints: API keys with the telephony scope only."""

    def has_permission(self, request: Request, view: object) -> bool:
        access = _require_authenticated(request)
        if not access.is_telephony:
            raise exceptions.PermissionDenied("This endpoint needs an API key with scope 'telephony'.")
        return True


class ReadOnlyPost(ConfigurationAccess):
    """A POST that changes nothing and contacts nothing: readers may use it.

    Read keys read: a POST is open to them only when it is a pure computation over what they could
    GET anyway (flow `validate` checks a posted graph against the center's queues and bots). A
    view that could make the server send a request (`simulate`'s http_request nodes) must check
    `api_access(request).can_write` before doing so.
    """

    def has_permission(self, request: Request, view: object) -> bool:
        access = _require_authenticated(request)
        if not access.can_read:
            raise exceptions.PermissionDenied("Your role or API key scope does not allow this request.")
        return True


class ApiKeyRateThrottle(BaseThrottle):
    """The key's token bucket (voiso_byob.rate_limits) for every DRF request made with an API key.

    DRF runs throttles after authentication and permissions, before the view: a refused request
    changes nothing. Portal sessions are not limited here.
    """

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: object) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True
        try:
            rate_limits.check(key.pk, key.scope)
        except rate_limits.RateLimited as exc:
            self._wait = exc.wait
            return False
        return True

    def wait(self) -> float | None:
        return self._wait
