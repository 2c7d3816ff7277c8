"""Fixtures for the accounts tests: fast hashing, a private cache, files in tmp."""

import uuid
from pathlib import Path

import pytest
from pytest_django import Settings

MD5 = "django.contrib.auth.hashers.MD5PasswordHasher"
PBKDF2 = "django.contrib.auth.hashers.PBKDF2PasswordHasher"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Settings) -> None:
    # New passwords are hashed with MD5 (fast); the factories' shared PBKDF2
    # hash still verifies.
    settings.PASSWORD_HASHERS = [MD5, PBKDF2]


@pytest.fixture(autouse=True)
def private_cache(settings: Settings) -> None:
    # Login rate limits and TOTP replay records live in the cache: a key prefix
    # of its own per test keeps them from leaking between tests, on LocMem and
    # on Redis alike, without flushing a shared Redis database.
    settings.CACHES = {
        alias: {**config, "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
        for alias, config in settings.CACHES.items()
    }


@pytest.fixture
def media_root(settings: Settings, tmp_path: Path) -> Path:
    """Uploaded files go to a temporary folder, not to the data folder."""
    root = tmp_path / "media"
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    return root
