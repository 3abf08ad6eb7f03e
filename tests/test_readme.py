"""README.md stays true: every `vtlm` command it shows runs as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    return [
        line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith("vtlm ")
    ]


def test_readme_opens_with_the_two_commands():
    first_block = re.search(r"```sh\n(.*?)```", README, flags=re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == [
        "make demo",
        "make test",
    ]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_readme_vtlm_commands_run_as_written(tmp_path):
    commands = readme_commands()
    assert len(commands) >= 4
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    vtlm = str(Path(sys.executable).with_name("vtlm"))
    for command in commands:
        args = command.split()[1:]
        result = subprocess.run([vtlm, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{command}\n{result.stderr[-2000:]}"
    assert (tmp_path / "runs/text/shapes.model").is_file()


def test_readme_python_example_runs(tmp_path, monkeypatch):
    from vtlm.data.synthetic import ShapesConfig, SyntheticConfig, write_synthetic

    cfg = SyntheticConfig(shapes=ShapesConfig(resolution=32, num_frames=9))
    write_synthetic(cfg, tmp_path / "runs/data/shapes", {"train": 3}, progress=False)
    code = re.search(r"```python\n(.*?)```", README, flags=re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(code, scope)
    assert tuple(scope["item"]["video"].shape) == (3, 9, 32, 32)
