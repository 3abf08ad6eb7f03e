"""README.md stays true: every `vtlm` command and Python example it shows runs as written."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def readme_commands() -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line.startswith("vtlm ")]


def test_readme_opens_with_the_two_commands():
    first_block = re.search(r"```sh\n(.*?)```", README, flags=re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == [
        "make demo",
        "make test",
    ]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
@pytest.mark.timeout(1800)  # trains and evaluates end to end: minutes, more under load
def test_readme_commands_and_examples_run_as_written(tmp_path, monkeypatch):
    commands = readme_commands()
    assert len(commands) >= 11
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    vtlm = str(Path(sys.executable).with_name("vtlm"))
    for command in commands:
        result = subprocess.run(
            [vtlm, *command[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, f"{shlex.join(command)}\n{result.stderr[-2000:]}"
    assert (tmp_path / "runs/text/shapes.model").is_file()
    assert (tmp_path / "runs/tokens/shapes/train/index.json").is_file()
    assert (tmp_path / "runs/samples/continue/sheet.gif").is_file()
    assert (tmp_path / "runs/samples/caption/sample_000.mp4").is_file()
    assert (tmp_path / "runs/samples/diffusion/sheet.gif").is_file()
    assert (tmp_path / "runs/eval/readme/report.html").is_file()
    assert (tmp_path / "runs/eval/rollout/results.json").is_file()
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    for code in re.findall(r"```python\n(.*?)```", README, flags=re.S):
        exec(code, scope)
    assert tuple(scope["item"]["video"].shape) == (3, 9, 32, 32)
    assert tuple(scope["codes"].shape) == (2, 3, 8, 8) and tuple(scope["frames"].shape) == (2, 3, 9, 32, 32)
