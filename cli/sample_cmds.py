"""``vtlm sample``: videos from a trained generator, from a caption, a prefix video, or both."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from vtlm.data.clips import resize_crop, to_clip_tensor
from vtlm.data.synthetic import SyntheticConfig, SyntheticDataset
from vtlm.data.video_io import get_backend
from vtlm.data.writers import frame_strip, grid_video, to_uint8, upscale, write_gif, write_mp4, write_png
from vtlm.diffusion.flow import SamplerConfig
from vtlm.diffusion.forcing import ForcingSamplerConfig
from vtlm.gpt.sampling import SamplingConfig
from vtlm.maskgit.sampling import MaskGITSamplingConfig


def _file_prefix(path: str, frames: int, resolution: int) -> torch.Tensor:
    reader = get_backend("auto")
    info = reader.probe(path)
    if info.num_frames < frames:
        raise ValueError(
            f"prefix_video: {path} has {info.num_frames} frames, fewer than prefix_frames {frames}"
        )
    pixels = resize_crop(reader.read(path, list(range(frames))), resolution)
    return to_clip_tensor(pixels)


def sample(
    generator: str,
    out: str = "runs/samples",
    caption: str | list[str] | None = None,
    prefix_video: str | None = None,
    from_data: SyntheticConfig | None = None,
    data_indices: list[int] | None = None,
    prefix_frames: int = 0,
    num_frames: int = 9,
    samples_per_input: int = 1,
    sampling: SamplingConfig = SamplingConfig(),
    diffusion: SamplerConfig = SamplerConfig(),
    forcing: ForcingSamplerConfig = ForcingSamplerConfig(),
    maskgit: MaskGITSamplingConfig = MaskGITSamplingConfig(),
    seed: int = 0,
    device: str = "cpu",
) -> list[str]:
    """Sample videos from a GPT or a diffusion model directory and write them as mp4 + GIF,
    with the ground truth beside them when known.

    Inputs, one of: captions (`--caption "a red circle moves left"`, repeatable), a prefix
    video file (its first prefix_frames frames, with the caption if given), or items of a
    built-in dataset (`--from_data.split test --data_indices [0,1]`: their captions, their first
    prefix_frames frames, and their true continuation as ground truth).

    Args:
        generator: model directory of a trained generator (e.g. RUN/gpt).
        out: output folder.
        caption: a caption, or a list of them (`--caption "[a red circle, a blue square]"`).
        prefix_video: a video file whose first frames start every sample.
        from_data: a built-in dataset to take captions, prefixes and ground truth from.
        data_indices: which items of from_data.
        prefix_frames: frames given as the start (0, or 1 + k * the tokenizer's stride).
        num_frames: frames per video (1 + k * stride; longer than the context slides the window).
        samples_per_input: samples drawn for each caption / prefix.
        sampling: a GPT's temperature (0: greedy), top_k, top_p, cfg_scale.
        diffusion: a diffusion model's steps, solver (euler, heun, dpmpp_2m) and cfg_scale.
        forcing: a frame-causal diffusion model's steps, solver, context_noise, hist_scale,
            cfg_scale, anchor_first and chunk.
        maskgit: a masked-decoding model's steps, temperature, choice_temperature, cfg_scale,
            schedule and reencode_context.
        seed: sampling seed.
        device: cpu or cuda.
    """
    from vtlm.generate.interface import load_generator

    model = load_generator(
        generator, device=device, sampling=sampling, sampler=diffusion, maskgit=maskgit, forcing=forcing
    )
    r = model.resolution
    truth = None
    if from_data is not None:
        data = SyntheticDataset(
            replace(
                from_data,
                shapes=replace(from_data.shapes, num_frames=num_frames, resolution=r),
                digits=replace(from_data.digits, num_frames=num_frames, resolution=r),
            )
        )
        items = [data[i] for i in (data_indices or [0])]
        captions = [item["caption"] for item in items]
        truth = torch.stack([item["video"] for item in items])
        prefix = truth[:, :, :prefix_frames] if prefix_frames else None
    else:
        captions = [caption] if isinstance(caption, str) else list(caption or [""])
        prefix = None
        if prefix_video:
            prefix = _file_prefix(prefix_video, prefix_frames, r)[None].expand(len(captions), -1, -1, -1, -1)
        elif prefix_frames:
            raise ValueError("prefix_frames: needs prefix_video or from_data")
    repeat = samples_per_input
    captions_all = [c for c in captions for _ in range(repeat)]
    prefix_all = prefix.repeat_interleave(repeat, dim=0) if prefix is not None else None
    videos = model.generate(captions_all, num_frames, prefix_all, seed=seed)
    out_dir = Path(out)
    written = []
    for i, video in enumerate(videos):
        frames = to_uint8(video)
        written.append(str(write_mp4(out_dir / f"sample_{i:03d}.mp4", frames, fps=8)))
        write_gif(out_dir / f"sample_{i:03d}.gif", upscale(frames, max(1, 128 // r)), fps=8)
        print(f"{written[-1]}: {captions_all[i]!r}")
    columns = [to_uint8(videos)]
    if truth is not None:
        columns.insert(0, to_uint8(truth.repeat_interleave(repeat, dim=0)))
    sheet = upscale(grid_video(columns), max(1, 96 // r))
    write_gif(out_dir / "sheet.gif", sheet, fps=6)
    write_png(out_dir / "sheet.png", frame_strip(sheet, max_frames=9))
    print(f"sheet ({'ground truth | ' if truth is not None else ''}samples): {out_dir / 'sheet.gif'}")
    return written
