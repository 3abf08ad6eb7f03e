import numpy as np
import pytest
import torch

from vtlm.data.text import BOS_ID, BOV_ID, EOV_ID, SPECIALS, TextTokenizer, train_text_tokenizer
from vtlm.data.video_io import get_backend
from vtlm.data.writers import frame_strip, grid_video, to_uint8, write_gif, write_mp4, write_png

CAPTIONS = [
    f"a {size} {color} {shape} moves {way}"
    for size in ("small", "large")
    for color in ("red", "blue", "green", "yellow")
    for shape in ("circle", "square", "triangle")
    for way in ("left", "right", "up", "down")
]


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    return train_text_tokenizer(CAPTIONS, tmp_path_factory.mktemp("text") / "caps.model", vocab_size=400)


def test_sentencepiece_round_trip_with_reserved_specials(text_model):
    tok = TextTokenizer(text_model)
    assert [tok.sp.id_to_piece(i) for i in range(len(SPECIALS))] == list(SPECIALS)
    assert (BOS_ID, BOV_ID, EOV_ID) == (2, 4, 5)
    for caption in CAPTIONS[:10] + ["a purple hexagon spins, 42 times!", ""]:
        ids = tok.encode(caption)
        assert all(len(SPECIALS) <= i < tok.vocab_size for i in ids)
        assert tok.decode(ids) == caption
    # words seen in training are whole pieces, so captions stay short
    assert len(tok.encode("a small red circle moves left")) <= 8
    assert tok.decode([BOS_ID] + tok.encode("blue square") + [BOV_ID]) == "blue square"
    assert tok.encode_batch(["red", "blue"]) == [tok.encode("red"), tok.encode("blue")]


def test_text_training_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="no non-empty caption"):
        train_text_tokenizer(["", "  "], tmp_path / "x.model")
    with pytest.raises(ValueError, match="vocab_size"):
        train_text_tokenizer(CAPTIONS, tmp_path / "x.model", vocab_size=100)
    with pytest.raises(FileNotFoundError, match="no model file"):
        TextTokenizer(tmp_path / "missing.model")


def test_to_uint8_layouts_and_range():
    video = torch.linspace(-1.5, 1.5, 3 * 2 * 4 * 5).reshape(3, 2, 4, 5)
    frames = to_uint8(video)
    assert frames.shape == (2, 4, 5, 3) and frames.dtype == np.uint8
    assert frames.min() == 0 and frames.max() == 255
    assert to_uint8(video[None]).shape == (1, 2, 4, 5, 3)
    assert to_uint8(torch.zeros(1, 1, 2, 2)).shape == (1, 2, 2, 3)
    assert int(to_uint8(torch.zeros(3, 1, 1, 1))[0, 0, 0, 0]) == 128
    with pytest.raises(ValueError, match="channels"):
        to_uint8(torch.zeros(2, 1, 4, 4))


def test_mp4_gif_png_are_written_and_read_back(tmp_path):
    frames = np.zeros((6, 31, 33, 3), np.uint8)  # odd sides: padded for yuv420p
    frames[:, 8:20, 8:20] = (255, 0, 0)
    for t in range(6):
        frames[t, 25:28, 4 * t : 4 * t + 3] = 255  # a moving dot, so no two GIF frames merge
    mp4 = write_mp4(tmp_path / "out" / "clip.mp4", frames, fps=6)
    info = get_backend("auto").probe(mp4)
    assert (info.num_frames, info.height, info.width) == (6, 32, 34)
    back = get_backend("pyav").read(mp4, [3])[0]
    assert back[14, 14, 0] > 200 and back[14, 14, 1] < 60
    gif = write_gif(tmp_path / "clip.gif", frames, fps=6)
    from PIL import Image

    with Image.open(gif) as image:
        assert image.n_frames == 6
    png = write_png(tmp_path / "strip.png", frame_strip(frames, max_frames=3))
    with Image.open(png) as image:
        assert image.size == (3 * (33 + 2) + 2, 31 + 4)
    assert not list(tmp_path.rglob(".*tmp*")), "temporary files left behind"
    with pytest.raises(ValueError, match="uint8"):
        write_mp4(tmp_path / "bad.mp4", frames.astype(np.float32))


def test_grid_video_places_columns_and_rows():
    a = np.full((2, 3, 4, 4, 3), 10, np.uint8)
    b = np.full((2, 5, 4, 4, 3), 200, np.uint8)
    grid = grid_video([a, b], pad=1)
    assert grid.shape == (5, 2 * 5 + 1, 2 * 5 + 1, 3)
    assert grid[0, 1, 1, 0] == 10 and grid[0, 1, 6, 0] == 200 and grid[0, 6, 6, 0] == 200
    assert grid[4, 1, 1, 0] == 0  # the shorter column is padded with black
    assert grid[0, 0, 0, 0] == 255
    with pytest.raises(ValueError, match="equal B, H, W"):
        grid_video([a, np.zeros((1, 3, 4, 4, 3), np.uint8)])
