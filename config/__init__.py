# The Celery app is loaded with Django so that @shared_task binds to it.
from config import db
from config.celery import app as celery_app

# Dead pooled PostgreSQL connections are replaced in about a second (config/db.py).
db.install()

__all__ = ("celery_app",)
