"""The frame-causal mask: what each token may see, and that attention with it keeps earlier
frames independent of later ones."""

import torch

from vtlm.layers.attention import Attention
from vtlm.layers.masks import frame_causal_mask, token_frames
from vtlm.layers.rope import rope_angles


def test_mask_layout():
    mask = frame_causal_mask(prefix_len=3, frame_tokens=2, frames=3)
    frame = token_frames(3, 2, 3)
    assert mask.shape == (9, 9)
    for i in range(9):
        for j in range(9):
            expected = bool(frame[j] < 0 or (frame[i] >= 0 and frame[j] <= frame[i]))
            assert bool(mask[i, j]) == expected, (i, j)
    assert mask[:3, 3:].sum() == 0  # the prefix never sees video
    assert mask[3:5, 3:5].all()  # bidirectional inside a frame


def test_attention_with_mask_is_frame_causal():
    torch.manual_seed(0)
    prefix, per_frame, frames, dim = 2, 4, 3, 32
    attn = Attention(dim, heads=4, causal=False, backend="sdpa")
    n = prefix + per_frame * frames
    rope = rope_angles(torch.arange(n)[:, None].expand(-1, 3), dim // 4, "3d")
    mask = frame_causal_mask(prefix, per_frame, frames)
    x = torch.randn(2, n, dim)
    y = attn(x, rope, mask=mask)
    changed = x.clone()
    changed[:, prefix + per_frame :] += torch.randn_like(changed[:, prefix + per_frame :])  # frames 1, 2
    y2 = attn(changed, rope, mask=mask)
    torch.testing.assert_close(y2[:, : prefix + per_frame], y[:, : prefix + per_frame])
    assert (y2[:, prefix + per_frame :] - y[:, prefix + per_frame :]).abs().max() > 1e-3
    # without the mask the same change reaches the earlier frame
    assert (attn(changed, rope) - attn(x, rope))[:, prefix : prefix + per_frame].abs().max() > 1e-3
