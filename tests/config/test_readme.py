"""The README is the operator's reference: it must name every variable we read."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READ_CALL = re.compile(r"env_(?:str|bool|int|list|choice|url|file)\(\s*\"([A-Z0-9_]+)\"")
ENVIRON_READ = re.compile(r"os\.environ(?:\.get)?[\[(]\s*\"([A-Z0-9_]+)\"")


def _variables_read() -> set[str]:
    names: set[str] = set()
    for path in [
        *ROOT.glob("config/*.py"),
        *ROOT.glob("*/management/commands/*.py"),
        *ROOT.glob("scripts/*.py"),
    ]:
        text = path.read_text()
        names |= set(READ_CALL.findall(text)) | set(ENVIRON_READ.findall(text))
    names.discard("DJANGO_SETTINGS_MODULE")
    return names


def test_readme_starts_with_what_kontor_is_then_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in first_block.splitlines() if line.strip()]
    assert [c.split()[:2] for c in commands] == [["sh", "scripts/run.sh"], ["sh", "scripts/test.sh"]]
    assert readme.index("self-hosted company messenger") < readme.index("```sh")


def test_readme_documents_every_environment_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))
    variables = _variables_read()
    assert len(variables) > 30
    assert variables - documented == set()
