"""Fixtures for the hr tests: those of the accounts tests (fast hashing, a
private cache, files in tmp), since offboarding signs people in and out."""

from tests.accounts.conftest import fast_password_hashing, media_root, private_cache

__all__ = ["fast_password_hashing", "media_root", "private_cache"]
