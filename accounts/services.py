"""Every write to people, departments and invitations happens here."""

import io
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module
from typing import IO, Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialToken
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.template.loader import render_to_string
from django.utils import timezone
from PIL import Image, ImageOps

from accounts import roles, signals
from accounts.errors import InvitationInvalid
from accounts.models import Department, EmailNotifications, Invitation, RoleGrant, User
from accounts.roles import ADMIN_ONLY
from accounts.roles import ALL as ALL_ROLES

AVATAR_SIZE = 256
AVATAR_MAX_PIXELS = 40_000_000


class RoleChangeRefused(ValidationError):
    """A role change the actor may not make; nothing was changed."""


class Origin:
    """Where a role change came from, as the audit event names it."""

    ADMIN_FORM = "admin:change_form"
    ADMIN_ADD_FORM = "admin:add_form"
    ADMIN_ACTION = "admin:action"
    ADMIN_GRANTS = "admin:role_grants"
    SHELL = "shell"
    COMMAND = "command"


@transaction.atomic
def user_create(
    *,
    email: str,
    password: str | None = None,
    display_name: str = "",
    job_title: str = "",
    department: Department | None = None,
    role_names: Iterable[str] = (),
    is_superuser: bool = False,
    is_active: bool = True,
    actor: User | None = None,
    origin: str = Origin.SHELL,
) -> User:
    """Create a person whose address is trusted (HR, an admin or an invitation set it).

    Initial roles go through ``user_roles_set`` as ``actor`` gives them."""
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "Someone with this email address already exists."})
    user = User(
        email=email,
        display_name=display_name.strip(),
        job_title=job_title.strip(),
        department=department,
        is_superuser=is_superuser,
        is_staff=is_superuser,
        is_active=is_active,
    )
    if password:
        validate_password(password, user)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    if role_names:
        user_roles_set(actor=actor, user=user, roles=role_names, origin=origin)
    return user


def role_groups() -> list[Group]:
    """The role groups. Migration 0002 makes them; should one be missing (a
    database flushed by hand), it is made again with its permissions."""
    groups = []
    for name in roles.ALL:
        group, created = Group.objects.get_or_create(name=name)
        if created and name == roles.HR:
            for app_label, codename in roles.HR_PERMISSIONS:
                group.permissions.add(
                    Permission.objects.get(content_type__app_label=app_label, codename=codename)
                )
        groups.append(group)
    return groups


def department_ensure(*, name: str) -> Department:
    """The department with this name, created if it does not exist yet."""
    return Department.objects.get_or_create(name=name.strip())[0]


@transaction.atomic
def department_save(*, department: Department) -> Department:
    """Create or change a department as HR entered it in the admin."""
    department.name = department.name.strip()
    department.full_clean()
    if department.head is not None and not department.head.is_active:
        raise ValidationError({"head": "The head of a department must be an active person."})
    department.save()
    return department


@transaction.atomic
def department_delete(*, department: Department) -> None:
    """Remove a department; its people stay, without one."""
    department.delete()


@transaction.atomic
def department_set_head(*, department: Department, head: User | None) -> Department:
    if head is not None and not head.is_active:
        raise ValidationError({"head": "The head of a department must be an active person."})
    department.head = head
    department.save(update_fields=["head"])
    return department


@dataclass(frozen=True)
class RoleChange:
    """What one call of the role service did, for the audit log and the caller.

    ``before``/``after`` are the roles the person had (in effect) before and
    after; ``pending`` the roles granted but waiting for a second
    administrator (four eyes); ``confirmed``/``cancelled`` name a pending
    grant that this call settled.
    """

    user: User
    actor: User | None
    origin: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    staff_before: bool
    staff_after: bool
    pending: tuple[str, ...] = ()
    confirmed: tuple[str, ...] = ()
    cancelled: tuple[str, ...] = ()

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.after) - set(self.before)))

    @property
    def removed(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.before) - set(self.after)))

    @property
    def changed(self) -> bool:
        return self.before != self.after or self.staff_before != self.staff_after

    def detail(self) -> dict[str, Any]:
        """The audit event's detail: whose roles, before and after, from where."""
        return {
            "user": self.user.pk,
            "email": self.user.email,
            "origin": self.origin,
            "before": list(self.before),
            "after": list(self.after),
            "added": list(self.added),
            "removed": list(self.removed),
            "pending": list(self.pending),
            "confirmed": list(self.confirmed),
            "cancelled": list(self.cancelled),
            "is_staff": {"before": self.staff_before, "after": self.staff_after},
        }


