"""A believable small company to look around in: `manage.py seed_demo`.

It lives in config, above every app, since it makes people (accounts) and
their conversations (messenger).

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
from messenger import services as chat
from messenger.models import Conversation

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


CHANNELS = [
    ("general", "Company-wide news and questions", None),
    ("sales-team", "Pipeline, offers and customer visits", ["jonas.becker", "amira.haddad", "lukas.meyer"]),
    (
        "warehouse-nord",
        "Shifts, deliveries and stock at the Hamburg warehouse",
        ["sofia.romano", "tobias.wagner", "elena.petrova"],
    ),
]

# (channel or "dm:<a>:<b>", author, body)
MESSAGES = [
    (
        "general",
        "katrin.vogel",
        "Welcome to Kontor, everyone! From today our business chats live here, not on WhatsApp.",
    ),
    (
        "general",
        "felix.braun",
        "Tip: type `@` and a name to mention a colleague, and **Markdown** works too.",
    ),
    (
        "general",
        "nina.hoffmann",
        "New colleagues get their invitation by email. Questions about your account? Ask me.",
    ),
    (
        "sales-team",
        "jonas.becker",
        "Nordhafen Shipping wants the revised offer by Friday. @amira.haddad can you take it?",
    ),
    ("sales-team", "amira.haddad", "On it. I'll use the new payment terms from finance."),
    ("sales-team", "lukas.meyer", "Brandt & Söhne confirmed the pilot: 15 units in September."),
    (
        "warehouse-nord",
        "sofia.romano",
        "If the pilot starts in September we need to reserve capacity now. @channel",
    ),
    ("warehouse-nord", "tobias.wagner", "Dock 3 is free from the 2nd; I'll block it."),
    (
        "dm:katrin.vogel:jonas.becker",
        "jonas.becker",
        "Do you have 10 minutes for the Nordhafen numbers before the call?",
    ),
    ("dm:katrin.vogel:jonas.becker", "katrin.vogel", "Yes, at 14:30."),
]


def _seed_conversations() -> bool:
    """Channels, a group and a direct conversation with a few messages (once)."""
    if Conversation.objects.filter(kind=Conversation.Kind.CHANNEL, name="general").exists():
        return False
    people = {u.email.split("@")[0]: u for u in User.objects.filter(email__endswith=f"@{DOMAIN}")}
    founder = people["katrin.vogel"]
    conversations = {}
    for name, topic, members in CHANNELS:
        member_ids = [p.pk for p in people.values()] if members is None else [people[m].pk for m in members]
        conversations[name] = chat.channel_create(
            actor=founder, name=name, topic=topic, member_ids=member_ids
        )
    group = chat.group_create(
        actor=people["markus.klein"],
        name="Trade fair Hamburg",
        member_ids=[people["katrin.vogel"].pk, people["jonas.becker"].pk, people["sofia.romano"].pk],
    )
    chat.message_send(
        actor=people["markus.klein"], conversation_id=group.pk, body="Budget for the stand is approved."
    )
    for where, author, body in MESSAGES:
        if where.startswith("dm:"):
            _, a, b = where.split(":")
            conversation = chat.direct_open(actor=people[a], other_user_id=people[b].pk)
        else:
            conversation = conversations[where]
        chat.message_send(actor=people[author], conversation_id=conversation.pk, body=body)
    return True


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
                    origin=services.Origin.COMMAND,
                )
                created.append(user)
            dept = departments[department]
            if heads and dept.head_id is None:
                services.department_set_head(department=dept, head=user)
        if _seed_conversations():
            self.stdout.write("Created demo channels, a group and direct messages.")
        if created:
            self.stdout.write(self.style.SUCCESS(f"Created {len(created)} demo people at @{DOMAIN}."))
            self.stdout.write(f"  password for each: {password}")
            self.stdout.write(f"  HR:      nina.hoffmann@{DOMAIN}")
            self.stdout.write(f"  auditor: david.okafor@{DOMAIN}")
        else:
            self.stdout.write(f"The demo company exists already ({len(PEOPLE)} people at @{DOMAIN}).")
