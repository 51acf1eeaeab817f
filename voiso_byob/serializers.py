from __future__ import annotations

from typing import Any

from rest_framework import serializers

from voiso_byob.models import Membership, Role, User


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
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=128,
        style={"input_type": "password"},
        help_text="Only for a new account.",
    )

    class Meta:
        model = Membership
        fields = ["id", "email", "full_name", "role", "extension", "password", "created"]
        read_only_fields = ["id", "created"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None:
            # `user` also carries full_name: a PATCH of the name alone sends no email at all.
            email = attrs.get("user", {}).get("email")
            if email is not None and email.lower() != self.instance.user.email:
                raise serializers.ValidationError(
                    {"email": ["A member's email cannot be changed; remove and re-add them."]},
                    code="immutable",
                )
            if attrs.get("password"):
                raise serializers.ValidationError(
                    {"password": ["Passwords are changed by their owner."]}, code="password_not_allowed"
                )
        return attrs
