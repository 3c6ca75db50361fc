"""``fl.explorer``: an ipywidgets panel to move boundaries, thresholds and gains and watch the heads.

    fl.explorer(model, samples)        # in JupyterLab; samples: Samples, one Sample, or prepared inputs

ipywidgets is imported when the panel is built, not with fac_lens (``pip install fac-lens[notebook]``).
Ratios are recorded once per sample when the panel opens, so moving a slider only re-identifies
heads and redraws (no model run). The "run model" button generates the vanilla and rescaled traces
and the contribution maps, with a progress bar; errors are shown in the panel, never as a traceback.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .calibration import calibrated_config
from .config import FacConfig
from .errors import FacLensError
from .lens_model import LensModel
from .ratios import HeadRatios, attention_ratios
from .selection import HeadSelection

STRATEGY_CHOICES = {
    "A: enhance identified heads (paper)": {"strategy": "A", "target": "both"},
    "B: attenuate in-band others": {"strategy": "B", "target": "both"},
    "C: bipolar": {"strategy": "C", "target": "both"},
    "D: mixed": {"strategy": "D", "target": "both"},
    "perception heads only": {"strategy": "A", "target": "perception"},
    "reasoning heads only": {"strategy": "A", "target": "reasoning"},
}
MEAN = "all samples (mean)"


@dataclass(frozen=True, eq=False)
class ExplorerItem:
    """One explorable sample: its prepared inputs (batch of 1) and how to show it."""

    label: str
    inputs: Mapping[str, Any] | None
    image: Any = None
    question: str | None = None
    answer: str | None = None
    problem: str | None = None  # why it cannot be explored (shown instead of failing)


def _items(model: LensModel, data: Any) -> list[ExplorerItem]:
    """Samples, one Sample, or a dict of prepared inputs (each row one item)."""
    if isinstance(data, Mapping):
        n = int(data["input_ids"].shape[0])
        return [_inputs_item(model, data, row) for row in range(n)]
    samples = [data] if hasattr(data, "question") else list(data)
    if not samples:
        raise FacLensError("explorer got no samples: pass a list of Samples, one Sample, or prepared inputs")
    items = []
    for index, s in enumerate(samples):
        label = f"{getattr(s, 'id', index)}: {s.question[:60]}"
        if s.image is None:
            items.append(ExplorerItem(label, None, None, s.prompt(), s.answer, "this sample has no image"))
            continue
        items.append(ExplorerItem(label, model.prepare(s.image, s.prompt()), s.image, s.prompt(), s.answer))
    return items


def _inputs_item(model: LensModel, data: Mapping[str, Any], row: int) -> ExplorerItem:
    inputs = model.normalize(data)
    one = {
        k: (v[row : row + 1] if torch.is_tensor(v) and v.shape[0] == inputs["input_ids"].shape[0] else v)
        for k, v in inputs.items()
    }
    if "pixel_values" in inputs and inputs["input_ids"].shape[0] > 1:
        raise FacLensError("explorer takes prepared inputs of one sample, or a list of Samples for several")
    question = (
        model.tokenizer.decode(one["input_ids"][0], skip_special_tokens=True) if model.tokenizer else None
    )
    return ExplorerItem(f"input {row}", one, None, question)


def _counts_html(selection: HeadSelection, n_heads_total: int) -> str:
    counts = selection.counts
    other = n_heads_total - int((selection.perception | selection.reasoning).sum())
    parts = [
        f"perception: {counts['perception']} heads ({counts['perception'] / n_heads_total:.1%})",
        f"reasoning: {counts['reasoning']} heads ({counts['reasoning'] / n_heads_total:.1%})",
        f"other: {other} heads ({other / n_heads_total:.1%})",
    ]
    return " &middot; ".join(parts)


class Explorer:
    """The panel's state and widgets. ``widget`` is the ipywidgets VBox; displaying the Explorer
    displays it. Attributes ``sliders`` (by name), ``counts``, ``message`` and ``figure`` are what
    tests and notebooks read."""

    def __init__(
        self,
        model: LensModel,
        data: Any,
        config: FacConfig | None = None,
        max_new_tokens: int = 48,
        progress: bool = True,
    ):
        import ipywidgets as w

        self.model = model
        self.max_new_tokens = max_new_tokens
        self.items = _items(model, data)
        usable = [item for item in self.items if item.inputs is not None]
        if not usable:
            raise FacLensError("none of the samples has an image: the explorer needs image-text inputs")
        recorded = attention_ratios(model, [item.inputs for item in usable], progress=progress)
        self._per_item: dict[str, HeadRatios] = {
            item.label: recorded.sample(i) for i, item in enumerate(usable)
        }
        self._mean = recorded
        self.last_comparison = None
        n = model.n_layers
        config = config or _default_config(recorded)
        style = {"description_width": "70px"}
        layout = w.Layout(width="320px")

        def slider(cls, name, value, lo, hi, step, dom):
            s = cls(
                value=value,
                min=lo,
                max=hi,
                step=step,
                description=name,
                style=style,
                layout=layout,
                continuous_update=False,
            )
            s.add_class(dom)
            return s

        self.sliders = {
            "l_perc": slider(w.IntSlider, "l_perc", config.l_perc, 0, n - 1, 1, "fac-l-perc"),
            "l_reas": slider(w.IntSlider, "l_reas", config.l_reas, 0, n - 1, 1, "fac-l-reas"),
            "tau_perc": slider(w.FloatSlider, "tau_perc", config.tau_perc, 0.0, 1.0, 0.005, "fac-tau-perc"),
            "tau_reas": slider(w.FloatSlider, "tau_reas", config.tau_reas, 0.0, 1.0, 0.005, "fac-tau-reas"),
            "g_perc": slider(w.FloatSlider, "g_perc", config.g_perc, 0.1, 3.0, 0.01, "fac-g-perc"),
            "g_reas": slider(w.FloatSlider, "g_reas", config.g_reas, 0.1, 3.0, 0.01, "fac-g-reas"),
        }
        self.strategy = w.Dropdown(
            options=list(STRATEGY_CHOICES), description="strategy", style=style, layout=layout
        )
        self.mode = w.ToggleButtons(options=["dynamic", "static"], description="mode", style=style)
        self.mode.add_class("fac-mode")
        self.sample = w.Dropdown(
            options=[MEAN, *(item.label for item in self.items)],
            description="sample",
            style=style,
            layout=w.Layout(width="480px"),
        )
        self.counts = w.HTML().add_class("fac-counts")
        self.message = w.HTML().add_class("fac-message")
        self.maps = w.Output()
        self.run_button = w.Button(
            description="run model: traces + contribution maps", icon="play", layout=w.Layout(width="300px")
        )
        self.run_button.add_class("fac-run")
        self.progress = w.IntProgress(
            value=0, min=0, max=3, description="", layout=w.Layout(width="200px", visibility="hidden")
        )
        self.traces = w.HTML().add_class("fac-traces")
        self.run_output = w.Output()
        self.figure = None
        for control in (*self.sliders.values(), self.strategy, self.sample):
            control.observe(self._changed, names="value")
        self.run_button.on_click(self._run_clicked)
        controls = w.VBox([*self.sliders.values(), self.strategy, self.mode])
        self.widget = w.VBox(
            [
                w.HTML("<b>fac_lens explorer</b>: move boundaries, thresholds and gains; heads update live"),
                self.sample,
                w.HBox(
                    [controls, w.VBox([self.counts, self.message], layout=w.Layout(padding="0 0 0 16px"))]
                ),
                self.maps,
                w.HBox([self.run_button, self.progress]),
                self.traces,
                self.run_output,
            ]
        )
        self.update()

    # -- state -----------------------------------------------------------------------------------
    def config(self) -> FacConfig:
        """The FacConfig the controls describe now."""
        values = {name: s.value for name, s in self.sliders.items()}
        return FacConfig(**values, **STRATEGY_CHOICES[self.strategy.value])

    def ratios(self) -> HeadRatios:
        """The selected sample's ratios, or the mean over all samples."""
        return self._mean if self.sample.value == MEAN else self._per_item.get(self.sample.value, self._mean)

    def selection(self) -> HeadSelection:
        return self.config().select(self.ratios())

    def _item(self) -> ExplorerItem | None:
        return next((item for item in self.items if item.label == self.sample.value), None)

    # -- drawing ---------------------------------------------------------------------------------
    def _changed(self, change: Any = None) -> None:
        self.update()

    def update(self) -> None:
        """Re-identify heads from the cached ratios and redraw (no model run)."""
        try:
            item = self._item()
            if item is not None and item.problem:
                self.message.value = (
                    f"<span style='color:#b00'>{html.escape(item.problem)}: pick another sample</span>"
                )
                return
            ratios = self.ratios()
            selection = self.config().select(ratios)
            self.counts.value = _counts_html(selection, self.model.n_layers * self.model.n_heads)
            if not (selection.counts["perception"] or selection.counts["reasoning"]):
                self.message.value = (
                    "<span style='color:#b36b00'>no heads selected with these boundaries and thresholds: "
                    "lower tau_perc, raise tau_reas, or widen the layer bands</span>"
                )
            else:
                self.message.value = ""
            self._draw(ratios, selection)
        except FacLensError as error:
            self.message.value = f"<span style='color:#b00'>{html.escape(str(error))}</span>"

    def _draw(self, ratios: HeadRatios, selection: HeadSelection) -> None:
        import matplotlib.pyplot as plt

        from .plotting import plot_head_map, plot_layer_trajectory

        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        plot_head_map(ratios, selection, ax=axes[0])
        plot_layer_trajectory(ratios, selection.l_perc, selection.l_reas, ax=axes[1])
        fig.tight_layout()
        self.figure = fig
        self.maps.clear_output(wait=True)
        with self.maps:
            display_figure(fig)

    # -- model runs ------------------------------------------------------------------------------
    def _run_clicked(self, button: Any = None) -> None:
        self.run()

    def run(self) -> None:
        """Generate vanilla and rescaled traces and contribution maps for the selected sample."""
        from .compare import compare

        item = self._item() or next(i for i in self.items if i.inputs is not None)
        self.progress.layout.visibility = "visible"
        self.progress.value = 0
        self.run_button.disabled = True
        self.message.value = f"running the model on {html.escape(item.label)} ..."
        try:
            if item.problem or item.image is None:
                raise FacLensError(
                    item.problem or "prepared inputs carry no image object: pass Samples to run"
                )
            config = self.config()
            fac = config.gains(self.ratios()) if self.mode.value == "static" else config
            self.progress.value = 1
            comparison = compare(
                self.model, item.image, item.question, fac=fac, max_new_tokens=self.max_new_tokens
            )
            self.progress.value = 2
            self.traces.value = comparison.html()
            self.run_output.clear_output(wait=True)
            with self.run_output:
                display_figure(comparison.figure())
            self.progress.value = 3
            self.last_comparison = comparison
            self.message.value = ""
        except Exception as error:  # noqa: BLE001 - the panel reports any failure and stays usable
            self.message.value = (
                f"<span style='color:#b00'>model run failed: {html.escape(type(error).__name__)}: "
                f"{html.escape(str(error))}</span>"
            )
        finally:
            self.run_button.disabled = False
            self.progress.layout.visibility = "hidden"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def display_figure(fig: Any) -> None:
    """Show a matplotlib figure in the current output (an Output widget or a cell), then close it."""
    import matplotlib.pyplot as plt
    from IPython import get_ipython
    from IPython.display import display

    if get_ipython() is not None:  # outside a kernel (scripts, tests) there is nowhere to show it
        display(fig)
    plt.close(fig)


def _default_config(ratios: HeadRatios) -> FacConfig:
    return calibrated_config(ratios)


def explorer(
    model: LensModel,
    data: Any,
    config: FacConfig | None = None,
    max_new_tokens: int = 48,
    progress: bool = True,
) -> Explorer:
    """Open the head explorer on ``data`` (Samples, one Sample, or prepared inputs of one sample).

    Args:
        config: starting values of the controls (default: calibrated on the recorded ratio map).
        max_new_tokens: length of the traces the "run model" button generates.
    """
    try:
        import ipywidgets  # noqa: F401
    except ImportError as error:
        raise FacLensError("the explorer needs ipywidgets: pip install 'fac-lens[notebook]'") from error
    return Explorer(model, data, config, max_new_tokens, progress)
