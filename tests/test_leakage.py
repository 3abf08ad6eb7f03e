"""The leakage guard: a normal setup passes; held-out clips in the training data are refused."""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml

from vtlm.data.shards import ShardWriter, write_index
from vtlm.eval.protocols.leakage import LeakageError, check_leakage
from vtlm.eval.protocols.registry import get_protocol
from vtlm.tokenizer.io import load_tokenizer


def _protocols() -> dict:
    """Reconstruction first (its 17 given frames cannot be cut to the shards' 9), at most 3 clips."""
    names = ("shapes-recon", "shapes-t2v", "shapes-rollout")
    return {
        name: get_protocol(name).replace(num_clips=2 if name == "shapes-rollout" else 3) for name in names
    }


def _synthetic(tokenizer_dir):
    from vtlm.eval.protocols.clips import synthetic_from_run

    return synthetic_from_run(tokenizer_dir)


def test_a_normal_setup_passes_and_records_what_was_compared(debug_gpt_run, token_pipeline):
    tokenizer_dir = token_pipeline["tokenizer"]
    record = check_leakage(
        _protocols(), _synthetic(tokenizer_dir), None, load_tokenizer(tokenizer_dir), tokenizer_dir,
        {"gpt": str(debug_gpt_run / "gpt")},
    )  # fmt: skip
    assert record["checked"] and not record["unverified"]
    assert "split train, dataset seed 0" in record["tokenizer"]["trained_on"]
    gpt = record["generators"]["gpt"]
    assert gpt["entries"] == gpt["codes_compared"] == 24
    assert gpt["train_shards"] == str(token_pipeline["train"].resolve())  # recorded at export
    assert record["content_hashes"] == {"3": 3}  # 3 held-out clips at the shards' 3 latent frames


def test_evaluating_on_the_training_split_is_refused(debug_gpt_run, token_pipeline):
    tokenizer_dir = token_pipeline["tokenizer"]
    with pytest.raises(LeakageError) as caught:
        check_leakage(
            _protocols(), _synthetic(tokenizer_dir), None, load_tokenizer(tokenizer_dir), tokenizer_dir,
            {"gpt": str(debug_gpt_run / "gpt")}, split="train",
        )  # fmt: skip
    message = str(caught.value)
    assert "tokenizer (" in message and "held-out clips shapes train #0..#2" in message
    assert "entry 'shapes/train/0000001' is held-out clip shapes train #1" in message
    assert "never for reported numbers" in message


def _leaked_generator(debug_gpt_run, token_pipeline, tmp_path, clip: int) -> str:
    """A copy of the debug GPT whose train shards also hold held-out test clip ``clip``'s
    codes under an innocent key and without meta (only its content gives it away)."""
    from vtlm.eval.protocols.clips import load_held_out

    shards = tmp_path / "train"
    shutil.copytree(token_pipeline["train"], shards)
    tokenizer = load_tokenizer(token_pipeline["tokenizer"])
    held = load_held_out(
        get_protocol("shapes-t2v").replace(num_clips=3, total_frames=9),
        _synthetic(token_pipeline["tokenizer"]),
        None,
    )
    with torch.no_grad():
        codes = tokenizer.encode(held.video[clip : clip + 1])[0]
    with ShardWriter(shards, "extra", tokenizer.codebook_size) as writer:
        writer.add("scraped/clip-000", codes, "a caption")
    write_index(shards, {"data": {"source": "synthetic", "split": "train"}})
    model = tmp_path / "run" / "gpt"
    shutil.copytree(debug_gpt_run / "gpt", model)
    config = yaml.safe_load((model / "config.yaml").read_text())
    config["tokenizer"]["train_shards"] = str(shards)
    (model / "config.yaml").write_text(yaml.safe_dump(config))
    return str(model)


def test_a_train_shard_holding_a_held_out_clip_is_refused_before_evaluating(
    debug_gpt_run, token_pipeline, tmp_path
):
    from vtlm.eval.harness import EvalConfig, run_eval

    model = _leaked_generator(debug_gpt_run, token_pipeline, tmp_path, clip=1)
    cfg = EvalConfig(protocols=["shapes-recon", "shapes-t2v"], sweep_protocol=None, seeds=[0], num_clips=3)
    with pytest.raises(LeakageError) as caught:
        run_eval([model], cfg, tmp_path / "eval")
    message = str(caught.value)
    assert (
        "extra-00000.bin entry 'scraped/clip-000' holds the exact codes of held-out clip shapes test #1"
        in message
    )
    assert message.count("- generator gpt") == 1
    assert not (tmp_path / "eval" / "results.json").exists()


def test_a_generator_whose_training_shards_are_unknown_is_listed_as_unverified(
    debug_gpt_run, token_pipeline, tmp_path
):
    model = tmp_path / "moved" / "gpt"  # no run.yaml beside it
    shutil.copytree(debug_gpt_run / "gpt", model)
    config = yaml.safe_load((model / "config.yaml").read_text())
    del config["tokenizer"]["train_shards"]  # as exported before the shards were recorded
    (model / "config.yaml").write_text(yaml.safe_dump(config))
    tokenizer_dir = token_pipeline["tokenizer"]
    record = check_leakage(
        _protocols(),
        _synthetic(tokenizer_dir),
        None,
        load_tokenizer(tokenizer_dir),
        tokenizer_dir,
        {"gpt": str(model)},
    )
    assert record["unverified"] == [
        "generator gpt: training shards not recorded; its training clips are unknown"
    ]
    assert "gpt" not in record["generators"]
