# Shared by scripts/run.sh and scripts/test.sh (sourced, POSIX sh).
# Makes .venv with a Python >= 3.11 and installs the pinned requirements when
# they changed since the last install.
set -eu

ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
cd "$ROOT"

find_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "Kontor needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)." >&2
    return 1
}

# bootstrap REQUIREMENTS_FILE
bootstrap() {
    requirements=$1
    if [ ! -x .venv/bin/python ]; then
        python=$(find_python)
        echo "==> Creating the virtual environment in .venv ($("$python" --version))"
        "$python" -m venv .venv
    fi
    stamp=".venv/.installed-$(cat requirements.txt "$requirements" | cksum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ]; then
        echo "==> Installing $requirements"
        .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
        rm -f .venv/.installed-*
        touch "$stamp"
    fi
}
