"""In the browser: an administrator invites a new address and revokes another; the invited person
opens the e-mailed link, names themselves, chooses a password and lands in the center."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from tests.factories import PASSWORD, make_center
from voiso_byob.models import Invitation, Membership, User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LINK = re.compile(r"https?://[^/\s]+(/invitations/[A-Za-z0-9_-]+/)")


def link_for(email: str) -> str:
    message = next(m for m in reversed(mail.outbox) if m.to == [email])
    return LINK.search(message.body).group(1)


def invite(page, email: str) -> None:
    page.goto("/members/")
    page.click("text=Invite member")
    page.fill("input[name=email]", email)
    page.select_option("select[name=role]", "agent")
    page.click("button:has-text('Send invitation')")
    page.wait_for_url("**/members/")


def test_invite_accept_and_revoke(browser_page) -> None:
    make_center("acme", name="Acme Support", admin_email="admin@acme.example")
    page = browser_page
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "admin@acme.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")

    invite(page, "nia@example.org")
    assert "Invitation sent to nia@example.org as Agent." in page.locator("body").inner_text()
    row = page.locator("section[aria-labelledby=invitations-title] tr", has_text="nia@example.org")
    assert "Pending" in row.inner_text()
    assert not User.objects.filter(email="nia@example.org").exists()

    # The invited person, in a browser of their own.
    newcomer = page.context.browser.new_context(base_url=page.url.split("/members/")[0])
    other = newcomer.new_page()
    other.goto(link_for("nia@example.org"))
    assert other.locator("h1").inner_text() == "Join Acme Support"
    other.fill("input[name=full_name]", "Nia Newcomer")
    other.fill("input[name=password]", "a-brand-new-passphrase-77")
    other.fill("input[name=password_again]", "a-brand-new-passphrase-77")
    other.click("button:has-text('Create account and join')")
    other.wait_for_url("**/profile/")  # an agent's home page
    assert "Welcome to Acme Support." in other.locator("body").inner_text()
    assert Membership.objects.get(user__email="nia@example.org").contact_center.slug == "acme"

    page.reload()
    assert page.locator("#list tr", has_text="nia@example.org").count() == 1
    assert page.locator("section[aria-labelledby=invitations-title]").count() == 0

    # A revoked invitation's link says so.
    invite(page, "sam@example.org")
    revoked_link = link_for("sam@example.org")
    page.locator("tr", has_text="sam@example.org").locator("button:has-text('Revoke')").click()
    page.wait_for_url("**/members/")
    assert "Invitation of sam@example.org revoked" in page.locator("body").inner_text()
    assert Invitation.objects.get(email="sam@example.org").revoked_at is not None
    stranger = newcomer.new_page()
    response = stranger.goto(revoked_link)
    assert response is not None and response.status == 410
    assert "This invitation was withdrawn by the contact center." in stranger.locator("body").inner_text()
    newcomer.close()
