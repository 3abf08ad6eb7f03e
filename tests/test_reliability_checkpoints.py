"""Checkpoints: atomic writes, damaged files named and skipped on resume, and pickled code refused
by every loader."""

import logging
import subprocess
import sys

import pytest
import torch
import yaml

from vtlm.tokenizer.io import load_tokenizer
from vtlm.tokenizer.perceptual import _load_state
from vtlm.train.checkpoint import CONFIG_NAME, WEIGHTS_NAME, load_model_dir, save_model_dir
from vtlm.train.checkpoint_io import (
    AtomicCheckpointIO,
    CheckpointError,
    newest_valid_checkpoint,
    read_checkpoint,
    remove_stale_temporaries,
)
from vtlm.train.trainer import TrainerConfig, build_trainer


def plain(step: int, value: float = 1.0) -> dict:
    """What a training checkpoint holds: tensors and plain values."""
    return {"state_dict": {"w": torch.full((4,), value)}, "global_step": step, "loops": {"epoch": [1, 2]}}


class Payload:
    """Unpickling this calls ``open(path, "w")``: the file appears only if the pickle ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


KILLED_SAVE = """
import sys, time, torch
from vtlm.train.checkpoint_io import AtomicCheckpointIO

path = sys.argv[1]
AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(4)}, "global_step": 1}, path)


def slow_save(obj, handle, *args, **kwargs):  # half a zip archive, then a stall
    handle.write(b"PK\\x03\\x04" + bytes(4096))
    handle.flush()
    print("STALLED", flush=True)
    time.sleep(3600)


torch.save = slow_save
AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(4)}, "global_step": 2}, path)
"""


def test_a_save_killed_midway_leaves_the_previous_checkpoint_whole(tmp_path):
    script, target = tmp_path / "save.py", tmp_path / "checkpoints" / "last.ckpt"
    script.write_text(KILLED_SAVE)
    proc = subprocess.Popen([sys.executable, str(script), str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "STALLED"
    finally:
        proc.kill()
        proc.wait(timeout=60)
    loaded = read_checkpoint(target)
    assert loaded["global_step"] == 1 and torch.equal(loaded["state_dict"]["w"], torch.ones(4))
    temporaries = [p.name for p in target.parent.iterdir() if p.name != "last.ckpt"]
    assert len(temporaries) == 1 and temporaries[0].startswith(".last.ckpt.tmp")  # the killed write
    assert newest_valid_checkpoint(target.parent) == (target, [])  # not mistaken for a checkpoint
    assert remove_stale_temporaries(target.parent) == temporaries
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]


def test_damaged_checkpoints_are_named_and_auto_resume_takes_the_newest_that_loads(tmp_path, caplog):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for step in (2, 4, 6):
        torch.save(plain(step), folder / f"step{step:07d}.ckpt")
    torch.save(plain(8), folder / "last.ckpt")
    whole = (folder / "last.ckpt").read_bytes()
    (folder / "last.ckpt").write_bytes(whole[: len(whole) // 2])  # truncated
    (folder / "step0000006.ckpt").write_bytes(b"not a checkpoint at all" * 10)  # corrupt
    torch.save({"weights": torch.ones(2)}, folder / "step0000004.ckpt")  # loads, but not a training one

    with pytest.raises(CheckpointError, match=r"last\.ckpt: unreadable checkpoint, truncated or corrupt"):
        read_checkpoint(folder / "last.ckpt")
    with pytest.raises(CheckpointError, match=r"step0000004\.ckpt: not a training checkpoint"):
        read_checkpoint(folder / "step0000004.ckpt")
    with pytest.raises(CheckpointError, match=r"step0000006\.ckpt"):
        TrainerConfig(out_dir=str(tmp_path), resume=str(folder / "step0000006.ckpt")).resume_path()
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        TrainerConfig(out_dir=str(tmp_path), resume=str(folder / "nowhere.ckpt")).resume_path()

    with caplog.at_level(logging.WARNING, logger="vtlm"):
        chosen = TrainerConfig(out_dir=str(tmp_path), resume="auto").resume_path()
    assert chosen == str(folder / "step0000002.ckpt")
    skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert [m.split("skipping ")[1].split(":")[0] for m in skipped] == [
        "last.ckpt",
        "step0000006.ckpt",
        "step0000004.ckpt",
    ]
    assert "truncated or corrupt" in skipped[0] and "not a training checkpoint" in skipped[2]

    (folder / "step0000002.ckpt").write_bytes(b"")  # zero length: now nothing loads
    with pytest.raises(CheckpointError, match="no checkpoint of .* loads.*resume none"):
        TrainerConfig(out_dir=str(tmp_path), resume="auto").resume_path()
    assert TrainerConfig(out_dir=str(tmp_path / "fresh")).resume_path() is None  # no folder: a new run


def test_pickled_code_is_refused_on_resume_and_by_every_loader(tmp_path, caplog):
    marker = tmp_path / "the_payload_ran"
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    evil = folder / "last.ckpt"
    torch.save({**plain(9), "extra": Payload(marker)}, evil)
    torch.save(plain(3), folder / "step0000003.ckpt")

    with pytest.raises(CheckpointError, match=r"last\.ckpt: refused: it holds pickled Python objects"):
        read_checkpoint(evil)
    trainer = build_trainer(TrainerConfig(out_dir=str(tmp_path / "run"), progress_bar=False))
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    with pytest.raises(CheckpointError, match="refused"):  # Lightning's own resume path
        trainer.strategy.load_checkpoint(evil, weights_only=False)
    with pytest.raises(CheckpointError, match="refused"):
        TrainerConfig(out_dir=str(tmp_path / "run"), resume=str(evil)).resume_path()
    with caplog.at_level(logging.WARNING, logger="vtlm"):
        chosen = TrainerConfig(out_dir=str(tmp_path / "run")).resume_path()
    assert chosen == str(folder / "step0000003.ckpt") and "refused" in caplog.text

    # Model directories: weights are safetensors, configs YAML read with safe_load.
    model = save_model_dir(tmp_path / "model", "tokenizer", {"x": 1}, {"w": torch.ones(2)})
    torch.save({"w": Payload(marker)}, model / WEIGHTS_NAME)
    with pytest.raises(ValueError, match=f"{WEIGHTS_NAME}: unreadable weights"):
        load_model_dir(model, "tokenizer")
    config = (
        yaml.safe_dump({"kind": "tokenizer", "config": {}})
        + f"x: !!python/object/apply:builtins.open ['{marker}', 'w']\n"
    )
    (model / CONFIG_NAME).write_text(config)
    with pytest.raises(ValueError, match=f"{CONFIG_NAME}: not valid YAML"):
        load_tokenizer(model)
    # Perceptual-loss weights (.pth) load with weights_only=True.
    torch.save({"w": Payload(marker)}, tmp_path / "vgg.pth")
    with pytest.raises(Exception, match="Weights only load failed"):
        _load_state(tmp_path / "vgg.pth", "vgg16 weights")
    assert not marker.exists()
