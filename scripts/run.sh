#!/bin/sh
# Command 1: set up and run Kontor on the embedded default (SQLite, in-memory
# channel layer, Celery on the filesystem broker). Ctrl-C stops everything.
. "$(dirname -- "$0")/bootstrap.sh"
bootstrap requirements.txt
exec .venv/bin/python scripts/run_stack.py "$@"
