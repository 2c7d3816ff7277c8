#!/bin/sh
# Command 2: set up and run the whole test suite, with ruff, mypy and the
# deployment checks. Uses DATABASE_URL / REDIS_URL when they are set.
. "$(dirname -- "$0")/bootstrap.sh"
bootstrap requirements-dev.txt

if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> Installing Debian's Chromium for the browser tests"
    (apt-get install -y -qq chromium >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }) ||
        echo "    could not install chromium; browser tests will say so" >&2
fi

# Reactions in the screenshots: without a colour emoji font Chromium draws empty boxes.
if [ ! -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> Installing Debian's emoji font for the browser screenshots"
    apt-get install -y -qq fonts-noto-color-emoji >/dev/null 2>&1 || echo "    could not install fonts-noto-color-emoji" >&2
fi

if [ ! -x /usr/sbin/dovecot ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> Installing Debian's Dovecot for the IMAP tests"
    (apt-get install -y -qq dovecot-imapd >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dovecot-imapd >/dev/null 2>&1; }) ||
        echo "    could not install dovecot-imapd; the IMAP tests will say so" >&2
fi

PY=.venv/bin/python
status=0
step() {
    echo "==> $*"
    "$@" || { echo "FAILED: $*" >&2; status=1; }
}

step $PY -m ruff check .
step $PY -m ruff format --check .
step $PY -m mypy .
step $PY manage.py makemigrations --check --dry-run
step env KONTOR_ENV=production DJANGO_SECRET_KEY=check-deploy-"$(date +%s)"-0123456789abcdefghijklmnopqrstuvwxyz \
    ALLOWED_HOSTS=kontor.example.com $PY manage.py check --deploy --fail-level WARNING
step $PY -m pytest "$@"
exit $status
