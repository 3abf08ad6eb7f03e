"""The ``vtlm`` command: ``vtlm GROUP COMMAND [--config FILE.yaml] [--flags]``.

Each group is a small jsonargparse CLI built from typed functions and dataclass configs, so
every command takes YAML config files (``--config``), prints them (``--print_config``),
accepts dotted overrides (``--data.shapes.resolution 32``) and names the field of any unknown
or ill-typed key. Global torch settings (threads, determinism) are made here, at the entry
point, and nowhere in the library.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable

GROUPS: dict[str, str] = {
    "data": "built-in datasets, folders of videos, caption text models",
    "tokenizer": "train the causal 3-D video tokenizer, tokenize datasets into shards",
    "gpt": "train the GPT over [caption | video codes] on token shards",
    "diffusion": "train the diffusion baseline on the same token shards",
    "forcing": "train frame-causal diffusion (diffusion forcing) on the same token shards",
    "maskgit": "train masked parallel decoding (MaskGIT) over the same token shards",
    "sample": "videos from a trained generator: from a caption, a prefix video, or both",
    "eval": "generators through the shared evaluation harness: protocols, metrics, report",
    "demo": "the researcher workflow end to end on built-in data",
    "sweep": "grids over families, sizes, compute and data, through the harness, with scaling fits",
    "bench": "vtlm beside its peers on the same workloads, with ratios",
}


def _group_commands(group: str) -> dict[str, Callable] | Callable:
    if group == "data":
        from .data_cmds import COMMANDS

        return COMMANDS
    if group == "tokenizer":
        from .tokenizer_cmds import COMMANDS

        return COMMANDS
    if group == "gpt":
        from .gpt_cmds import COMMANDS

        return COMMANDS
    if group == "diffusion":
        from .diffusion_cmds import COMMANDS

        return COMMANDS
    if group == "forcing":
        from .forcing_cmds import COMMANDS

        return COMMANDS
    if group == "maskgit":
        from .maskgit_cmds import COMMANDS

        return COMMANDS
    if group == "sample":
        from .sample_cmds import sample

        return sample
    if group == "eval":
        from .eval_cmds import COMMANDS

        return COMMANDS
    if group == "demo":
        from .demo import demo

        return demo
    if group == "sweep":
        from vtlm.sweeps.commands import COMMANDS

        return COMMANDS
    from vtlm.bench.run import bench

    return bench


def _usage() -> str:
    rows = "\n".join(f"  {name:<8} {text}" for name, text in GROUPS.items())
    return f"usage: vtlm GROUP [COMMAND] [--help]\n\ngroups:\n{rows}\n"


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``vtlm`` console script."""
    from jsonargparse import auto_cli

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return
    group, rest = argv[0], argv[1:]
    if group not in GROUPS:
        sys.exit(f"vtlm: unknown group {group!r}; expected one of {sorted(GROUPS)}\n\n{_usage()}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("vtlm").setLevel(logging.INFO)
    logging.getLogger("lightning.pytorch").propagate = False  # Lightning prints its own lines
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # EMA and frozen nets
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    warnings.filterwarnings("ignore", message=".*manual optimization and `?every_n_train_steps.*")
    # The commands print what a person needs; their return values serve Python callers.
    if group == "eval":  # `compare A B ...`: several model directories as positionals
        from .eval_cmds import prepare_args

        rest = prepare_args(rest)
    try:
        auto_cli(_group_commands(group), args=rest, prog=f"vtlm {group}")
    except (ValueError, FileNotFoundError) as err:
        if os.environ.get("VTLM_DEBUG"):
            raise
        sys.exit(f"vtlm {group}: error: {err}")


if __name__ == "__main__":
    main()
