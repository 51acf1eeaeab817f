from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from voiso_byob.errors import DomainError
from voiso_byob.login_throttle import Lock, client_address, current_lock, lock_message
from voiso_byob.models import ApiKeyScope, ContactCenter, Role, User

T = TypeVar("T")


def run_service(form: forms.Form, call: Callable[[], T]) -> T | None:
    """Call a service; a DomainError becomes an error on the form field it names."""
    try:
        return call()
    except DomainError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return None


class ExtensionField(forms.CharField):
    def __init__(self, center: ContactCenter, **kwargs: object) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", f"{center.extension_length} digits, unique in this contact center.")
        super().__init__(max_length=20, strip=True, **kwargs)  # type: ignore[arg-type]
        self.widget.attrs.update({"inputmode": "numeric", "pattern": "[0-9]*", "autocomplete": "off"})


class MemberInviteForm(forms.Form):
    # The column's limit, not the form default (320): a longer address would fail in the database.
    email = forms.EmailField(
        max_length=User._meta.get_field("email").max_length,
        help_text="We e-mail them a link; they join when they accept it.",
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.AGENT)


class InvitationSignupForm(forms.Form):
    """A new address accepting: the person names themselves and chooses their password."""

    full_name = forms.CharField(max_length=150, required=False, label="Full name")
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False, label="Password"
    )
    password_again = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        strip=False,
        label="Password again",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("password") and data.get("password_again") and data["password"] != data["password_again"]:
            self.add_error("password_again", "The two passwords differ.")
        return data


class MemberEditForm(forms.Form):
    full_name = forms.CharField(max_length=150, required=False, label="Full name")
    role = forms.ChoiceField(choices=Role.choices)

    def __init__(self, *args: object, center: ContactCenter, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["extension"] = ExtensionField(center)


class ProfileForm(forms.Form):
    full_name = forms.CharField(
        max_length=150,
        required=False,
        label="Full name",
        help_text="Every contact center you work for sees it.",
    )


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Where the key is used, e.g. “Kamailio prod”.")
    scope = forms.ChoiceField(choices=ApiKeyScope.choices, initial=ApiKeyScope.TELEPHONY)


class ThrottledLoginMixin:
    """Says plainly why a sign-in was refused while the throttle (voiso_byob.login_throttle) holds."""

    lock: Lock | None = None

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")  # type: ignore[attr-defined]
        address = client_address(self.request)  # type: ignore[attr-defined]
        try:
            return super().clean()  # type: ignore[misc]
        except forms.ValidationError:
            # Locked before this attempt (nothing was checked) or by this very failure.
            self.lock = current_lock(username, address) if username else None
            if self.lock is None:
                raise
            raise forms.ValidationError(lock_message(self.lock), code="throttled") from None


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
