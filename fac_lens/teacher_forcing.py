"""Teacher forcing under dynamic rescaling: one forward over a prompt and a generated trace gets
the gains that generation used, position by position.

Generation identifies heads once over the prompt (the prefill, over the config's query set) and
then once per decoding step, from the new token's own attention row. A single forward over
``prompt + trace`` reproduces that when the dynamic mode knows where the trace begins::

    with fl.rescale(model, config), teacher_forcing(prompt_length):
        logits = model.hf(input_ids=sequence, ...).logits

Positions before ``prompt_length`` then share the prompt's identification; each later position
uses its own row, so nothing at a position depends on tokens after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .errors import FacLensError
from .validation import is_int_like

_TRACE_START: ContextVar[int | None] = ContextVar("fac_lens_trace_start", default=None)


@contextmanager
def teacher_forcing(prompt_length: int) -> Iterator[None]:
    """Inside the block, dynamic rescaling treats positions ``>= prompt_length`` as generated.

    Args:
        prompt_length: number of prompt tokens (padding included), i.e. the position of the first
            generated token (``GenerationResult.prompt_length``).
    """
    if not is_int_like(prompt_length) or int(prompt_length) < 1:
        raise FacLensError(
            f"prompt_length={prompt_length!r}: give the number of prompt tokens, an int >= 1 "
            "(GenerationResult.prompt_length)"
        )
    token = _TRACE_START.set(int(prompt_length))
    try:
        yield
    finally:
        _TRACE_START.reset(token)


def trace_start() -> int | None:
    """The position where the generated trace begins, inside :func:`teacher_forcing`; else None."""
    return _TRACE_START.get()