def _role_names(user: User) -> set[str]:
    return set(user.groups.filter(name__in=roles.ALL).values_list("name", flat=True))


def four_eyes() -> bool:
    return bool(settings.KONTOR_AUDIT_FOUR_EYES)


def user_roles_check(*, actor: User | None, user: User, added: Iterable[str], removed: Iterable[str]) -> None:
    """Refuse (``RoleChangeRefused``) a role change ``actor`` may not make.

    Nobody changes their own roles; only an administrator (superuser) grants or
    removes the Auditor and Data protection roles or touches an administrator's
    roles; the HR role is HR's or an administrator's to give. ``actor`` None is
    the operator's own command (a management command or the shell without a
    person): it is recorded as such.
    """
    added, removed = set(added), set(removed)
    touched = added | removed
    if not touched or actor is None:
        return
    if user.pk is not None and actor.pk == user.pk:
        raise RoleChangeRefused(
            "You cannot change your own roles: another administrator has to. Nothing was changed."
        )
    if not actor.is_active:
        raise RoleChangeRefused("Only an active person can change roles.")
    if actor.is_superuser:
        return
    admin_only = sorted(touched & set(roles.ADMIN_ONLY))
    if admin_only:
        names = " and ".join(f"the {roles.LABELS[name].split(' — ')[0]} role" for name in admin_only)
        raise RoleChangeRefused(f"Only an administrator can grant or remove {names}. Nothing was changed.")
    if user.is_superuser:
        raise RoleChangeRefused("Only an administrator can change an administrator's roles.")
    if not (actor.is_staff and actor.has_role(roles.HR) and actor.has_perm("accounts.change_user")):
        raise RoleChangeRefused("Only HR or an administrator can change roles.")


def _apply(user: User, wanted: set[str]) -> bool:
    """Give exactly the roles ``wanted``; staff follows HR. The new is_staff."""
    groups = role_groups()
    user.groups.remove(*[g for g in groups if g.name not in wanted])
    user.groups.add(*[g for g in groups if g.name in wanted])
    is_staff = user.is_superuser or roles.HR in wanted
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])
    return is_staff


def _announce(
    *,
    user: User,
    actor: User | None,
    origin: str,
    before: Iterable[str],
    after: Iterable[str],
    staff_before: bool,
    staff_after: bool,
    pending: Iterable[str] = (),
    confirmed: Iterable[str] = (),
    cancelled: Iterable[str] = (),
) -> RoleChange:
    """The one place a ``RoleChange`` is made: build it and hand it to the audit
    log (compliance listens) in this transaction, if anything happened."""
    change = RoleChange(
        user=user,
        actor=actor,
        origin=origin,
        before=tuple(sorted(before)),
        after=tuple(sorted(after)),
        staff_before=staff_before,
        staff_after=staff_after,
        pending=tuple(sorted(pending)),
        confirmed=tuple(sorted(confirmed)),
        cancelled=tuple(sorted(cancelled)),
    )
    if change.changed or change.pending or change.confirmed or change.cancelled:
        signals.role_changed.send(sender=User, change=change)
    return change


def _require_audit_listener() -> None:
    if not signals.role_changed.has_listeners(User):
        raise ImproperlyConfigured(
            "Role changes must be written to the audit log, but nothing listens to "
            "accounts.signals.role_changed (is the compliance app installed?)."
        )


@transaction.atomic
def user_roles_set(
    *,
    actor: User | None,
    user: User,
    roles: Iterable[str] | None = None,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    origin: str = Origin.SHELL,
) -> RoleChange:
    """The one way to change a person's roles (admin form, admin actions, shell).

    Either ``roles`` (exactly these) or ``add``/``remove``. The actor's right is
    checked (``user_roles_check``), and with the four-eyes rule a newly granted
    Auditor or Data protection role becomes a pending ``RoleGrant`` that another
    administrator confirms. Every change is an audit event with actor, before
    and after. Refusals raise ``RoleChangeRefused`` and change nothing.
    """
    _require_audit_listener()
    person = User.objects.select_for_update().get(pk=user.pk)
    before = _role_names(person)
    wanted = set(roles) if roles is not None else (before | set(add)) - set(remove)
    unknown = wanted - set(ALL_ROLES)
    if unknown:
        raise ValidationError(f"Unknown role: {', '.join(sorted(unknown))}.")
    added, removed = wanted - before, before - wanted
    user_roles_check(actor=actor, user=person, added=added, removed=removed)
    pending: set[str] = set()
    if four_eyes():
        pending = added & set(ADMIN_ONLY)
        for name in sorted(pending):
            already = RoleGrant.objects.filter(user=person, role=name, confirmed_at=None, cancelled_at=None)
            if not already.exists():
                RoleGrant.objects.create(user=person, role=name, requested_by=actor)
        wanted -= pending
    staff_before = person.is_staff
    staff_after = _apply(person, wanted)
    user.is_staff = staff_after
    return _announce(
        user=person,
        actor=actor,
        origin=origin,
        before=before,
        after=wanted,
        staff_before=staff_before,
        staff_after=staff_after,
        pending=pending,
    )


