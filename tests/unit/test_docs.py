"""The generated CLI reference matches the commands' --help texts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current(tmp_path: Path) -> None:
    out = tmp_path / "cli.md"
    typer_exe = Path(sys.executable).parent / "typer"
    subprocess.run(
        [str(typer_exe), "narrate.cli", "utils", "docs", "--name", "narrate", "--output", str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_text() == (ROOT / "docs" / "cli.md").read_text(), "run `make docs`"


def test_readme_quickstart_is_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
