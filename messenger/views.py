from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.selectors import user_has_mfa


@login_required
def home(request: HttpRequest) -> HttpResponse:
    mfa_enabled = user_has_mfa(user=request.user)  # type: ignore[arg-type]
    return render(request, "messenger/home.html", {"mfa_enabled": mfa_enabled})