def _grant_for_update(grant: RoleGrant) -> RoleGrant:
    locked = RoleGrant.objects.select_for_update().get(pk=grant.pk)
    if locked.state != "pending":
        raise RoleChangeRefused(
            f"This grant of {locked.role} to {locked.user.email} is {locked.state} already."
        )
    return locked


@transaction.atomic
def role_grant_confirm(*, actor: User, grant: RoleGrant, origin: str = Origin.SHELL) -> RoleChange:
    """A second administrator confirms a pending role grant: now it takes effect."""
    _require_audit_listener()
    grant = _grant_for_update(grant)
    if not (actor.is_superuser and actor.is_active):
        raise RoleChangeRefused("Only an administrator can confirm a role grant.")
    if actor.pk == grant.user_id:
        raise RoleChangeRefused("You cannot confirm a role granted to yourself.")
    if grant.requested_by_id is not None and actor.pk == grant.requested_by_id:
        raise RoleChangeRefused(
            "You granted this role yourself: a second administrator has to confirm it (four eyes)."
        )
    person = User.objects.select_for_update().get(pk=grant.user_id)
    before = _role_names(person)
    staff_before = person.is_staff
    staff_after = _apply(person, before | {grant.role})
    grant.confirmed_by = actor
    grant.confirmed_at = timezone.now()
    grant.save(update_fields=["confirmed_by", "confirmed_at"])
    return _announce(
        user=person,
        actor=actor,
        origin=origin,
        before=before,
        after=before | {grant.role},
        staff_before=staff_before,
        staff_after=staff_after,
        confirmed=(grant.role,),
    )


@transaction.atomic
def role_grant_cancel(*, actor: User, grant: RoleGrant, origin: str = Origin.SHELL) -> RoleChange:
    """An administrator withdraws a pending grant (their own or another's)."""
    _require_audit_listener()
    grant = _grant_for_update(grant)
    if not (actor.is_superuser and actor.is_active):
        raise RoleChangeRefused("Only an administrator can cancel a role grant.")
    grant.cancelled_by = actor
    grant.cancelled_at = timezone.now()
    grant.save(update_fields=["cancelled_by", "cancelled_at"])
    person = grant.user
    current = _role_names(person)
    return _announce(
        user=person,
        actor=actor,
        origin=origin,
        before=current,
        after=current,
        staff_before=person.is_staff,
        staff_after=person.is_staff,
        cancelled=(grant.role,),
    )


