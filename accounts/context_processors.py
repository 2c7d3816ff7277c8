from django.conf import settings
from django.http import HttpRequest

from accounts import roles


def kontor(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    role_names: set[str] = set()
    if user is not None and user.is_authenticated:
        role_names = {g.name for g in user.groups.all()}
    return {
        "company_name": settings.KONTOR_COMPANY_NAME,
        "user_is_hr": roles.HR in role_names,
        "user_is_auditor": roles.AUDITORS in role_names,
        "sso_enabled": bool(settings.SOCIALACCOUNT_PROVIDERS),
        "signup_open": bool(settings.KONTOR_SIGNUP_DOMAINS),
    }
