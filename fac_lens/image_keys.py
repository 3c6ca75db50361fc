"""Which keys an attention layer receives are image tokens, across the passes of one generation.

The dynamic mode (``fl.rescale`` with a ``FacConfig``) measures every head's visual mass over the
keys its attention function receives: the cached keys of earlier passes followed by this pass's new
tokens. How many keys are cached is read from the key tensor itself (``K - Q`` on a global layer),
never from how transformers passes its cache to the model (its keyword changed from
``past_key_values`` to ``cache`` in 5.24), so a change in that plumbing cannot misplace the image:
either the keys line up with the tokens fac_lens saw, or a :class:`FacLensError` says why not.
"""

from __future__ import annotations

import torch

from .errors import FacLensError


class ImageKeyTracker:
    """The image indicator of every token fed to the model, aligned to each layer's keys.

    Call :meth:`start_pass` from a pre-hook on the multimodal core with the pass's ``input_ids``,
    then :meth:`keys` from each layer's attention function.
    """

    def __init__(self, image_token_id: int):
        self.image_token_id = image_token_id
        self.history: torch.Tensor | None = None  # [B, T] 1.0 on image tokens, all passes so far
        self._new: torch.Tensor | None = None  # [B, Q] this pass's tokens
        self._has_pixels = False
        self._past: int | None = None  # cached keys before this pass, once known
        self._keys: torch.Tensor | None = None  # [B, past + Q]
        self._latest: torch.Tensor | None = None  # the last slice of _keys handed out

    def start_pass(self, input_ids: torch.Tensor, has_pixels: bool) -> None:
        """A forward of the multimodal core begins with these new tokens ([B, Q])."""
        self._new = (input_ids == self.image_token_id).float()
        self._has_pixels = has_pixels
        self._past = None
        self._keys = None
        self._latest = None

    @property
    def past(self) -> int:
        """Cached positions before this pass (known once a layer's attention has run)."""
        if self._past is None:
            raise RuntimeError("past is known only after the pass's first attention call")
        return self._past

    def keys(self, layer: int, n_keys: int, n_query: int, sliding_window: int | None) -> torch.Tensor:
        """[B, n_keys] 1.0 where the keys this layer's attention received are image tokens.

        Args:
            layer: layer index (for messages).
            n_keys: key length the attention function received (cache included).
            n_query: query length it received (the pass's new tokens).
            sliding_window: the layer's window, or None for a global layer.
        """
        if self._new is None:
            raise FacLensError(
                "dynamic rescaling saw an attention call with no forward of the multimodal core "
                "around it; call model.hf(...), model.hf.generate(...) or fl.generate inside the block"
            )
        if n_query != self._new.shape[1]:
            raise self._drift(layer, f"{n_query} queries for a pass of {self._new.shape[1]} new tokens")
        cached = n_keys - n_query
        if self._past is None:
            self._align(layer, cached, sliding_window)
        if sliding_window is None and cached != self._past:
            raise self._drift(layer, f"{n_keys} keys where an earlier layer implied {self._past + n_query}")
        if cached < 0 or cached > self._past:
            raise self._drift(layer, f"{n_keys} keys for {n_query} new and {self._past} cached tokens")
        if self._latest is None or self._latest.shape[1] != n_keys:  # one slice per key length
            self._latest = self._keys[:, self._keys.shape[1] - n_keys :]
        return self._latest

    def _align(self, layer: int, cached: int, sliding_window: int | None) -> None:
        """Fix this pass's number of cached keys from the first layer's key length."""
        seen = 0 if self.history is None else self.history.shape[1]
        window_full = sliding_window is not None and cached >= sliding_window - 1
        # A full sliding window hides how long the sequence is: the pass continues the sequence.
        past = seen if window_full and seen >= cached else cached
        if past > seen:
            raise FacLensError(
                f"dynamic rescaling: layer {layer}'s attention received {past} cached keys, but "
                f"this rescale block saw only {seen} tokens of the sequence. The KV cache was filled "
                "outside the block: run the whole generation (prefill and decoding) inside "
                "`with fl.rescale(model, config)` (fl.generate does), or start from an empty cache."
            )
        new = self._new
        if past > 0 and not self._has_pixels:
            new = torch.zeros_like(new)  # a generated token equal to the image id carries no image
        history = new if past == 0 else torch.cat([self.history[:, :past], new], dim=1)
        continues = 0 < past == seen and not self._has_pixels  # adds text to a checked history
        rows = [] if continues else (history.sum(1) == 0).nonzero().flatten().tolist()
        if rows:
            raise FacLensError(
                f"dynamic rescaling: row(s) {rows} of this forward hold no image token (id "
                f"{self.image_token_id}), so no head can be identified by its attention to the image; "
                "every prompt needs an image: build inputs with model.prepare(image, text), or use "
                "static fl.Gains for text-only prompts"
            )
        self.history = history
        self._past = past
        self._keys = self.history

    def _drift(self, layer: int, what: str) -> FacLensError:
        import transformers

        return FacLensError(
            f"dynamic rescaling cannot line up image tokens with layer {layer}'s keys: its attention "
            f"received {what}. transformers {transformers.__version__} builds or passes its KV "
            "cache in a way this fac_lens was not tested with. Install the tested versions "
            "(`pip install -r requirements/lock.txt` in a fac_lens checkout, or `make setup`) and "
            "report the versions that failed."
        )
