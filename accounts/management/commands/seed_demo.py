"""A believable small company to look around in: `manage.py seed_demo`.

Idempotent: people and departments that exist are left as they are (passwords
included); only what is missing is created. New people get the password from
--password, KONTOR_DEMO_PASSWORD, or a generated one that is printed once.
"""

import os
import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from accounts import roles, services
from accounts.models import User

DOMAIN = "nordlicht.example"

DEPARTMENTS = ["Management", "Sales", "Operations", "Finance", "People & Culture", "Legal & Compliance", "IT"]

# (local part, name, title, department, roles, heads the department)
PEOPLE = [
    ("katrin.vogel", "Katrin Vogel", "Managing Director", "Management", (), True),
    ("jonas.becker", "Jonas Becker", "Head of Sales", "Sales", (), True),
    ("amira.haddad", "Amira Haddad", "Key Account Manager", "Sales", (), False),
    ("lukas.meyer", "Lukas Meyer", "Sales Representative", "Sales", (), False),
    ("sofia.romano", "Sofia Romano", "Head of Operations", "Operations", (), True),
    ("tobias.wagner", "Tobias Wagner", "Dispatcher", "Operations", (), False),
    ("elena.petrova", "Elena Petrova", "Warehouse Lead", "Operations", (), False),
    ("markus.klein", "Markus Klein", "Head of Finance", "Finance", (), True),
    ("hannah.schulz", "Hannah Schulz", "Accountant", "Finance", (), False),
    ("nina.hoffmann", "Nina Hoffmann", "HR Manager", "People & Culture", (roles.HR,), True),
    ("david.okafor", "David Okafor", "Compliance Officer", "Legal & Compliance", (roles.AUDITORS,), True),
    ("felix.braun", "Felix Braun", "IT Administrator", "IT", (), True),
]


class Command(BaseCommand):
    help = "Create a demo company (departments and a dozen people, one HR user, one auditor)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", help="Password for newly created demo people.")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        password = (
            options.get("password")
            or os.environ.get("KONTOR_DEMO_PASSWORD")
            or f"demo-{secrets.token_urlsafe(9)}"
        )
        departments = {name: services.department_ensure(name=name) for name in DEPARTMENTS}
        created: list[User] = []
        for local, name, title, department, role_names, heads in PEOPLE:
            email = f"{local}@{DOMAIN}"
            user = User.objects.filter(email=email).first()
            if user is None:
                user = services.user_create(
                    email=email,
                    password=password,
                    display_name=name,
                    job_title=title,
                    department=departments[department],
                    role_names=role_names,
                )
                created.append(user)
            dept = departments[department]
            if heads and dept.head_id is None:
                services.department_set_head(department=dept, head=user)
        if created:
            self.stdout.write(self.style.SUCCESS(f"Created {len(created)} demo people at @{DOMAIN}."))
            self.stdout.write(f"  password for each: {password}")
            self.stdout.write(f"  HR:      nina.hoffmann@{DOMAIN}")
            self.stdout.write(f"  auditor: david.okafor@{DOMAIN}")
        else:
            self.stdout.write(f"The demo company exists already ({len(PEOPLE)} people at @{DOMAIN}).")
