"""allauth adapters: Kontor has no open sign-up.

People join through an invitation from HR. Only when ``KONTOR_SIGNUP_DOMAINS``
is set may someone with a verified address at one of those domains sign up on
their own (by password or through the company's single sign-on).
"""

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest


def email_domain_allowed(email: str) -> bool:
    domain = email.rsplit("@", 1)[-1].strip().lower()
    return domain in settings.KONTOR_SIGNUP_DOMAINS


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(settings.KONTOR_SIGNUP_DOMAINS)

    def clean_email(self, email: str) -> str:
        email = super().clean_email(email).strip().lower()
        if settings.KONTOR_SIGNUP_DOMAINS and not email_domain_allowed(email):
            domains = ", ".join(f"@{d}" for d in settings.KONTOR_SIGNUP_DOMAINS)
            raise ValidationError(f"Only company addresses ({domains}) can be used here.")
        return email


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: Any) -> bool:
        # Existing people are matched by their verified email and signed in; a
        # new account from SSO is made only for the company's own domains.
        email = getattr(sociallogin.user, "email", "") or ""
        return bool(settings.KONTOR_SIGNUP_DOMAINS) and email_domain_allowed(email)

    def populate_user(self, request: HttpRequest, sociallogin: Any, data: dict[str, Any]) -> Any:
        user = super().populate_user(request, sociallogin, data)
        name = data.get("name") or " ".join(
            part for part in (data.get("first_name"), data.get("last_name")) if part
        )
        if name and not user.display_name:
            user.display_name = name
        user.email = (user.email or "").lower()
        return user
