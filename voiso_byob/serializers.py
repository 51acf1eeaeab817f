from __future__ import annotations

from typing import Any

from rest_framework import serializers

from voiso_byob.models import Invitation, InvitationStatus, Membership, Role, User

PASSWORD_REFUSAL = "Passwords are chosen by their owner: a new account's when they accept the invitation."


def refuse_keys(serializer: serializers.Serializer, refusals: dict[str, tuple[str, str]]) -> None:
    """A 400 naming each of `refusals`' keys present in the body (key → (code, message)).

    These keys are not fields (the schema does not offer them), but clients written for the
    former API send them: silently dropping a password or an extension would mislead them.
    """
    data = serializer.initial_data if isinstance(serializer.initial_data, dict) else {}
    errors = {
        key: [serializers.ErrorDetail(message, code=code)]
        for key, (code, message) in refusals.items()
        if key in data
    }
    if errors:
        raise serializers.ValidationError(errors)


class MemberSerializer(serializers.ModelSerializer):
    # The column's limit, not RFC 5321's 320: a longer address is a 400 here, not a DataError later.
    email = serializers.EmailField(source="user.email", max_length=User._meta.get_field("email").max_length)
    full_name = serializers.CharField(
        source="user.full_name", required=False, allow_blank=True, max_length=150
    )
    role = serializers.ChoiceField(choices=Role.choices)
    extension = serializers.CharField(
        source="extension.digits", required=False, allow_null=True, allow_blank=True, max_length=20
    )

    class Meta:
        model = Membership
        fields = ["id", "email", "full_name", "role", "extension", "created"]
        read_only_fields = ["id", "created"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        refuse_keys(self, {"password": ("password_not_allowed", PASSWORD_REFUSAL)})
        if self.instance is not None:
            # `user` also carries full_name: a PATCH of the name alone sends no email at all.
            email = attrs.get("user", {}).get("email")
            if email is not None and email.lower() != self.instance.user.email:
                raise serializers.ValidationError(
                    {"email": ["A member's email cannot be changed; remove and re-add them."]},
                    code="immutable",
                )
        return attrs


class InviteSerializer(serializers.Serializer):
    """Who to invite, and as what. The person gives their own name and password when accepting."""

    email = serializers.EmailField(max_length=User._meta.get_field("email").max_length)
    role = serializers.ChoiceField(choices=Role.choices)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Refused before the address is looked at: the same 400 whether it has an account or not.
        refuse_keys(
            self,
            {
                "password": ("password_not_allowed", PASSWORD_REFUSAL),
                "full_name": (
                    "not_accepted",
                    "A name is the person's own: they give it when they accept the invitation.",
                ),
                "extension": ("not_accepted", "Give an extension once they have joined (PATCH the member)."),
            },
        )
        return attrs


class InvitationSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=InvitationStatus.choices, read_only=True)
    invited_by = serializers.EmailField(
        source="invited_by.email",
        read_only=True,
        allow_null=True,
        help_text="Null when sent with an API key.",
    )

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "invited_by", "created", "sent_at", "expires_at"]
        read_only_fields = fields
