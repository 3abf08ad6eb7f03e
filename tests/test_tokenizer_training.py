"""Training the tokenizer end to end on CPU: fit, export, load, encode to shards, resume, faults."""

import csv
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from vtlm.cli.main import main
from vtlm.data.batching import collate_clips
from vtlm.data.shard_dataset import TokenShards
from vtlm.data.video_datamodule import VideoDataConfig, synthetic_split
from vtlm.tokenizer.config import preset
from vtlm.tokenizer.io import load_tokenizer
from vtlm.tokenizer.model import VideoTokenizer
from vtlm.tokenizer.objective import LossConfig, TokenizerObjective
from vtlm.tokenizer.training import TokenizerModule
from vtlm.train.checkpoint import save_model_dir
from vtlm.train.optim import OptimConfig

VTLM = str(Path(sys.executable).with_name("vtlm"))


def metrics(run: Path) -> list[dict]:
    return list(csv.DictReader(open(run / "logs" / "metrics.csv")))


def test_debug_fit_lowers_the_loss_and_exports_a_loadable_tokenizer(debug_tokenizer_run):
    rows = [r for r in metrics(debug_tokenizer_run) if r.get("train/rec_video")]
    first, last = float(rows[0]["train/rec_video"]), np.mean([float(r["train/rec_video"]) for r in rows[-2:]])
    assert last < 0.8 * first, (first, last)
    val = [r for r in metrics(debug_tokenizer_run) if r.get("val/psnr")]
    assert val and float(val[-1]["val/utilization"]) > 0 and float(val[-1]["val/ssim"]) > -1
    assert sorted(p.suffix for p in (debug_tokenizer_run / "samples").glob("step0000040.*")) == [
        ".gif",
        ".mp4",
        ".png",
    ]
    model = load_tokenizer(debug_tokenizer_run / "tokenizer")
    assert not model.training and model.codebook_size == 4375
    clip = synthetic_split(VideoDataConfig(), "val", 9, 2)[0]["video"][None]
    assert model.decode(model.encode(clip)).shape == clip.shape


def test_export_load_gives_identical_reconstructions(tmp_path):
    cfg = preset("debug")
    module = TokenizerModule(cfg, LossConfig(), OptimConfig(), total_steps=10, ema_decay=0.9)
    with torch.no_grad():
        for p in module.tokenizer.parameters():
            p.add_(torch.randn_like(p) * 0.01)
        module.ema.update(module.tokenizer)
    path = module.export(tmp_path / "tok")
    loaded = load_tokenizer(path)
    clip = torch.rand(2, 3, 9, 32, 32) * 2 - 1
    expected = module.eval_tokenizer.eval().decode(module.eval_tokenizer.encode(clip))
    assert torch.equal(loaded.decode(loaded.encode(clip)), expected)
    meta = (path / "config.yaml").read_text()
    assert "kind: tokenizer" in meta and "patch_size: 2" in meta


def test_mismatched_weights_and_config_are_refused(tmp_path):
    state = VideoTokenizer(preset("debug")).state_dict()
    save_model_dir(tmp_path / "bad", "tokenizer", preset("small").to_dict(), state)
    with pytest.raises((ValueError, RuntimeError), match="size mismatch|do not match"):
        load_tokenizer(tmp_path / "bad")
    save_model_dir(tmp_path / "gpt", "gpt", {}, {})
    with pytest.raises(ValueError, match="expected a 'tokenizer' model directory"):
        load_tokenizer(tmp_path / "gpt")


def test_encode_to_shards_reads_back_the_tokenizers_codes(debug_tokenizer_run, tmp_path):
    out = tmp_path / "shards"
    main(
        [
            "tokenizer",
            "encode",
            str(debug_tokenizer_run / "tokenizer"),
            str(out),
            "--splits",
            "[train, val]",
            "--num_clips",
            "{train: 10, val: 3}",
            "--batch_size",
            "4",
            "--clips_per_shard",
            "4",
        ]
    )
    shards = TokenShards(out / "train")
    assert len(shards) == 10 and shards.codebook_size == 4375 and shards.grid == (8, 8)
    assert shards.extra["tokenizer"]["patch_size"] == 2 and len(shards.extra["tokenizer_sha256"]) == 64
    model = load_tokenizer(debug_tokenizer_run / "tokenizer")
    clips = synthetic_split(VideoDataConfig(), "train", 9, 10)
    keys = [shards.key(i) for i in range(len(shards))]
    for i in (0, 7):
        j = keys.index(f"shapes/train/{i:07d}")
        expected = model.encode(clips[i]["video"][None])[0].numpy()
        assert np.array_equal(shards.codes(j), expected)
        assert shards.caption(j) == clips[i]["caption"] and shards.meta(j)["labels"]["num_frames"] == 9
    assert len(TokenShards(out / "val")) == 3
    # a second run finds everything done and re-encodes nothing
    before = sorted(p.name for p in (out / "train").iterdir())
    main(
        [
            "tokenizer",
            "encode",
            str(debug_tokenizer_run / "tokenizer"),
            str(out),
            "--splits",
            "[train]",
            "--num_clips",
            "{train: 10}",
            "--clips_per_shard",
            "4",
        ]
    )
    assert sorted(p.name for p in (out / "train").iterdir()) == before


