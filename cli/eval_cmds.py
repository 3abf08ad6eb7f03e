"""``vtlm eval run`` and ``vtlm eval compare``: generators through the shared harness;
``vtlm eval classifier``: the built-in world's attribute classifier, trained and cached."""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys

from vtlm.eval.harness import EvalConfig, run_eval


def _command() -> str:
    return "vtlm " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def run(generator: str, out: str = "runs/eval", eval: EvalConfig = EvalConfig()) -> str:
    """Evaluate one generator (a GPT or diffusion model directory) on the chosen protocols.

    Args:
        generator: model directory of a trained generator (e.g. RUN/gpt).
        out: folder for results.json, report.md, report.html and samples/.
        eval: protocols, seeds, data, sampling and summary settings.
    """
    run_eval([generator], eval, out, _command())
    return out


def compare(generators: list[str], out: str = "runs/eval", eval: EvalConfig = EvalConfig()) -> str:
    """Evaluate several generators that share one tokenizer, side by side (refused when the
    tokenizers differ: their numbers would not be comparable).

    Args:
        generators: model directories (e.g. RUN/gpt RUN/diffusion).
        out: folder for results.json, report.md, report.html and samples/.
        eval: protocols, seeds, data, sampling and summary settings.
    """
    if len(generators) < 2:
        raise ValueError(f"generators: compare needs at least two model directories, got {len(generators)}")
    run_eval(list(generators), eval, out, _command())
    return out


def classifier(out: str = "runs/eval_cache", steps: int | None = None, frames: int = 17) -> str:
    """Train the built-in world's attribute classifier, the one the demo's evaluation judges
    with, into a cache folder under ``out``. vtlm ships it trained (in
    vtlm/eval/adherence/weights, made by this command with ``--out`` there), so the harness
    loads it instead of training; this command rebuilds it.

    Args:
        out: the cache folder to write it in (the harness's ``--eval.classifier_cache``).
        steps: training steps (None: the classifier's default, the shipped one's).
        frames: frames of the clips it judges (the harness's ``--eval.classifier_frames``).
    """
    from vtlm.eval.adherence.classifier import ClassifierConfig, cache_path, train_and_cache

    from .world import SHAPES

    cfg = ClassifierConfig(
        data=dataclasses.replace(SHAPES, num_frames=frames), **({"steps": steps} if steps else {})
    )
    model, path = train_and_cache(cfg, out, progress=True), cache_path(cfg, out)
    accuracies = ", ".join(
        f"{name} {value:.3f}" for name, value in model.heldout.items() if isinstance(value, float)
    )
    print(f"held-out (val split) accuracies: {accuracies}")
    print(f"wrote {path}")
    return str(path)


COMMANDS = {"run": run, "compare": compare, "classifier": classifier}


def prepare_args(args: list[str]) -> list[str]:
    """``compare A B C --opts`` -> ``compare "[A, B, C]" --opts``: the model directories
    given before the first option become the one list argument jsonargparse expects."""
    if not args or args[0] != "compare":
        return args
    count = next((i for i, a in enumerate(args[1:]) if a.startswith("-")), len(args) - 1)
    if count == 1 and args[1].startswith("["):  # already a list
        return args
    dirs = args[1 : 1 + count]
    return ["compare", json.dumps(dirs), *args[1 + count :]] if dirs else args
