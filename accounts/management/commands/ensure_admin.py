"""Create the first administrator if there is none, and say how to sign in.

The email and password come from KONTOR_ADMIN_EMAIL / KONTOR_ADMIN_PASSWORD, or
a password is generated and printed once. Later runs change nothing.
"""

import os
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.models import User


class Command(BaseCommand):
    help = "Create the first administrator when none exists (prints the credentials once)."

    def handle(self, *args: Any, **options: Any) -> None:
        existing = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if existing is not None:
            self.stdout.write(f"Administrator: {existing.email} (password as set before)")
            return
        email = os.environ.get("KONTOR_ADMIN_EMAIL", "").strip() or "admin@kontor.localhost"
        password = os.environ.get("KONTOR_ADMIN_PASSWORD", "") or secrets.token_urlsafe(12)
        try:
            services.user_create(
                email=email, password=password, display_name="Administrator", is_superuser=True
            )
        except ValidationError as error:
            raise CommandError(
                f"KONTOR_ADMIN_EMAIL / KONTOR_ADMIN_PASSWORD are not accepted: {' '.join(error.messages)}"
            ) from None
        self.stdout.write(self.style.SUCCESS("Created the first administrator:"))
        self.stdout.write(f"  email:    {email}")
        self.stdout.write(f"  password: {password}")
        if "KONTOR_ADMIN_PASSWORD" not in os.environ:
            self.stdout.write("  (shown only this once: note it, or change it after signing in)")
