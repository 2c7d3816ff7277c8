"""Celery tasks of hr: stable names, one service call each.

The names keep the ``accounts.`` prefix they had before offboarding moved to
``hr`` (issue 17): queued tasks and the beat schedule still find them."""

from celery import shared_task

from hr import services


@shared_task(name="accounts.offboard_due", time_limit=600, soft_time_limit=540)
def offboard_due() -> int:
    """Carry out the scheduled offboardings whose time has come (beat, every minute).

    A duplicate run is harmless: the person's row lock serialises runs and a
    finished offboarding is not done twice (``hr.services``)."""
    return services.offboard_due()
