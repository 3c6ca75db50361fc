"""``fl.rescale``: class-conditioned rescaling of head outputs before ``o_proj`` (eqs. 6-7)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import torch

from .attention_probe import (
    ATTENTION_NAME,
    attached_probes,
    mean_visual_mass,
    single_query_mass,
    visual_mass,
)
from .config import FacConfig
from .errors import FacLensError
from .gains import Gains, strategy_gains
from .head_hooks import head_scaling
from .image_keys import ImageKeyTracker
from .lens_model import LensModel
from .queries import query_mask
from .selection import HeadSelection, classify, identify_heads
from .teacher_forcing import trace_start


@dataclass
class RescaleHandle:
    """What a ``rescale`` block yields.

    Attributes:
        gains: the static gains (static mode), else None.
        config: the dynamic config (dynamic mode), else None.
        pass_ratios: dynamic mode: one float32 [B, n_layers, n_heads] S_v tensor per forward pass
            (prefill, then each decoding step), as used for that pass's identification.
    """

    gains: Gains | None = None
    config: FacConfig | None = None
    _passes: list[list[torch.Tensor | None]] = field(default_factory=list, repr=False)  # [B, H] per layer

    @property
    def pass_ratios(self) -> list[torch.Tensor]:
        return [
            torch.stack([v.detach().cpu() for v in p], 1)
            for p in self._passes
            if all(v is not None for v in p)
        ]

    def selection(self, pass_index: int, sample: int = 0) -> HeadSelection:
        """The heads the dynamic mode identified in one forward pass (a ``"token"`` query
        reports the mean over that pass's positions)."""
        if self.config is None:
            raise FacLensError("selection() is for dynamic rescaling (a FacConfig)")
        visual = self.pass_ratios[pass_index][sample]
        c = self.config
        return identify_heads(visual, c.l_perc, c.l_reas, c.tau_perc, c.tau_reas)


RECORD = ("all", "bands")


@contextmanager
def rescale(
    model: LensModel, gains_or_config: Gains | FacConfig, record: str = "all"
) -> Iterator[RescaleHandle]:
    """Rescale head outputs inside the block; any forward of the model is affected.

    Gains multiply each head's slice of the ``o_proj`` input: the tensor transformer-lens exposes
    as ``blocks.{l}.attn.hook_z`` (your own ``hook_z`` hooks see it before the gains).

    ``model.hf(...)``, ``model.hf.generate(...)`` and ``model.bridge(...)`` all run rescaled.
    On exit (normal or by an exception) every hook and probe is removed and the model computes
    exactly what it computed before.

    Args:
        model: a loaded :class:`LensModel`.
        gains_or_config: :class:`Gains` for static per-head gains, or a :class:`FacConfig` for
            the paper-faithful dynamic mode: every forward pass (prefill and each decoding step
            with the KV cache) measures each head's S_v from its own attention over
            ``config.query``, identifies heads (eq. 5) and rescales them in the same pass.
        record: dynamic mode: ``"all"`` measures S_v in every layer (``handle.pass_ratios`` is
            complete); ``"bands"`` only in the layers of the two bands, the only ones whose
            gains depend on it (same gains and outputs, less work per step; ``pass_ratios`` is
            NaN in the layers between the bands). The dynamic mode applies its gains inside the
            attention call, so your own ``hook_z`` hooks see them applied.

    Raises:
        FacLensError: gains of the wrong shape, boundaries outside the model, etc. Nothing is
            changed when it is raised.
    """
    if record not in RECORD:
        raise FacLensError(
            f"record={record!r}: use 'all' (S_v of every layer) or 'bands' (only where it decides)"
        )
    if isinstance(gains_or_config, Gains):
        gains_or_config.check_model(model.n_layers, model.n_heads)
        handle = RescaleHandle(gains=gains_or_config)
        devices = model.layer_devices()
        scales = {
            layer: row.to(devices[layer], model.dtype)
            for layer, row in enumerate(gains_or_config.values)
            if not bool((row == 1).all())
        }
        with head_scaling(model, scales.get):
            yield handle
    elif isinstance(gains_or_config, FacConfig):
        gains_or_config.check_model(model.n_layers)
        handle = RescaleHandle(config=gains_or_config)
        with _dynamic(model, gains_or_config, handle, record):
            yield handle
    else:
        raise FacLensError(
            f"rescale needs fl.Gains (static) or fl.FacConfig (dynamic), got {type(gains_or_config).__name__}"
        )


class _DynamicState:
    """Per-pass bookkeeping of the dynamic mode: image keys so far, query rows, layers probed.

    Each layer's probe measures S_v and returns that layer's gains, which the attention function
    applies to the head outputs it returns (the ``o_proj`` input) in the same call: no hook on
    ``o_proj`` and no hand-off between modules, so a decoding step pays only for the mass itself.
    """

    def __init__(self, model: LensModel, config: FacConfig, handle: RescaleHandle, record: str = "all"):
        self.model = model
        self.config = config
        self.handle = handle
        self.record = record
        self.image_keys = ImageKeyTracker(model.image_token_id)
        self.ids: torch.Tensor | None = None  # [B, Q] this pass's tokens
        self.mask: torch.Tensor | None = None  # [B, Q] their attention mask, if any
        self.layout: tuple[torch.Tensor | None, int] | None = None  # see _pass_layout
        self.current: list[torch.Tensor | None] = []  # this pass: S_v [B, H] of each layer

    def start_pass(self, module, args, kwargs) -> None:
        """Forward pre-hook on the multimodal core: read ``input_ids`` of this pass.

        How many keys are cached is not read here (transformers renamed the cache keyword in
        5.24): each layer's attention derives it from the keys it receives (``ImageKeyTracker``).
        """
        self.check_pass()
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            raise FacLensError(
                "dynamic rescaling reads image positions from input_ids; this forward passed "
                "inputs_embeds only"
            )
        self.image_keys.start_pass(ids, has_pixels=kwargs.get("pixel_values") is not None)
        mask = kwargs.get("attention_mask")
        self.ids = ids
        self.mask = mask[:, -ids.shape[1] :] if mask is not None and mask.dim() == 2 else None
        self.layout = None
        self.current = [None] * self.model.n_layers
        self.handle._passes.append(self.current)

    def check_pass(self) -> None:
        """Every layer of the last pass measured its heads (else its gains were never applied)."""
        missing = [layer for layer, visual in enumerate(self.current) if visual is None]
        if missing:
            raise RuntimeError(
                f"layer {missing[0]}: no gains were computed in a pass (the text attention did "
                "not run through fac_lens's attention function)"
            )

    def _pass_layout(self) -> tuple[torch.Tensor | None, int]:
        """(query weights [B, P] over the pass's prompt positions, or None when every position
        decides alone; P, the index in this pass where generated positions begin).

        Without :func:`~fac_lens.teacher_forcing.teacher_forcing` the whole pass is a prompt (a
        prefill, or a decoding step's one new token). Known at the pass's first attention call.
        """
        if self.layout is None:
            n_query, past, start = self.ids.shape[1], self.image_keys.past, trace_start()
            if start is None and n_query == 1:  # a decoding step: its one token is every query set
                self.layout = (None, 1)
                return self.layout
            if start is not None and 0 < past < start:
                raise FacLensError(
                    f"teacher forcing with prompt_length={start}, but {past} positions were cached "
                    "before this pass: run the prompt and the trace in one forward from an empty cache"
                )
            split = n_query if start is None else min(max(start - past, 0), n_query)
            rows = None
            if self.config.query != "token" and split > 0:
                mask = None if self.mask is None else self.mask[:, :split]
                selected = query_mask(self.config.query, self.ids[:, :split], mask, self.model.image_token_id)
                rows = selected.float() / selected.sum(1, keepdim=True)
            self.layout = (rows, split)
        return self.layout

    def make_probe(self, layer: int):
        layer_gains = self._layer_gains(layer)
        c = self.config
        if self.record == "bands" and c.l_perc < layer < c.l_reas:  # its gains ignore S_v

            def unmeasured(module, query, key, attention_mask, scaling) -> torch.Tensor | None:
                visual = query.new_full((query.shape[0], query.shape[1]), float("nan"), dtype=torch.float32)
                self.current[layer] = visual
                return layer_gains(visual)  # strategy A: None; B-D: their constant out-of-band gains

            return unmeasured

        def probe(module, query, key, attention_mask, scaling) -> torch.Tensor | None:
            window = getattr(module, "sliding_window", None)  # Gemma 3: only the latest keys
            key_is_image = self.image_keys.keys(layer, key.shape[2], query.shape[2], window)  # [B, K]
            rows, split = self._pass_layout()
            if rows is None and split == 1 == query.shape[2]:  # a decoding step: the fast path
                # (its one query sees at least itself: never a fully masked row, never NaN)
                visual = single_query_mass(
                    query.float(),
                    key.float(),
                    attention_mask,
                    scaling,
                    key_is_image.to(query.device, torch.float32),
                )[:, 0]  # [B, H]
                self.current[layer] = visual
                return layer_gains(visual)
            if rows is not None and split == query.shape[2]:  # one identification for the pass
                visual = mean_visual_mass(
                    module, query, key, attention_mask, scaling, key_is_image, rows
                )  # [B, H]
                self.current[layer] = visual
            else:  # every generated position (or every position: "token") decides for itself
                visual = torch.nan_to_num(
                    visual_mass(module, query, key, attention_mask, scaling, key_is_image)
                )  # [B, Q, H]
                if rows is not None:  # teacher forcing: the prompt shares the prefill's choice
                    prompt = (visual[:, :split] * rows[..., None].to(visual)).sum(1, keepdim=True)
                    visual = torch.cat([prompt.expand(-1, split, -1), visual[:, split:]], dim=1)
                self.current[layer] = visual.mean(1)
            return layer_gains(visual)

        return probe

    def _layer_gains(self, layer: int):
        """``visual -> gains`` of one layer, eq. 6 with the layer's band membership fixed: for the
        paper's strategy A, the same float32 values as :func:`strategy_gains` in 2-5 kernel calls,
        and None (no scaling) where no head can be enhanced."""
        c = self.config
        g_perc, g_reas = c.layer_gains(layer)  # the scalars, or this layer's entries
        if c.strategy != "A":
            in_band = torch.tensor(layer <= c.l_perc or layer >= c.l_reas)

            def general(visual: torch.Tensor) -> torch.Tensor:
                perception, reasoning = classify(visual, layer, c.l_perc, c.l_reas, c.tau_perc, c.tau_reas)
                return strategy_gains(
                    perception,
                    reasoning,
                    in_band.to(visual.device),
                    g_perc,
                    g_reas,
                    c.strategy,
                    c.beta,
                    c.target,
                )

            return general
        perc = layer <= c.l_perc and c.target in ("both", "perception")
        reas = layer >= c.l_reas and c.target in ("both", "reasoning")

        def strategy_a(visual: torch.Tensor) -> torch.Tensor | None:
            gains = torch.where(visual >= c.tau_perc, g_perc, 1.0) if perc else None
            if reas:
                reasoning = torch.where(visual <= c.tau_reas, g_reas, 1.0)
                gains = reasoning if gains is None else gains * reasoning
            return gains

        return strategy_a


@contextmanager
def _dynamic(model: LensModel, config: FacConfig, handle: RescaleHandle, record: str) -> Iterator[None]:
    state = _DynamicState(model, config, handle, record)
    core = model.spec.multimodal_core(model.hf)
    with ExitStack() as stack:
        stack.enter_context(model.attention_implementation(ATTENTION_NAME))
        pre_hook = core.register_forward_pre_hook(state.start_pass, with_kwargs=True)
        stack.callback(pre_hook.remove)
        stack.enter_context(attached_probes(model.attention_modules, state.make_probe))
        yield
        state.check_pass()
