"""README.md stays true: every `vtlm` command and Python example it shows runs as written."""

import re
import shlex
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


def test_readme_states_the_demo_budgets_the_code_uses():
    from vtlm.cli.demo import GENERATOR_STEPS, TOKENIZER_STEPS
    from vtlm.eval.adherence.classifier import ClassifierConfig

    stated = re.search(
        r"tokenizer ([\d,]+), each generator ([\d,]+); the evaluation's\s+attribute classifier ships trained "
        r"\(([\d,]+) steps",
        README,
    )
    assert stated, "README no longer states the demo's step budgets"
    assert [int(g.replace(",", "")) for g in stated.groups()] == [
        TOKENIZER_STEPS,
        GENERATOR_STEPS,
        ClassifierConfig().steps,
    ]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # trains and evaluates end to end: minutes, more under load
def test_readme_commands_and_examples_run_as_written(tmp_path, monkeypatch, capsys):
    """Each command goes through the console script's entry point, ``vtlm.cli.main.main``, with
    the arguments as written, in this process: a subprocess per command would spend most of
    the test importing torch and Lightning again (test_cli runs the console script itself)."""
    from vtlm.cli.main import main

    commands = readme_commands()
    assert len(commands) >= 15
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    monkeypatch.chdir(tmp_path)
    for command in commands:
        try:
            main(command[1:])
        except SystemExit as done:  # a refused argument or a failed run exits, naming why
            assert done.code in (0, None), (
                f"{shlex.join(command)}\n{done.code}\n{capsys.readouterr().err[-2000:]}"
            )
    assert (tmp_path / "runs/text/shapes.model").is_file()
    assert (tmp_path / "runs/tokens/shapes/train/index.json").is_file()
    assert (tmp_path / "runs/samples/continue/sheet.gif").is_file()
    assert (tmp_path / "runs/samples/caption/sample_000.mp4").is_file()
    assert (tmp_path / "runs/samples/diffusion/sheet.gif").is_file()
    assert (tmp_path / "runs/samples/forcing/sheet.gif").is_file()
    assert (tmp_path / "runs/samples/maskgit/sample_000.mp4").is_file()
    assert (tmp_path / "runs/eval/readme/report.html").is_file()
    assert (tmp_path / "runs/eval/rollout/results.json").is_file()
    assert (tmp_path / "runs/samples/rows/sample_000.mp4").is_file()  # rows decoded in parallel
    assert (tmp_path / "runs/samples/int8/sample_000.mp4").is_file()  # int8 weights
    tsv = (tmp_path / "runs/sweeps/kinetics600_gpu/points.tsv").read_text().splitlines()
    assert len(tsv) == 1 + 36 and (tmp_path / "runs/sweeps/kinetics600_gpu/launch_slurm.sh").is_file()
    scope: dict = {}
    for code in re.findall(r"```python\n(.*?)```", README, flags=re.S):
        exec(code, scope)
    assert tuple(scope["item"]["video"].shape) == (3, 9, 32, 32)
    assert tuple(scope["codes"].shape) == (2, 3, 8, 8) and tuple(scope["frames"].shape) == (2, 3, 9, 32, 32)
