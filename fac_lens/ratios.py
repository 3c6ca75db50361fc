"""Head-wise modality attention ratios S_v, S_t (paper eq. 4)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from .approx import AllClose
from .attention_probe import ATTENTION_NAME, attached_probes, mean_visual_mass, normalized_visual_mass
from .errors import FacLensError
from .inputs import model_errors
from .lens_model import LensModel
from .queries import Query, query_label, query_mask

METHODS = ("indicator", "pattern")
NORMALIZE = (None, "image_share")


@dataclass(frozen=True, eq=False)
class HeadRatios(AllClose):
    """Visual attention ratio of every head, per sample.

    Attributes:
        per_sample: float32 [S, n_layers, n_heads]: S_v for each of S samples.
        query: the query set the ratios average over (``"all"``, ``"last"``, ``"text"``, ``"mask"``).
        normalize: None, or ``"image_share"``: each row's visual mass divided by the share of
            image keys it sees (1 = attention in proportion to token count; may exceed 1).
    """

    per_sample: torch.Tensor
    query: str = "all"
    normalize: str | None = None

    @property
    def visual(self) -> torch.Tensor:
        """[n_layers, n_heads] S_v, mean over samples."""
        return self.per_sample.mean(0)

    @property
    def text(self) -> torch.Tensor:
        """[n_layers, n_heads] S_t = 1 - S_v (image and text tokens partition the keys)."""
        if self.normalize is not None:
            raise FacLensError("S_t = 1 - S_v holds for raw ratios only; record them without normalize")
        return 1.0 - self.visual

    @property
    def std(self) -> torch.Tensor:
        """[n_layers, n_heads] spread of S_v over samples (0 for a single sample)."""
        if self.n_samples < 2:
            return torch.zeros_like(self.visual)
        return self.per_sample.std(0)

    @property
    def n_samples(self) -> int:
        return self.per_sample.shape[0]

    @property
    def n_layers(self) -> int:
        return self.per_sample.shape[1]

    @property
    def n_heads(self) -> int:
        return self.per_sample.shape[2]

    def sample(self, index: int) -> HeadRatios:
        """The ratios of one sample."""
        return HeadRatios(self.per_sample[index : index + 1], self.query, self.normalize)

    def layer_trajectory(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer-wise visual ratio (Section 2.2): head-mean per sample, then mean and std over samples.

        Returns:
            (mean [n_layers], std [n_layers]).
        """
        per_layer = self.per_sample.mean(-1)  # [S, L]
        std = per_layer.std(0) if self.n_samples > 1 else torch.zeros(self.n_layers)
        return per_layer.mean(0), std

    @staticmethod
    def concat(items: Sequence[HeadRatios]) -> HeadRatios:
        """Stack the samples of several results (same model, same query set)."""
        if not items:
            raise FacLensError("HeadRatios.concat needs at least one HeadRatios")
        queries = {item.query for item in items}
        if len(queries) > 1:
            raise FacLensError(f"cannot concatenate ratios over different query sets {queries}")
        if len({item.normalize for item in items}) > 1:
            raise FacLensError("cannot concatenate raw and normalised ratios")
        return HeadRatios(torch.cat([item.per_sample for item in items]), items[0].query, items[0].normalize)


