"""Settings come from the environment; a wrong or missing value stops the start.

Each case loads ``config.settings`` in a fresh interpreter with a controlled
environment, as a deployment would.
"""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_file, env_int, env_list, env_str, env_url

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-secret-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOP"
PRODUCTION = {"KONTOR_ENV": "production", "DJANGO_SECRET_KEY": SECRET, "ALLOWED_HOSTS": "kontor.example.com"}

DUMP_SETTINGS = """
import json
import config.settings as s
print(json.dumps({name: getattr(s, name) for name in dir(s) if name.isupper()}, default=str))
"""


def _run(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run Python in the repository with only ``env`` (plus PATH and a data folder)."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KONTOR_DATA_DIR": str(tmp_path / "data")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _settings(tmp_path: Path, **env: str) -> dict[str, Any]:
    result = _run(tmp_path, env, "-c", DUMP_SETTINGS)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def _refused(tmp_path: Path, **env: str) -> str:
    """Load the settings expecting a refusal; return the error the operator sees."""
    result = _run(tmp_path, env, "-c", DUMP_SETTINGS)
    assert result.returncode != 0, "the settings loaded although they should not"
    assert "ImproperlyConfigured" in result.stderr
    return result.stderr.strip().splitlines()[-1]


# --- Loading the settings in a fresh process ------------------------------


def test_embedded_default_needs_no_services(tmp_path: Path) -> None:
    s = _settings(tmp_path)

    assert s["KONTOR_ENV"] == "embedded"
    assert s["DEBUG"] is False
    database = s["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == str(tmp_path / "data" / "kontor.sqlite3")
    assert "journal_mode=WAL" in database["OPTIONS"]["init_command"]
    assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert s["CHANNEL_LAYERS"]["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"
    assert s["CELERY_BROKER_URL"] == "filesystem://localhost/"
    assert s["CELERY_BROKER_TRANSPORT_OPTIONS"]["data_folder_in"].startswith(str(tmp_path / "data"))
    assert s["STORAGES"]["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert s["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    assert s["SESSION_COOKIE_SECURE"] is False
    assert s["SOCIALACCOUNT_PROVIDERS"] == {}


def test_embedded_secret_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    first = _settings(tmp_path)["SECRET_KEY"]
    second = _settings(tmp_path)["SECRET_KEY"]

    assert first == second
    assert len(first) >= 50
    key_file = tmp_path / "data" / "secret_key"
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_production_without_secret_key_refuses_to_start(tmp_path: Path) -> None:
    error = _refused(tmp_path, KONTOR_ENV="production", ALLOWED_HOSTS="kontor.example.com")

    assert "DJANGO_SECRET_KEY" in error
    assert not (tmp_path / "data" / "secret_key").exists()


def test_production_without_allowed_hosts_refuses_to_start(tmp_path: Path) -> None:
    error = _refused(tmp_path, KONTOR_ENV="production", DJANGO_SECRET_KEY=SECRET)

    assert "ALLOWED_HOSTS" in error


def test_production_with_debug_refuses_to_start(tmp_path: Path) -> None:
    error = _refused(tmp_path, **PRODUCTION, DJANGO_DEBUG="true")

    assert "DJANGO_DEBUG" in error


def test_production_settings_are_secure(tmp_path: Path) -> None:
    s = _settings(tmp_path, **PRODUCTION)

    assert s["SECRET_KEY"] == SECRET
    assert s["ALLOWED_HOSTS"] == ["kontor.example.com"]
    assert s["SESSION_COOKIE_SECURE"] is True
    assert s["CSRF_COOKIE_SECURE"] is True
    assert s["SECURE_SSL_REDIRECT"] is True
    assert s["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert s["ACCOUNT_DEFAULT_HTTP_PROTOCOL"] == "https"
    assert "SECURE_PROXY_SSL_HEADER" not in s


def test_unknown_boolean_names_the_variable(tmp_path: Path) -> None:
    error = _refused(tmp_path, DJANGO_DEBUG="maybe")

    assert "DJANGO_DEBUG" in error
    assert "'maybe'" in error


def test_unknown_mode_names_the_variable(tmp_path: Path) -> None:
    error = _refused(tmp_path, KONTOR_ENV="prod")

    assert "KONTOR_ENV" in error


def test_database_url_selects_postgresql(tmp_path: Path) -> None:
    database = _settings(tmp_path, DATABASE_URL="postgres://u@h:5432/db")["DATABASES"]["default"]

    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["NAME"], database["USER"], database["HOST"], database["PORT"]) == ("db", "u", "h", 5432)
    assert database["CONN_HEALTH_CHECKS"] is True


def test_unsupported_database_url_is_refused(tmp_path: Path) -> None:
    error = _refused(tmp_path, DATABASE_URL="mysql://u@h:3306/db")

    assert "DATABASE_URL" in error


def test_redis_url_switches_channel_layer_cache_and_broker(tmp_path: Path) -> None:
    s = _settings(tmp_path, REDIS_URL="redis://cache.internal:6379/2")

    layer = s["CHANNEL_LAYERS"]["default"]
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    [host] = layer["CONFIG"]["hosts"]
    assert host["address"] == "redis://cache.internal:6379/2"
    # redis-py closes idle sockets after 5 s unless the timeout is switched off.
    assert "socket_timeout" in host
    assert host["socket_timeout"] is None
    assert host["max_connections"] >= 1_000
    assert s["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert s["CACHES"]["default"]["LOCATION"] == "redis://cache.internal:6379/2"
    assert s["CELERY_BROKER_URL"] == "redis://cache.internal:6379/2"


def test_single_sign_on_configures_the_openid_connect_provider(tmp_path: Path) -> None:
    s = _settings(
        tmp_path,
        OIDC_SERVER_URL="https://sso.kontor.example/realms/staff",
        OIDC_CLIENT_ID="kontor",
        OIDC_CLIENT_SECRET="s3cr3t",
    )

    provider = s["SOCIALACCOUNT_PROVIDERS"]["openid_connect"]
    [app] = provider["APPS"]
    assert app["client_id"] == "kontor"
    assert app["secret"] == "s3cr3t"
    assert app["settings"]["server_url"] == "https://sso.kontor.example/realms/staff"
    assert provider["OAUTH_PKCE_ENABLED"] is True
    # The sign-in form posts to the identity provider: the CSP must allow it, and only it.
    form_action = s["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]["form-action"]
    assert "https://sso.kontor.example" in form_action
    assert len(form_action) == 2


def test_single_sign_on_without_client_id_refuses_to_start(tmp_path: Path) -> None:
    error = _refused(tmp_path, OIDC_SERVER_URL="https://sso.kontor.example", OIDC_CLIENT_SECRET="s3cr3t")

    assert "OIDC_CLIENT_ID" in error


def test_s3_storage_without_bucket_refuses_to_start(tmp_path: Path) -> None:
    error = _refused(tmp_path, KONTOR_STORAGE="s3")

    assert "S3_BUCKET" in error


def test_s3_storage_is_the_default_storage(tmp_path: Path) -> None:
    code = (
        "import os, django\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'\n"
        "django.setup()\n"
        "from django.core.files.storage import storages\n"
        "s = storages['default']\n"
        "backend = type(s).__module__ + '.' + type(s).__name__\n"
        "print(backend, s.bucket_name, s.endpoint_url, s.file_overwrite)\n"
    )

    result = _run(
        tmp_path,
        {"KONTOR_STORAGE": "s3", "S3_BUCKET": "kontor-files", "S3_ENDPOINT_URL": "http://127.0.0.1:9000"},
        "-c",
        code,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "storages.backends.s3.S3Storage",
        "kontor-files",
        "http://127.0.0.1:9000",
        "True",  # keys are content hashes: the same key always holds the same bytes
    ]


def test_a_timestamp_authority_without_its_ca_file_refuses_to_start(tmp_path: Path) -> None:
    error = _refused(tmp_path, KONTOR_TSA_URL="https://tsa.kontor.example/tsr")

    assert "KONTOR_TSA_CA_FILE" in error


def test_a_timestamp_authority_with_its_ca_file_is_configured(tmp_path: Path) -> None:
    ca_file = tmp_path / "tsa-ca.pem"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\n")

    loaded = _settings(
        tmp_path, KONTOR_TSA_URL="https://tsa.kontor.example/tsr", KONTOR_TSA_CA_FILE=str(ca_file)
    )

    assert (loaded["KONTOR_TSA_URL"], loaded["KONTOR_TSA_CA_FILE"]) == (
        "https://tsa.kontor.example/tsr",
        str(ca_file),
    )
    assert loaded["CELERY_BEAT_SCHEDULE"]["compliance-seal"]["task"] == "compliance.seal"


def test_production_passes_the_deployment_checks(tmp_path: Path) -> None:
    result = _run(tmp_path, PRODUCTION, "manage.py", "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr


# --- config.env helpers ----------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", " yes ", "on"])
def test_env_bool_reads_true(raw: str) -> None:
    assert env_bool("FLAG", False, environ={"FLAG": raw}) is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "off", ""])
def test_env_bool_reads_false(raw: str) -> None:
    assert env_bool("FLAG", True, environ={"FLAG": raw}) is False


def test_env_bool_missing_gives_the_default() -> None:
    assert env_bool("FLAG", True, environ={}) is True
    assert env_bool("FLAG", False, environ={}) is False


def test_env_bool_refuses_anything_else() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"FLAG .*'maybe'"):
        env_bool("FLAG", environ={"FLAG": "maybe"})


def test_env_str_treats_blank_as_missing() -> None:
    assert env_str("NAME", "fallback", environ={"NAME": "  "}) == "fallback"
    assert env_str("NAME", "fallback", environ={}) == "fallback"
    assert env_str("NAME", environ={"NAME": " value "}) == "value"


def test_env_int_parses_and_checks_the_minimum() -> None:
    assert env_int("N", 7, environ={"N": " 42 "}) == 42
    assert env_int("N", 7, environ={"N": ""}) == 7
    assert env_int("N", 7, environ={}) == 7
    assert env_int("N", 7, minimum=10, environ={"N": "10"}) == 10
    with pytest.raises(ImproperlyConfigured, match="N must be at least 10, not 9"):
        env_int("N", 7, minimum=10, environ={"N": "9"})
    with pytest.raises(ImproperlyConfigured, match=r"N must be a whole number, not 'ten'"):
        env_int("N", 7, environ={"N": "ten"})


def test_env_list_splits_on_commas_and_drops_blanks() -> None:
    assert env_list("HOSTS", environ={"HOSTS": " a.example , ,b.example,"}) == ["a.example", "b.example"]
    assert env_list("HOSTS", ["x"], environ={}) == ["x"]
    assert env_list("HOSTS", ["x"], environ={"HOSTS": ""}) == ["x"]
    assert env_list("HOSTS", environ={}) == []


def test_env_list_default_is_not_shared() -> None:
    default = ["x"]
    env_list("HOSTS", default, environ={}).append("y")

    assert default == ["x"]


def test_env_choice_is_case_insensitive_and_strict() -> None:
    assert env_choice("MODE", ("a", "b"), "a", environ={"MODE": " B "}) == "b"
    assert env_choice("MODE", ("a", "b"), "a", environ={}) == "a"
    with pytest.raises(ImproperlyConfigured, match=r"MODE must be one of a, b, not 'c'"):
        env_choice("MODE", ("a", "b"), "a", environ={"MODE": "c"})


def test_env_helpers_read_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KONTOR_TEST_VALUE", "17")

    assert env_int("KONTOR_TEST_VALUE", 0) == 17


def test_env_url_takes_only_absolute_urls_of_the_given_schemes() -> None:
    assert env_url("URL", environ={"URL": " https://tsa.example/tsr "}) == "https://tsa.example/tsr"
    assert env_url("URL", environ={}) == ""
    with pytest.raises(
        ImproperlyConfigured, match=r"URL must be a http or https URL with a host, not 'tsa.example'"
    ):
        env_url("URL", environ={"URL": "tsa.example"})
    with pytest.raises(ImproperlyConfigured, match="URL must be a"):
        env_url("URL", environ={"URL": "file:///etc/passwd"})


def test_env_file_needs_a_readable_file(tmp_path: Path) -> None:
    present = tmp_path / "ca.pem"
    present.write_text("pem")

    assert env_file("CA", environ={"CA": str(present)}) == present
    assert env_file("CA", environ={}) is None
    with pytest.raises(ImproperlyConfigured, match="CA must name a readable file"):
        env_file("CA", environ={"CA": str(tmp_path / "missing.pem")})
    with pytest.raises(ImproperlyConfigured, match="CA must name a readable file"):
        env_file("CA", environ={"CA": str(tmp_path)})
