"""fl.image_attention against plain-HF eager attention (output_attentions=True) on every architecture."""

import pytest
import torch

import fac_lens as fl
from fac_lens.errors import FacLensError
from tests.references import reference_attentions

pytestmark = pytest.mark.contract("image_attention")


def image_runs(input_ids: torch.Tensor, image_token_id: int) -> list[list[int]]:
    """Positions of the image tokens, split where a non-image token intervenes."""
    runs, current = [], []
    for i, token in enumerate(input_ids.tolist()):
        if token == image_token_id:
            current.append(i)
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


def fit(height: int, width: int, pinpoint: list[int]) -> tuple[int, int]:
    """LLaVA-NeXT's choice of tiling: most image pixels kept after scaling into it, then least waste."""
    scale = min(pinpoint[1] / width, pinpoint[0] / height)
    kept = min(int(width * scale) * int(height * scale), width * height)
    return -kept, pinpoint[0] * pinpoint[1] - kept


def expected_grid(reference, inputs: dict) -> tuple[int, int, list[int]]:
    """(rows, cols, positions of the grid cells in raster order) of the first image, by hand from the
    config and the image kwargs (each family's documented token order)."""
    config = reference.config
    kind = config.model_type
    run = image_runs(inputs["input_ids"][0], config.image_token_id)[0]
    vision = config.vision_config
    if kind in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "kimi_k25"):
        t, h, w = inputs["image_grid_thw"][0].tolist()
        merge = vision.merge_kernel_size if kind == "kimi_k25" else [vision.spatial_merge_size] * 2
        rows, cols = t * h // merge[0], w // merge[1]
        return rows, cols, run
    if kind == "llava":
        side = vision.image_size // vision.patch_size
        return side, side, run
    if kind == "gemma3":
        side = int(config.mm_tokens_per_image**0.5)
        return side, side, run
    if kind in ("idefics3", "smolvlm"):
        side = vision.image_size // vision.patch_size // config.scale_factor
        return side, side, run[: side * side]
    # anyres: base crop (side^2), then the high-res rows, each ending in a newline feature
    side = vision.image_size // vision.patch_size
    height, width = inputs["image_sizes"][0].tolist()
    pinpoints = config.image_grid_pinpoints
    best = min(pinpoints, key=lambda p: fit(height, width, p))
    tiles_h, tiles_w = best[0] // vision.image_size, best[1] // vision.image_size
    full_h, full_w = tiles_h * side, tiles_w * side
    # unpad by hand: keep the rows/cols the image (not the padding) covers
    if width / height > full_w / full_h:
        new_h = int(round(height * (full_w / width), 7))
        pad = (full_h - new_h) // 2
        rows, cols = full_h - 2 * pad, full_w
    else:
        new_w = int(round(width * (full_h / height), 7))
        pad = (full_w - new_w) // 2
        rows, cols = full_h, full_w - 2 * pad
    high = run[side * side :]
    assert len(high) == rows * (cols + 1)
    cells = [high[r * (cols + 1) + c] for r in range(rows) for c in range(cols)]
    return rows, cols, cells


@pytest.mark.parametrize("position", [-1, 5])
def test_image_maps_match_plain_hf_eager(pair, single, position):
    model, reference = pair
    attentions = reference_attentions(reference, single)  # L x [1, H, N, N]
    att = fl.image_attention(model, single, position=position)
    n = single["input_ids"].shape[1]
    row = position % n
    expected_rows = torch.stack([a[0, :, row].double() for a in attentions])  # [L, H, N]
    torch.testing.assert_close(att.attention.double(), expected_rows, atol=1e-5, rtol=0)
    rows, cols, cells = expected_grid(reference, single)
    first = att.maps[0]
    assert first.dtype == torch.float32
    assert first.shape == (model.n_layers, model.n_heads, rows, cols)
    expected_map = expected_rows[:, :, cells].view(model.n_layers, model.n_heads, rows, cols)
    torch.testing.assert_close(first.double(), expected_map, atol=1e-5, rtol=0)
    image = single["input_ids"][0] == reference.config.image_token_id
    torch.testing.assert_close(att.visual.double(), expected_rows[:, :, image].sum(-1), atol=1e-5, rtol=0)


def test_several_positions_in_one_forward_and_under_rescale(pair, single):
    model, reference = pair
    many = fl.image_attention(model, single, position=[2, -1])
    assert [a.position for a in many] == [2, single["input_ids"].shape[1] - 1]
    one = fl.image_attention(model, single, position=2)
    torch.testing.assert_close(many[0].attention, one.attention, atol=1e-6, rtol=0)
    # under static gains the layer-0 attention is unchanged (gains act after attention) while later
    # layers see rescaled inputs: compare with the reference's hand-scaled o_proj columns
    from tests.references import fold_by_hand

    gains = torch.ones(model.n_layers, model.n_heads)
    gains[0, 0] = 2.5
    with fl.rescale(model, fl.Gains(gains)):
        scaled = fl.image_attention(model, single, position=-1)
    fold_by_hand(reference, gains)
    attentions = reference_attentions(reference, single)
    expected = torch.stack([a[0, :, -1].double() for a in attentions])
    torch.testing.assert_close(scaled.attention.double(), expected, atol=1e-5, rtol=0)


def test_bad_input_is_refused_before_any_work(pair, batch, single):
    model, _ = pair
    with pytest.raises(FacLensError, match="batch of 1"):
        fl.image_attention(model, batch)
    with pytest.raises(FacLensError, match="outside the sequence"):
        fl.image_attention(model, single, position=10_000)
    att = fl.image_attention(model, single)
    with pytest.raises(FacLensError, match="layer"):
        att.plot(model.n_layers, 0)
    with pytest.raises(FacLensError, match="no view"):
        att.view(0, "nope")


def test_overlay_and_token_plots_draw_on_the_given_axes(pair, single):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from fac_lens.plotting import plot_image_attention, plot_token_attention, token_strip

    model, _ = pair
    att = fl.image_attention(model, single)
    fig, axes = plt.subplots(1, 2)
    image = np.zeros((56, 56, 3), dtype=np.uint8)
    assert plot_image_attention(att, 1, 2, image=image, ax=axes[0]) is axes[0]
    shown = axes[0].images[-1].get_array()
    torch.testing.assert_close(torch.as_tensor(np.asarray(shown)), att.maps[0][1, 2], atol=0, rtol=0)
    assert plot_token_attention(att, 1, 2, ax=axes[1]) is axes[1]
    labels, weights = token_strip(att, 1, 2)
    # the strip partitions the row: text tokens one by one, each image summed into one bar
    assert sum(weights) == pytest.approx(float(att.attention[1, 2].sum()), abs=1e-5)
    assert sum(label.startswith("[image") for label in labels) == len(att.maps)
    plt.close(fig)
