"""allauth adapters: Kontor has no open sign-up, and sign-in throttling that
stops attackers, not colleagues.

People join through an invitation from HR. Only when ``KONTOR_SIGNUP_DOMAINS``
is set may someone with a verified address at one of those domains sign up on
their own (by password or through the company's single sign-on).

Sign-in throttling (allauth's ``login_failed`` limit, set in
``config.settings.ACCOUNT_RATE_LIMITS``) counts failed passwords only, per
address and per (account, address):

- allauth counts an attempt *before* the password is checked and gives it back
  when it succeeds, so colleagues behind one NAT address who sign in at the same
  moment use the failure budget up and get "Too many failed login attempts". Here
  an attempt only checks the budget; a failure is recorded after the check.
- allauth's per-account lockout is keyed by the account alone, so anyone
  anywhere can lock a person out with five wrong passwords. Here the key is the
  account *and* the address: an attacker locks out only themselves, and the
  owner still signs in from their own address.
"""

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.internal import ratelimit
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest


def email_domain_allowed(email: str) -> bool:
    domain = email.rsplit("@", 1)[-1].strip().lower()
    return domain in settings.KONTOR_SIGNUP_DOMAINS


LOGIN_RATE_APP = "allauth.account"
LOGIN_FAILED = "login_failed"


class AccountAdapter(DefaultAccountAdapter):
    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # (account, address): five wrong passwords from elsewhere lock out that
        # address, never the person (allauth keys this by the account alone).
        account = super()._get_login_attempts_cache_key(request, **credentials)
        return f"{account}|{ratelimit.get_ip(request)}"

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        # Check the failure budget without spending it: an attempt whose password
        # is still being checked is not a failure (allauth's own consumes here).
        self._login_failed_rl_usage = None
        allowed = ratelimit.consume(
            request,
            app=LOGIN_RATE_APP,
            action=LOGIN_FAILED,
            key=self._get_login_attempts_cache_key(request, **credentials),
            dry_run=True,
        )
        if not allowed:
            raise self.validation_error("too_many_login_attempts")

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        # Only a wrong password (or unknown address) spends the budget.
        ratelimit.consume(
            request,
            app=LOGIN_RATE_APP,
            action=LOGIN_FAILED,
            key=self._get_login_attempts_cache_key(request, **credentials),
        )
        super().authentication_failed(request, **credentials)

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