@transaction.atomic
def user_update(*, user: User, fields: dict[str, object]) -> User:
    """Change profile data (HR in admin, or the person on their profile page)."""
    allowed = {"display_name", "job_title", "phone", "time_zone", "department", "email"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(f"Cannot change {', '.join(sorted(unknown))} here.")
    for name, value in fields.items():
        setattr(user, name, value.strip() if isinstance(value, str) else value)
    if "email" in fields:
        user.email = user.email.lower()
        if User.objects.filter(email__iexact=user.email).exclude(pk=user.pk).exists():
            raise ValidationError({"email": "Someone with this email address already exists."})
    user.full_clean(exclude=["password"])
    user.save()
    if "email" in fields:
        EmailAddress.objects.filter(user=user).delete()
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def _avatar_png(upload: IO[bytes]) -> bytes:
    """Re-encode an uploaded picture as a square PNG: no metadata, no polyglots."""
    Image.MAX_IMAGE_PIXELS = AVATAR_MAX_PIXELS
    try:
        with Image.open(upload) as image:
            image.load()
            square = ImageOps.fit(image.convert("RGB"), (AVATAR_SIZE, AVATAR_SIZE))
    except (OSError, Image.DecompressionBombError, ValueError):
        raise ValidationError({"avatar": "This file is not a picture Kontor can read."}) from None
    out = io.BytesIO()
    square.save(out, format="PNG", optimize=True)
    return out.getvalue()


@transaction.atomic
def profile_update(
    *,
    user: User,
    display_name: str,
    job_title: str,
    phone: str,
    time_zone: str,
    avatar: IO[bytes] | None = None,
    remove_avatar: bool = False,
    send_read_receipts: bool | None = None,
    email_notifications: str | None = None,
    email_notification_delay: int | None = None,
) -> User:
    """The person edits their own profile."""
    png = _avatar_png(avatar) if avatar is not None else None
    user_update(
        user=user,
        fields={
            "display_name": display_name,
            "job_title": job_title,
            "phone": phone,
            "time_zone": time_zone,
        },
    )
    if send_read_receipts is not None and send_read_receipts != user.send_read_receipts:
        user.send_read_receipts = send_read_receipts
        user.save(update_fields=["send_read_receipts"])
    mail_fields = {
        "email_notifications": email_notifications,
        "email_notification_delay": email_notification_delay,
    }
    changed = [
        name for name, value in mail_fields.items() if value is not None and getattr(user, name) != value
    ]
    if changed:
        if email_notifications is not None and email_notifications not in EmailNotifications.values:
            raise ValidationError("That is not a notification setting.")
        for name in changed:
            setattr(user, name, mail_fields[name])
        user.save(update_fields=changed)
    if png is not None or remove_avatar:
        old_name = user.avatar.name if user.avatar else ""
        if png is not None:
            user.avatar.save(f"{user.pk}-{secrets.token_hex(8)}.png", ContentFile(png), save=False)
        else:
            user.avatar = ""
        user.save(update_fields=["avatar"])
        if old_name:
            storage = user.avatar.storage
            transaction.on_commit(lambda: storage.delete(old_name))
    return user


def invitation_check_email(*, email: str) -> str:
    """The normalised address, if it may be invited: nobody uses it yet, or only
    a pending invitation does (inviting again sends a new link)."""
    email = email.strip().lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is not None and (user.is_active or user.offboarded_at is not None or user.last_login is not None):
        raise ValidationError({"email": "This person already has an account."})
    return email


@transaction.atomic
def invitation_create(
    *,
    invited_by: User | None,
    email: str,
    display_name: str = "",
    job_title: str = "",
    department: Department | None = None,
    base_url: str,
) -> Invitation:
    """Invite a person: an inactive account now, a one-time link by mail on commit.

    Inviting an address that is still pending revokes the older links.
    """
    email = invitation_check_email(email=email)
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = user_create(
            email=email,
            display_name=display_name,
            job_title=job_title,
            department=department,
            is_active=False,
        )
    now = timezone.now()
    Invitation.objects.filter(user=user, accepted_at=None, revoked_at=None).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        user=user,
        email=email,
        invited_by=invited_by,
        token_hash=Invitation.hash_token(token),
        created_at=now,
        expires_at=now + timedelta(days=settings.KONTOR_INVITATION_DAYS),
    )
    link = f"{base_url.rstrip('/')}/invite/{token}/"
    context = {
        "invitation": invitation,
        "link": link,
        "company": settings.KONTOR_COMPANY_NAME,
        "inviter": invited_by,
        "days": settings.KONTOR_INVITATION_DAYS,
    }
    company = settings.KONTOR_COMPANY_NAME
    subject = f"You are invited to {company}" + ("" if company == "Kontor" else " on Kontor")
    body = render_to_string("accounts/email/invitation.txt", context)
    html = render_to_string("accounts/email/invitation.html", context)
    transaction.on_commit(
        lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email], html_message=html)
    )
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation) -> None:
    Invitation.objects.filter(pk=invitation.pk, accepted_at=None, revoked_at=None).update(
        revoked_at=timezone.now()
    )


@transaction.atomic
def invitation_accept(*, token: str, display_name: str, password: str) -> User:
    """Use an invitation once: set name and password, activate the account."""
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("user")
        .filter(token_hash=Invitation.hash_token(token))
        .first()
    )
    if invitation is None or not invitation.is_usable():
        raise InvitationInvalid()
    user = invitation.user
    if user.offboarded_at is not None:
        raise InvitationInvalid()
    validate_password(password, user)
    user.display_name = display_name.strip() or user.display_name
    user.set_password(password)
    user.is_active = True
    user.save(update_fields=["display_name", "password", "is_active"])
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
    return user


