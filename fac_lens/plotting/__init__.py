"""The plotting primitives of fac_lens's views and figures, in one palette.

Every plot takes ``ax=`` (default: the current Axes, ``plt.gca()``) and returns the Axes it drew on;
multi-panel plots take ``fig=`` (default: a new figure) and return the Figure. Nothing here changes
global matplotlib or seaborn state: wrap a call in ``with plt.rc_context(theme()):`` for the seaborn
look. matplotlib and seaborn are imported on first use, not with fac_lens.
"""

from .arrays import as_array, as_mask
from .canvas import current_axes, panel_axes
from .causal import (
    plot_ablation_effect,
    plot_change_point,
    plot_concentration,
    plot_config_search,
    plot_erasure,
    plot_head_values,
    plot_layer_gains,
    plot_patching,
)
from .contribution import contribution_before_after, plot_contribution
from .heads import outline_classes, plot_head_map, plot_layer_trajectory
from .image_attention import plot_image_attention, plot_token_attention, token_strip
from .style import PALETTE, theme

__all__ = [
    "PALETTE",
    "as_array",
    "as_mask",
    "contribution_before_after",
    "current_axes",
    "outline_classes",
    "panel_axes",
    "plot_ablation_effect",
    "plot_change_point",
    "plot_concentration",
    "plot_config_search",
    "plot_contribution",
    "plot_erasure",
    "plot_head_values",
    "plot_layer_gains",
    "plot_patching",
    "plot_head_map",
    "plot_image_attention",
    "plot_layer_trajectory",
    "plot_token_attention",
    "theme",
    "token_strip",
]