def test_encode_a_folder_of_files_whole(debug_tokenizer_run, video_folder, tmp_path):
    root, _ = video_folder
    out = tmp_path / "folder_shards"
    main(
        [
            "tokenizer",
            "encode",
            str(debug_tokenizer_run / "tokenizer"),
            str(out),
            "--splits",
            "[train, val, test]",
            "--data.source",
            "folder",
            "--data.folder_root",
            str(root),
            "--data.resolution",
            "32",
            "--data.num_frames",
            "1",
            "--batch_size",
            "1",
        ]
    )
    found = {}
    for split in ("train", "val", "test"):
        if (out / split / "index.json").is_file():
            shards = TokenShards(out / split)
            found.update({shards.key(i): shards.shape(i) for i in range(len(shards))})
    assert found["a.mp4"] == (1 + (24 - 1) // 4, 8, 8)  # 21 of 24 frames: 1 + 5 * 4
    assert found["sub/c.mp4"] == (1 + (30 - 1) // 4, 8, 8)
    assert "broken.mp4" not in found and "short.mp4" in found  # whole files: 3 frames -> 1 latent frame
    assert found["short.mp4"] == (1, 8, 8)


def test_bad_run_configs_fail_before_training(tmp_path, capsys):
    run = ["tokenizer", "fit", "--preset_name", "debug", "--trainer.out_dir", str(tmp_path / "r")]
    for extra, message in (
        (["--data.num_frames", "8"], "frames: expected 1 + k * 4"),
        (["--model.quantiser", "vq"], "quantiser"),
        (["--loss.perceptual_weight", "0.1"], "downloads nothing"),
    ):
        with pytest.raises(SystemExit) as done:  # the console script's entry point, in this process
            main(run + extra)
        said = f"{done.value.code}\n{capsys.readouterr().err}"  # the exit message, or the parser's
        assert done.value.code not in (0, None) and message in said, said
    assert not (tmp_path / "r" / "checkpoints").exists()


class _NaNData(L.LightningDataModule):
    def train_dataloader(self):
        items = [{"video": torch.full((3, 5, 16, 16), float("nan")), "caption": "", "meta": {}}] * 4
        return torch.utils.data.DataLoader(items, batch_size=2, collate_fn=collate_clips)


def test_non_finite_loss_stops_the_run_naming_the_step(tmp_path):
    cfg = replace(preset("debug"), spatial_downsample=4)
    module = TokenizerModule(cfg, LossConfig(), OptimConfig(), total_steps=4, ema_decay=None)
    trainer = L.Trainer(
        max_steps=4,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    with pytest.raises(FloatingPointError, match="non-finite loss .* at step 0"):
        trainer.fit(module, datamodule=_NaNData())


@pytest.mark.parametrize("quantizer", ["lfq", "vq", "kl"])
def test_every_bottleneck_trains(quantizer):
    torch.manual_seed(0)
    cfg = replace(preset("debug"), quantizer=quantizer, lfq_bits=10, vq_codebook_size=256, vq_dim=4)
    model, objective = VideoTokenizer(cfg), TokenizerObjective(LossConfig())
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    clips = torch.stack([synthetic_split(VideoDataConfig(), "train", 5, 4)[i]["video"] for i in range(4)])
    losses = []
    for step in range(25):
        recon, quantized = model(clips)
        loss, _ = objective.generator_loss(clips, recon, quantized, step, model.decoder.last_layer)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert np.isfinite(losses).all() and np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses


def test_adversarial_training_steps_both_networks(tmp_path):
    data = VideoDataConfig(batch_size=2, val_clips=2)
    loss = LossConfig(
        adversarial_weight=0.1,
        adversarial_start=2,
        adversarial_warmup=2,
        r1_gamma=1.0,
        discriminator={"channels": 8, "num_layers": 2, "max_channels": 16},
    )
    module = TokenizerModule(
        preset("debug"), loss, OptimConfig(warmup_steps=1), total_steps=6, ema_decay=None
    )
    before = [p.detach().clone() for p in module.objective.discriminator.parameters()]
    from vtlm.data.video_datamodule import VideoDataModule

    trainer = L.Trainer(
        max_steps=6,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=VideoDataModule(data))
    assert trainer.global_step == 6  # generator steps only
    after = list(module.objective.discriminator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    assert float(module.objective.lecam.ema_real) != 0.0
    assert "train/d_loss" in trainer.callback_metrics and "train/adv_weight" in trainer.callback_metrics


@pytest.mark.slow
def test_two_process_encode_writes_disjoint_shards_and_one_index(debug_tokenizer_run, tmp_path):
    out = tmp_path / "ddp_shards"
    cmd = [
        VTLM,
        "tokenizer",
        "encode",
        str(debug_tokenizer_run / "tokenizer"),
        str(out),
        "--splits",
        "[train]",
        "--num_clips",
        "{train: 12}",
        "--devices",
        "2",
        "--batch_size",
        "4",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    names = sorted(p.name for p in (out / "train").glob("*.json") if p.name != "index.json")
    assert {n.split("-")[0] for n in names} == {"rank00", "rank01"}
    index = json.loads((out / "train" / "index.json").read_text())
    assert index["num_clips"] == 12
    shards = TokenShards(out / "train")
    assert sorted(shards.key(i) for i in range(12)) == [f"shapes/train/{i:07d}" for i in range(12)]