@transaction.atomic
def user_anonymise(*, user: User) -> User:
    """Erase a person's personal data from their account (GDPR Art. 17 after the
    retention that deferred it): the row stays, so history keeps its author,
    but no name, address, picture or way to sign in remains."""
    if user.avatar:
        user.avatar.delete(save=False)
    EmailAddress.objects.filter(user=user).delete()
    user.email = f"erased-{user.pk}@erased.invalid"
    user.display_name = ""
    user.job_title = ""
    user.phone = ""
    user.avatar = ""
    user.department = None
    user.is_active = False
    user.erased_at = timezone.now()
    user.set_unusable_password()
    user.save()
    return user


@transaction.atomic
def external_contact_ensure(*, email: str, name: str = "") -> User:
    """The external contact with this (clean, lower-case) address, made if new:
    inactive with an unusable password, so no login path opens for them (a
    database constraint keeps them inactive). A given name replaces the old one.
    Raises ``ValidationError`` when the address is a colleague's."""
    contact = User.objects.filter(email__iexact=email).first()
    if contact is not None and not contact.is_external:
        raise ValidationError(f"{email} belongs to a colleague: add them as a member instead.")
    if contact is None:
        contact = User(email=email, display_name=name, is_external=True, is_active=False)
        contact.set_unusable_password()
        contact.save()
    elif name and contact.display_name != name:
        contact.display_name = name
        contact.save(update_fields=["display_name"])
    return contact


@transaction.atomic
def user_processing_restrict(*, user: User) -> User:
    """Restrict the processing of a person's data (GDPR Art. 18): the account
    closes and they are hidden from chat, directory and search. A person
    restricted already keeps the first restriction's time. The caller
    (``compliance.lifecycle.processing_restrict``) archives first and audits."""
    if user.processing_restricted_at is None:
        User.objects.filter(pk=user.pk, processing_restricted_at__isnull=True).update(
            processing_restricted_at=Now(), is_active=False
        )
    user.refresh_from_db()
    return user


# --- Leaving and returning (called by hr.offboarding inside its transaction) ----


def user_lock(*, user_id: int) -> User:
    """The person's row, locked until the caller's transaction ends, with their
    department and its head. Offboarding, reactivation and scheduled runs take
    it first: it serialises them for one person. Call inside a transaction."""
    return User.objects.select_for_update(of=("self",)).select_related("department__head").get(pk=user_id)


def user_deactivate(*, user: User, actor: User) -> User:
    """Close the account of a leaver: inactive, offboarded now (database clock)
    by ``actor``. Sessions and credentials are ``user_access_revoke``'s."""
    User.objects.filter(pk=user.pk).update(is_active=False, offboarded_at=Now(), offboarded_by=actor)
    user.refresh_from_db()
    return user


def user_reactivate(*, user: User) -> User:
    """Open the account of a returner again (no longer offboarded)."""
    User.objects.filter(pk=user.pk).update(is_active=True, offboarded_at=None, offboarded_by=None)
    user.refresh_from_db()
    return user


def sessions_end(*, user_id: int) -> int:
    """End every session of the person, on every device; returns how many.

    Database-backed engines (``db``, ``cached_db``) are searched row by row,
    since the user id sits inside the signed session data. Cache-only and
    signed-cookie sessions cannot be listed: there the closed account is what
    refuses them (Django and Channels load no inactive user from a session).
    """
    store_class: Any = import_module(settings.SESSION_ENGINE).SessionStore
    get_model_class = getattr(store_class, "get_model_class", None)
    if get_model_class is None:
        return 0
    decoder = store_class()
    rows = (
        get_model_class()
        .objects.filter(expire_date__gt=timezone.now())
        .values_list("session_key", "session_data")
    )
    keys = [
        key
        for key, data in rows.iterator(chunk_size=2000)
        if decoder.decode(data).get(SESSION_KEY) == str(user_id)
    ]
    for key in keys:
        store_class(session_key=key).delete()
    return len(keys)


def user_access_revoke(*, user: User) -> dict[str, int]:
    """Take every way in from a leaver: MFA authenticators, stored SSO tokens,
    pending invitations (sent by them or to them) and every session. Returns
    how many of each, as the offboarding report lists them."""
    mfa, _ = Authenticator.objects.filter(user=user).delete()
    tokens, _ = SocialToken.objects.filter(account__user=user).delete()
    revoked = Invitation.objects.filter(
        Q(invited_by=user) | Q(user=user), accepted_at=None, revoked_at=None
    ).update(revoked_at=Now())
    return {
        "sessions": sessions_end(user_id=user.pk),
        "mfa_authenticators": mfa,
        "sso_tokens": tokens,
        "invitations_revoked": revoked,
    }
