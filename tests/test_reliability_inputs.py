"""Bad configs and inputs: impossible shapes, a GPT paired with the wrong tokenizer, a caption
longer than the context, a missing checkpoint: one clear error naming the field and the
expected value, before any heavy work starts."""

import shutil
from dataclasses import replace

import pytest
import torch

from tests.conftest import generator_fit_args
from vtlm.cli.main import main
from vtlm.data.shard_dataset import TokenShards
from vtlm.data.text import TextTokenizer
from vtlm.generate.gpt import GPTGenerator
from vtlm.generate.interface import load_generator
from vtlm.gpt.config import preset as gpt_preset
from vtlm.gpt.model import GPT
from vtlm.gpt.sampling import SamplingConfig, sample_codes
from vtlm.tokenizer.config import preset as tokenizer_preset
from vtlm.tokenizer.encode import weights_sha256
from vtlm.tokenizer.model import VideoTokenizer
from vtlm.train.checkpoint import save_model_dir


def fails_with(args: list[str]) -> str:
    """The one-line error `vtlm ARGS` exits with."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    message = str(exit_info.value.code)
    assert message.startswith(f"vtlm {args[0]}: error: ") and "\n" not in message
    return message


def test_impossible_shapes_are_refused_before_a_run_starts(random_token_pipeline, tmp_path):
    s = tokenizer_preset("debug").spatial_downsample
    run = tmp_path / "tok"
    message = fails_with(["tokenizer", "fit", "--preset_name", "debug", "--trainer.out_dir", str(run),
                          "--data.resolution", str(4 * s + s // 2)])  # fmt: skip
    assert f"resolution: expected height and width divisible by {s}" in message
    assert not run.exists()
    # Windows longer than the clips (3 latent frames) or than the model's context.
    for kind in ("gpt", "diffusion"):
        run = tmp_path / kind
        args = generator_fit_args(kind, random_token_pipeline, run, 2, "0.001")
        message = fails_with(args + ["--data.window", "4", "--model.max_frames", "5"])
        assert "data.window: expected at most 3 latent frames" in message and "got 4" in message
        message = fails_with(args + ["--data.window", "3", "--model.max_frames", "2"])
        assert "data.window: 3 latent frames do not fit" in message and "max_frames 2" in message
        assert not run.exists()
    message = fails_with(generator_fit_args("gpt", random_token_pipeline, run, 2, "0.001")
                         + ["--trainer.resume", str(tmp_path / "nowhere.ckpt")])  # fmt: skip
    assert "nowhere.ckpt: no such checkpoint file" in message


def gpt_dir(pipeline: dict, path, tokenizer_dir) -> None:
    """An (untrained) GPT model directory recording ``tokenizer_dir`` and its weights' hash."""
    shards, text = TokenShards(pipeline["train"]), TextTokenizer(pipeline["text"])
    h, w = shards.grid
    cfg = replace(
        gpt_preset("debug"), text_size=text.vocab_size, codebook_size=shards.codebook_size, grid_h=h, grid_w=w
    )
    info = {
        "dir": str(tokenizer_dir),
        "sha256": weights_sha256(tokenizer_dir),
        "text_model": str(pipeline["text"]),
    }
    save_model_dir(path, "gpt", cfg.to_dict(), GPT(cfg).state_dict(), {"tokenizer": info})


def test_a_gpt_paired_with_another_tokenizer_is_refused(random_token_pipeline, tmp_path):
    tokenizer = shutil.copytree(random_token_pipeline["tokenizer"], tmp_path / "tokenizer")
    gpt_dir(random_token_pipeline, tmp_path / "gpt", tokenizer)
    assert load_generator(tmp_path / "gpt").resolution == 32  # paired as recorded: fine

    torch.manual_seed(1)  # another tokenizer of the same shape: the same codebook, other codes
    cfg = tokenizer_preset("debug")
    other = save_model_dir(tmp_path / "other", "tokenizer", cfg.to_dict(), VideoTokenizer(cfg).state_dict())
    with pytest.raises(
        ValueError, match=r"other: not the tokenizer .*gpt was trained on \(weights hash differs\)"
    ):
        GPTGenerator(tmp_path / "gpt", tokenizer_dir=str(other))
    shutil.rmtree(tokenizer)
    shutil.copytree(other, tokenizer)  # the recorded folder now holds other weights
    with pytest.raises(ValueError, match="weights hash differs"):
        load_generator(tmp_path / "gpt")


def test_a_caption_longer_than_the_context_is_refused_before_the_network_runs():
    cfg = replace(
        gpt_preset("debug"), text_len=4, max_frames=3, grid_h=2, grid_w=2, codebook_size=20, text_size=300
    )
    model = GPT(cfg).eval()

    def no_network(*args, **kwargs):
        raise AssertionError("the network ran")

    model.forward = no_network
    with pytest.raises(ValueError, match="captions: 6 text ids, more than the model's text_len of 4"):
        sample_codes(model, [[5, 6], [5, 6, 7, 8, 9, 10]], 2, SamplingConfig())
    with pytest.raises(ValueError, match="prefix: 3 latent frames do not fit the context of 3"):
        sample_codes(model, [[5]], 4, SamplingConfig(), prefix=torch.zeros(1, 3, 2, 2, dtype=torch.long))
