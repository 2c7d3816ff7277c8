"""Signals accounts sends for layers above it.

``accounts`` imports no other Kontor app (docs: DESIGN.md, the app stack), yet
every role change must reach the audit log, which ``compliance`` owns. So the
role service sends ``role_changed`` inside its transaction and compliance's
receiver (``compliance.receivers``) writes the audit event: should that write
fail, the role change rolls back with it. The service refuses to change roles
when nobody listens, so a change can never go unrecorded.
"""

from django.dispatch import Signal

# Sent with ``change=accounts.services.RoleChange`` (sender: the User class).
role_changed = Signal()