def attention_ratios(
    model: LensModel,
    inputs: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    query: Query = "all",
    method: str = "indicator",
    progress: bool = True,
    normalize: str | None = None,
) -> HeadRatios:
    """Record S_v for every text-decoder head.

    Args:
        model: a loaded :class:`LensModel`.
        inputs: HF kwargs for one batch, or an iterable of such dicts (one forward each, shown with
            a progress bar; samples are concatenated).
        query: the query set (see :func:`fac_lens.queries.query_mask`).
        method: ``"indicator"`` (default): SDPA with an image-indicator value, O(N) memory, never
            builds attention; ``"pattern"``: eager attention read at ``hook_pattern``, reduced as
            each layer produces it (one layer's N x N at a time).
        normalize: None (paper eq. 4), or ``"image_share"``: divide each query row's visual mass
            by the share of image keys among the keys it sees, so that an image of many tokens does
            not draw mass by count alone (rows that see no image key are left out). Indicator only.

    Returns:
        :class:`HeadRatios` with one row per sample.
    """
    if method not in METHODS:
        raise FacLensError(f"unknown method {method!r}; use one of {METHODS}")
    if normalize not in NORMALIZE:
        raise FacLensError(f"unknown normalize={normalize!r}; use one of {NORMALIZE}")
    if normalize is not None and method != "indicator":
        raise FacLensError(
            "normalize='image_share' is computed by the indicator method: use method='indicator'"
        )
    if isinstance(inputs, Mapping):
        return HeadRatios(_record(model, inputs, query, method, normalize), query_label(query), normalize)
    try:
        batches = list(inputs)
    except TypeError as error:
        raise FacLensError(
            f"attention_ratios needs a dict of HF model kwargs or a list of them, got "
            f"{type(inputs).__name__}; build one with model.prepare(image, text)"
        ) from error
    if not batches:
        raise FacLensError("attention_ratios got an empty list of inputs")
    rows = [
        _record(model, batch, query, method, normalize)
        for batch in tqdm(batches, desc="attention ratios", disable=not progress)
    ]
    return HeadRatios(torch.cat(rows), query_label(query), normalize)


def _record(
    model: LensModel, inputs: Mapping[str, Any], query: Query, method: str, normalize: str | None = None
) -> torch.Tensor:
    """One forward; returns [B, n_layers, n_heads] float32 S_v."""
    inputs = model.normalize(inputs)
    ids = inputs["input_ids"]
    qmask = query_mask(query, ids, inputs.get("attention_mask"), model.image_token_id)
    key_is_image = (ids == model.image_token_id).float()
    result = torch.full((ids.shape[0], model.n_layers, model.n_heads), float("nan"))
    record = _record_pattern if method == "pattern" else _record_indicator
    model.reset_state()
    try:
        with torch.no_grad(), model_errors():
            if method == "pattern":
                record(model, inputs, qmask, key_is_image, result)
            else:
                record(model, inputs, qmask, key_is_image, result, normalize is not None)
    finally:
        model.reset_state()
    if torch.isnan(result).any():
        raise RuntimeError(
            "some layers were not recorded: the text decoder's attention did not run through "
            "fac_lens (was its attention implementation changed by hand?)"
        )
    return result


def _record_indicator(model, inputs, qmask, key_is_image, result, normalized: bool = False) -> None:
    n_query = qmask.shape[1]
    weights = qmask.float() / qmask.sum(1, keepdim=True)  # [B, N]
    reduce = normalized_visual_mass if normalized else mean_visual_mass

    def make_probe(layer: int):
        def probe(module, query, key, attention_mask, scaling):
            if query.shape[2] != n_query:
                return  # a pass with other queries (not this recording)
            visual = reduce(module, query, key, attention_mask, scaling, key_is_image, weights)
            result[:, layer] = visual.cpu()

        return probe

    with (
        model.attention_implementation(ATTENTION_NAME),
        model.fast_path(),
        attached_probes(model.attention_modules, make_probe),
    ):
        model.spec.multimodal_core(model.hf)(**inputs)


def _record_pattern(model, inputs, qmask, key_is_image, result) -> None:
    weights = qmask.float()
    weights = weights / weights.sum(1, keepdim=True)  # [B, N]

    def make_hook(layer: int):
        def hook(pattern: torch.Tensor, hook) -> None:  # pattern [B, H, Q, K]
            mass = (pattern.float() * key_is_image[:, None, None, :].to(pattern.device)).sum(-1)
            mass = torch.nan_to_num(mass)
            result[:, layer] = (mass * weights[:, None, :].to(mass.device)).sum(-1).cpu()

        return hook

    hooks = [(f"blocks.{layer}.attn.hook_pattern", make_hook(layer)) for layer in range(model.n_layers)]
    with model.attention_implementation("eager"), model.bridge.hooks(fwd_hooks=hooks):
        model.spec.multimodal_core(model.hf)(**inputs, output_attentions=False)
