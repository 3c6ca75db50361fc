"""The layer-wise visual ratio as a small SVG: mean over heads, spread, boundaries and thresholds."""

from __future__ import annotations

import torch

from ..plotting.style import PALETTE


def trajectory_svg(
    mean: torch.Tensor,
    std: torch.Tensor,
    l_perc: int,
    l_reas: int,
    tau_perc: float,
    tau_reas: float,
    step: torch.Tensor | None = None,
    width: int = 420,
    height: int = 170,
) -> str:
    """Mean S_v per layer (float [n_layers]) with +- ``std``, the boundaries (vertical: l_perc
    orange dashed, l_reas cyan dotted), the thresholds (horizontal, same colours) and, when given,
    one pass's per-layer S_v (``step``, grey)."""
    n = len(mean)
    left, right, top, bottom = 34, 8, 8, 24
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(layer: float) -> float:
        return left + (layer / max(n - 1, 1)) * plot_w

    def y(value: float) -> float:
        return top + (1 - min(max(value, 0.0), 1.0)) * plot_h

    m, s = mean.tolist(), std.tolist()
    band = [f"{x(i):.1f},{y(m[i] + s[i]):.1f}" for i in range(n)]
    band += [f"{x(i):.1f},{y(m[i] - s[i]):.1f}" for i in reversed(range(n))]
    line = " ".join(f"{x(i):.1f},{y(m[i]):.1f}" for i in range(n))
    perc, reas = PALETTE["perception"], PALETTE["reasoning"]
    parts = [
        f'<svg class="fac-trajectory" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto;font:10px sans-serif">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#bbb"/>',
        f'<polygon points="{" ".join(band)}" fill="#4c72b0" opacity="0.2"/>',
        f'<polyline points="{line}" fill="none" stroke="#4c72b0" stroke-width="2"><title>mean S_v over heads'
        "</title></polyline>",
        f'<line class="fac-l-perc-line" x1="{x(l_perc):.1f}" x2="{x(l_perc):.1f}" y1="{top}" y2="{top + plot_h}" '
        f'stroke="{perc}" stroke-dasharray="5,3"><title>l_perc = {l_perc}</title></line>',
        f'<line class="fac-l-reas-line" x1="{x(l_reas):.1f}" x2="{x(l_reas):.1f}" y1="{top}" y2="{top + plot_h}" '
        f'stroke="{reas}" stroke-dasharray="2,2"><title>l_reas = {l_reas}</title></line>',
        f'<line class="fac-tau-perc-line" x1="{left}" x2="{x(l_perc):.1f}" y1="{y(tau_perc):.1f}" '
        f'y2="{y(tau_perc):.1f}" stroke="{perc}"><title>tau_perc = {tau_perc:.3f} (perception: S_v above, '
        "layers up to l_perc)</title></line>",
        f'<line class="fac-tau-reas-line" x1="{x(l_reas):.1f}" x2="{left + plot_w}" y1="{y(tau_reas):.1f}" '
        f'y2="{y(tau_reas):.1f}" stroke="{reas}"><title>tau_reas = {tau_reas:.3f} (reasoning: S_v below, '
        "layers from l_reas)</title></line>",
    ]
    if step is not None:
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(step.tolist()))
        parts.append(f'<polyline points="{points}" fill="none" stroke="#555" stroke-dasharray="3,2"/>')
    for value in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{left - 4}" y="{y(value) + 3:.1f}" text-anchor="end">{value:g}</text>')
    for layer in range(0, n, max(1, n // 8)):
        parts.append(f'<text x="{x(layer):.1f}" y="{height - 10}" text-anchor="middle">{layer}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 1}" text-anchor="middle">layer (mean S_v over heads; '
        "lines: boundaries and thresholds)</text></svg>"
    )
    return "".join(parts)
