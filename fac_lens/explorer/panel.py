"""``fl.explorer``: the ipywidgets panel, a thin shell over the pure functions of this package.

    panel = fl.explorer(model, samples)          # in JupyterLab or VS Code
    panel.config                                 # the current setting: FacConfig (dynamic) or Gains (static)

Ratios are recorded once when the panel opens (or passed in: ``ratios=``), so moving a control
re-identifies heads and redraws SVG (no model run, no matplotlib). Clicking a head of the grid shows
where it looks on the image and over the prompt's tokens. "run model" generates the vanilla and the
rescaled traces, their answer probabilities and contribution maps; in dynamic mode a step slider
then shows the heads each pass identified. Errors show in the panel, never as a traceback.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..calibration import calibrated_config
from ..config import FacConfig
from ..errors import FacLensError
from ..gains import Gains
from ..image_attention import ImageAttention, image_attention
from ..lens_model import LensModel
from ..ratios import HeadRatios, attention_ratios
from ..rescale import rescale
from ..selection import HeadSelection, identify_heads
from ..teacher_forcing import teacher_forcing
from .answers import answer_probabilities, candidate_ids
from .batch import batch_check
from .grid import head_grid_svg, legend_html
from .head_view import head_view_html
from .state import MEAN, STRATEGY_CHOICES, counts_html, describe_setting, setting, stale_html
from .trajectory import trajectory_svg

FULL = "calc(100% - 4px)"  # full width minus ipywidgets' 2 px margins, so nothing overflows the panel
CSS = (
    "<style>.fac-panel{max-width:100%;overflow-x:hidden}.fac-panel .widget-html-content{white-space:normal;"
    "overflow-wrap:anywhere;line-height:1.35}.fac-stale{opacity:0.55}.fac-probs table td,.fac-probs table th"
    "{padding:1px 8px;text-align:right}.fac-panel .widget-readout{min-width:3.5em;overflow:visible}</style>"
)


@dataclass(frozen=True, eq=False)
class ExplorerItem:
    """One explorable sample: prepared inputs (batch of 1) and what to show about it."""

    label: str
    inputs: Mapping[str, Any] | None
    image: Any = None
    question: str | None = None
    answer: str | None = None
    problem: str | None = None  # why it cannot be explored (shown instead of failing)
    sample: Any = None


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
        short = " ".join(s.question.split())
        label = f"{getattr(s, 'id', index)} [{getattr(s, 'kind', '')}]: {short[:90]}{'…' if len(short) > 90 else ''}"
        if s.image is None:
            items.append(ExplorerItem(label, None, None, s.prompt(), s.answer, "this sample has no image", s))
            continue
        inputs = model.prepare(s.image, s.prompt())
        items.append(ExplorerItem(label, inputs, s.image, s.prompt(), s.answer, sample=s))
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


def _image_png(image: Any, size: int = 224) -> bytes:
    """The sample's image as PNG bytes, at most ``size`` px on its longer side."""
    from PIL import Image

    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    picture = picture.convert("RGB")
    picture.thumbnail((size, size))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class RunResult:
    """What one press of "run model" produced, and under which setting."""

    key: tuple
    label: str
    fac: FacConfig | Gains
    comparison: Any
    steps: list[ImageAttention]  # attention of each generation step on the rescaled trace
    step_tokens: list[str]


class Explorer:
    """The panel's state and widgets. ``widget`` is the ipywidgets box (displaying the Explorer
    displays it). Tests and notebooks read ``sliders`` (by name), ``counts``, ``message``,
    ``grid``, ``gain_grid``, ``head_view``, ``traces``, ``probabilities``, ``batch_result``."""

    def __init__(
        self,
        model: LensModel,
        data: Any,
        config: FacConfig | None = None,
        max_new_tokens: int = 48,
        progress: bool = True,
        ratios: HeadRatios | None = None,
    ):
        import ipywidgets as w

        self.model = model
        self.max_new_tokens = max_new_tokens
        self.items = _items(model, data)
        usable = [item for item in self.items if item.inputs is not None]
        if not usable:
            raise FacLensError("none of the samples has an image: the explorer needs image-text inputs")
        recorded = self._ratios_for(usable, ratios, progress)
        self._per_item = {item.label: recorded.sample(i) for i, item in enumerate(usable)}
        self._mean = recorded
        self.last_comparison = None
        self.last_run: RunResult | None = None
        self.last_batch = None
        self.picked: tuple[int, int] | None = None
        self._attention_cache: dict[str, ImageAttention] = {}
        self._png_cache: dict[str, tuple[bytes | None, float]] = {}
        self._vanilla_records: dict[str, dict] = {}
        n = model.n_layers
        config = config or calibrated_config(recorded)
        style = {"description_width": "72px"}
        row = w.Layout(width=FULL, max_width="430px", min_width="250px")

        def slider(cls, name, value, lo, hi, step, fmt, dom):
            s = cls(value=value, min=lo, max=hi, step=step, description=name, style=style, layout=row,
                    continuous_update=False, readout_format=fmt)  # fmt: skip
            s.add_class(dom)
            return s

        self.sliders = {
            "l_perc": slider(w.IntSlider, "l_perc", config.l_perc, 0, n - 1, 1, "d", "fac-l-perc"),
            "l_reas": slider(w.IntSlider, "l_reas", config.l_reas, 0, n - 1, 1, "d", "fac-l-reas"),
            "tau_perc": slider(
                w.FloatSlider, "tau_perc", config.tau_perc, 0.0, 1.0, 0.005, ".3f", "fac-tau-perc"
            ),
            "tau_reas": slider(
                w.FloatSlider, "tau_reas", config.tau_reas, 0.0, 1.0, 0.005, ".3f", "fac-tau-reas"
            ),
            "g_perc": slider(w.FloatSlider, "g_perc", config.g_perc, 0.1, 3.0, 0.01, ".2f", "fac-g-perc"),
            "g_reas": slider(w.FloatSlider, "g_reas", config.g_reas, 0.1, 3.0, 0.01, ".2f", "fac-g-reas"),
            "beta": slider(w.FloatSlider, "beta", config.beta, 0.05, 1.0, 0.01, ".2f", "fac-beta"),
        }
        self.strategy = w.Dropdown(
            options=list(STRATEGY_CHOICES), description="strategy", style=style, layout=row
        )
        self.strategy.add_class("fac-strategy")
        self.mode = w.ToggleButtons(options=["dynamic", "static"], description="mode", style=style)
        self.mode.add_class("fac-mode")
        self.sample = w.Dropdown(
            options=[MEAN, *(item.label for item in self.items)], description="sample", style=style,
            layout=w.Layout(width=FULL, max_width="760px"),
        )  # fmt: skip
        self.sample.add_class("fac-sample")
        self.image = w.Image(format="png", layout=w.Layout(width="180px", min_width="120px", display="none"))
        self.image.add_class("fac-image")
        self.info = w.HTML(layout=w.Layout(flex="1 1 300px", min_width="220px")).add_class("fac-sample-info")
        self.counts = w.HTML().add_class("fac-counts")
        self.message = w.HTML(layout=w.Layout(width=FULL)).add_class("fac-message")
        self.grid = w.HTML().add_class("fac-head-grid")
        self.gain_grid = w.HTML().add_class("fac-gain-grid")
        self.trajectory = w.HTML().add_class("fac-trajectory-box")
        self.pick = w.Text(value="", layout=w.Layout(display="none")).add_class("fac-pick")
        self.pick_label = w.HTML("<i>click a head in the grid (or call panel.select_head(layer, head))</i>")
        self.pick_label.add_class("fac-pick-label")
        self.head_view = w.HTML(layout=w.Layout(width=FULL)).add_class("fac-head-view")
        self.step = w.IntSlider(value=0, min=0, max=1, description="step", style=style, layout=row,
                                disabled=True, continuous_update=False)  # fmt: skip
        self.step.add_class("fac-step")
        self.step_info = w.HTML().add_class("fac-step-info")
        self.answer_words = w.Text(value="", description="answers", placeholder="e.g. yes, no (default: truth "
                                   "and both answers)", style=style, layout=row)  # fmt: skip
        self.answer_words.add_class("fac-answer-words")
        self.run_button = w.Button(description="run model", icon="play", layout=w.Layout(width="160px"),
                                   tooltip="generate vanilla and rescaled traces, probabilities, maps")  # fmt: skip
        self.run_button.add_class("fac-run")
        self.progress = w.IntProgress(
            value=0, min=0, max=5, layout=w.Layout(width="180px", visibility="hidden")
        )
        self.run_note = w.HTML().add_class("fac-run-note")
        self.traces = w.HTML().add_class("fac-traces")
        self.probabilities = w.HTML().add_class("fac-probabilities")
        self.run_output = w.Output().add_class("fac-maps")
        self.batch_button = w.Button(description="batch check", icon="check", layout=w.Layout(width="160px"),
                                     tooltip="accuracy of this setting vs vanilla on all loaded samples")  # fmt: skip
        self.batch_button.add_class("fac-batch")
        self.batch_progress = w.IntProgress(
            value=0, min=0, max=1, layout=w.Layout(width="180px", visibility="hidden")
        )
        self.batch_result = w.HTML().add_class("fac-batch-result-box")
        self.results = w.VBox([self.run_note, self.traces, self.probabilities, self.run_output])
        self.results.add_class("fac-results")

        for control in (*self.sliders.values(), self.strategy, self.sample, self.mode):
            control.observe(self._changed, names="value")
        self.step.observe(lambda change: self._step_changed(), names="value")
        self.pick.observe(self._picked, names="value")
        self.answer_words.observe(lambda change: self._mark_stale(), names="value")
        self.run_button.on_click(lambda button: self.run())
        self.batch_button.on_click(lambda button: self.check_batch())

        wrap = w.Layout(flex_flow="row wrap", align_items="flex-start", width=FULL)
        controls = w.VBox(
            [*self.sliders.values(), self.strategy, self.mode],
            layout=w.Layout(flex="1 1 300px", min_width="260px"),
        )
        summary = w.VBox([self.counts, self.trajectory], layout=w.Layout(flex="1 1 320px", min_width="260px"))
        grids = w.HBox(
            [
                w.VBox([w.HTML("<b>S_v per head</b> (layers down, heads across)"), self.grid]),
                w.VBox([w.HTML("<b>gain per head</b> (what the run applies)"), self.gain_grid]),
            ],
            layout=wrap,
        )
        self.widget = w.VBox(
            [
                w.HTML(
                    CSS + "<b>fac_lens explorer</b>: move boundaries, thresholds and gains; heads update live"
                ),
                self.sample,
                w.HBox([self.image, self.info], layout=wrap),
                w.HBox([controls, summary], layout=wrap),
                self.message,
                w.HTML(legend_html("S_v", 0.0, 1.0, "mako")),
                grids,
                w.HBox([self.step, self.step_info], layout=wrap),
                self.pick_label,
                self.pick,
                self.head_view,
                w.HBox([self.run_button, self.progress, self.answer_words], layout=wrap),
                self.results,
                w.HBox([self.batch_button, self.batch_progress], layout=wrap),
                self.batch_result,
            ],
            layout=w.Layout(width=FULL),
        )
        self.widget.add_class("fac-panel")
        self.update()

    # -- state -----------------------------------------------------------------------------------
    def _ratios_for(
        self, usable: list[ExplorerItem], ratios: HeadRatios | None, progress: bool
    ) -> HeadRatios:
        if ratios is None:
            return attention_ratios(self.model, [item.inputs for item in usable], progress=progress)
        if not isinstance(ratios, HeadRatios):
            raise FacLensError(
                f"ratios= takes fl.HeadRatios (from fl.attention_ratios), got {type(ratios).__name__}"
            )
        expected = (len(usable), self.model.n_layers, self.model.n_heads)
        if tuple(ratios.per_sample.shape) != expected:
            raise FacLensError(
                f"ratios= holds {tuple(ratios.per_sample.shape)} but the explorer needs {expected} (one row per "
                "sample with an image, in order): record them on the same samples"
            )
        return ratios

    @property
    def fac_config(self) -> FacConfig:
        """The FacConfig the controls describe now."""
        values = {name: s.value for name, s in self.sliders.items()}
        return FacConfig(**values, **STRATEGY_CHOICES[self.strategy.value])

    @property
    def config(self) -> FacConfig | Gains:
        """The current setting as a run uses it: the FacConfig (dynamic) or the static Gains on the
        shown ratios."""
        return setting(self.fac_config, self.mode.value, self.ratios())

    def ratios(self) -> HeadRatios:
        """The selected sample's ratios, or the mean over all samples."""
        return self._mean if self.sample.value == MEAN else self._per_item.get(self.sample.value, self._mean)

    def selection(self) -> HeadSelection:
        return self.fac_config.select(self.ratios())

    def _item(self) -> ExplorerItem | None:
        return next((item for item in self.items if item.label == self.sample.value), None)

    def _key(self) -> tuple:
        return (self.sample.value, self.mode.value, self.fac_config, self.answer_words.value)

    # -- drawing ---------------------------------------------------------------------------------
    def _changed(self, change: Any = None) -> None:
        if change is not None and change.get("owner") is self.sample:
            self._show_sample()
            self.picked = None
            self.head_view.value = ""
        self.update()

    def _show_sample(self) -> None:
        item = self._item()
        if item is None:
            self.image.layout.display = "none"
            self.info.value = (
                f"<b>{len(self._per_item)} samples</b>: the maps show the mean over them; pick one to see it"
            )
            return
        if item.image is not None:
            self.image.value = _image_png(item.image)
            self.image.layout.display = ""
        else:
            self.image.layout.display = "none"
        sample = item.sample
        parts = [f"<div class='fac-question'><b>question</b>: {html.escape(item.question or '')}</div>"]
        if item.answer is not None:
            parts.append(f"<div><b>truth</b>: <code class='fac-truth'>{html.escape(str(item.answer))}</code>")
            if sample is not None:
                parts.append(f" &middot; <b>kind</b>: {html.escape(str(sample.kind))}")
            parts.append("</div>")
        record = self._vanilla_records.get(getattr(sample, "id", None))
        if record is not None:
            verdict = "correct" if record["correct"] else "wrong"
            parts.append(
                f"<div class='fac-verdict'><b>vanilla</b>: {html.escape(str(record['predicted']))} ({verdict})</div>"
            )
        self.info.value = "".join(parts)

    def update(self) -> None:
        """Re-identify heads from the cached ratios and redraw (no model run)."""
        try:
            item = self._item()
            if item is not None and item.problem:
                self.message.value = (
                    f"<span style='color:#b00'>{html.escape(item.problem)}: pick another sample</span>"
                )
                return
            config, ratios = self.fac_config, self.ratios()
            config.check_model(self.model.n_layers)
            step = self._step_view()
            if step is not None:
                visual, selection, gains = step
            else:
                visual, selection = ratios.visual, config.select(ratios)
                gains = config.gains(selection).values
            self.counts.value = counts_html(selection, self.model.n_layers * self.model.n_heads)
            notes = []
            if not (selection.counts["perception"] or selection.counts["reasoning"]):
                notes.append("no heads selected with these boundaries and thresholds: lower tau_perc, raise "
                             "tau_reas, or widen the layer bands")  # fmt: skip
            if self.mode.value == "dynamic" and step is None:
                notes.append(
                    "dynamic mode picks heads in every forward pass; shown: the prefill's choice (this sample's "
                    "ratios over the prompt)" if item is not None else
                    "dynamic mode picks heads per pass of one sample; the mean over samples is no pass's choice"
                )  # fmt: skip
            self.message.value = "<br>".join(
                f"<span style='color:#8a5a00'>{html.escape(n)}</span>" for n in notes
            )
            self.grid.value = head_grid_svg(
                visual, selection.perception, selection.reasoning, gains, self.picked
            )
            spread = max(1.0, float((gains - 1).abs().max()))  # a scale centred on 1 (white)
            self.gain_grid.value = head_grid_svg(
                gains, selection.perception, selection.reasoning, gains, self.picked, value_name="gain",
                low=1 - spread, high=1 + spread, cmap="vlag",
            ) + (f"<div style='font-size:11px'>colour: gain below 1 blue, 1 white, above 1 red "
                 f"(scale {1 - spread:.2f} .. {1 + spread:.2f})</div>")  # fmt: skip
            mean, std = ratios.layer_trajectory()
            self.trajectory.value = trajectory_svg(
                mean, std, config.l_perc, config.l_reas, config.tau_perc, config.tau_reas,
                None if step is None else visual.mean(-1),
            )  # fmt: skip
            self._mark_stale()
        except FacLensError as error:
            self.message.value = f"<span style='color:#b00'>{html.escape(str(error))}</span>"

    def _mark_stale(self) -> None:
        run = self.last_run
        if run is None:
            return
        if run.key == self._key():
            self.results.remove_class("fac-stale")
            self.run_note.value = f"<small>run: {html.escape(run.label)}</small>"
        else:
            self.results.add_class("fac-stale")
            self.run_note.value = stale_html(f"these results are of {run.label}; the controls changed since")

    def _step_view(self) -> tuple[torch.Tensor, HeadSelection, torch.Tensor] | None:
        """The run's per-pass choice at the step slider (a dynamic run of the current setting)."""
        run = self.last_run
        if run is None or self.step.disabled or run.key != self._key():
            return None  # no run, or a stale one: the grids follow the controls
        passes = run.comparison.case.fac_passes
        if not passes or not isinstance(run.fac, FacConfig):
            return None
        visual = passes[min(self.step.value, len(passes) - 1)]
        c = run.fac
        selection = identify_heads(visual, c.l_perc, c.l_reas, c.tau_perc, c.tau_reas)
        return visual, selection, c.gains(selection).values

    def _step_changed(self) -> None:
        run = self.last_run
        if run is not None and run.step_tokens:
            t = self.step.value
            token = run.step_tokens[t] if t < len(run.step_tokens) else ""
            self.step_info.value = (
                f"step {t}: the pass that generates token {t} <code>{html.escape(repr(token))}</code> "
                "(rescaled trace)"
            )
        self.update()
        if self.picked is not None:
            self.show_head(*self.picked)

    # -- heads -------------------------------------------------------------------------------------
    def _picked(self, change: Any) -> None:
        text = (change.get("new") if isinstance(change, dict) else change.new) or ""
        try:
            layer, head = (int(part) for part in text.split(","))
        except ValueError:
            return
        self.select_head(layer, head)

    def select_head(self, layer: int, head: int) -> None:
        """What a click on a head does: frame it and show where it looks."""
        if not (0 <= layer < self.model.n_layers and 0 <= head < self.model.n_heads):
            self.message.value = f"<span style='color:#b00'>no head L{layer} H{head} in this model</span>"
            return
        self.picked = (layer, head)
        self.update()
        self.show_head(layer, head)

    def head_attention(self) -> tuple[ImageAttention, str] | None:
        """The attention shown for a picked head: the run's step on the rescaled trace, else the
        vanilla model at the prompt's last token (cached per sample)."""
        item = self._item()
        if item is None or item.inputs is None:
            return None
        run = self.last_run
        if run is not None and run.steps and run.key[0] == self.sample.value and not self.step.disabled:
            t = min(self.step.value, len(run.steps) - 1)
            return run.steps[t], f"rescaled model, step {t} of its trace"
        if item.label not in self._attention_cache:
            self._attention_cache[item.label] = image_attention(self.model, item.inputs, position=-1)
        return self._attention_cache[item.label], "vanilla model, last prompt token"

    def show_head(self, layer: int, head: int) -> None:
        """Draw where a head looks: on the image's grid and over the prompt (HTML, no matplotlib)."""
        try:
            item = self._item()
            if item is not None and item.label not in self._attention_cache and self.last_run is None:
                self.pick_label.value = (
                    f"<i>L{layer} H{head}: one forward for this sample's attention rows ...</i>"
                )
            found = self.head_attention()
            if found is None:
                self.pick_label.value = "<i>pick one sample (not the mean) to see where a head looks</i>"
                return
            attention, where = found
            value = float(attention.visual[layer, head])
            self.pick_label.value = (
                f"<b>L{layer} H{head}</b>: {html.escape(where)}; attention on image tokens {value:.3f}"
            )
            png, aspect = self._image_for(item)
            self.head_view.value = head_view_html(attention, layer, head, png, aspect, where)
        except Exception as error:  # noqa: BLE001 - the panel reports any failure and stays usable
            self.message.value = (
                f"<span style='color:#b00'>head view failed: {html.escape(str(error))}</span>"
            )

    def _image_for(self, item: ExplorerItem) -> tuple[bytes | None, float]:
        """The item's image as small PNG bytes and its width / height (cached)."""
        if item.label not in self._png_cache:
            if item.image is None:
                self._png_cache[item.label] = (None, 1.0)
            else:
                png = _image_png(item.image, 240)
                from PIL import Image

                with Image.open(io.BytesIO(png)) as picture:
                    aspect = picture.width / picture.height
                self._png_cache[item.label] = (png, aspect)
        return self._png_cache[item.label]

    # -- model runs ------------------------------------------------------------------------------
    def run(self) -> None:
        """Generate vanilla and rescaled traces, answer probabilities and contribution maps for the
        selected sample."""
        from ..compare import compare

        item = self._item()
        self.progress.layout.visibility = "visible"
        self.progress.value = 0
        self.run_button.disabled = True
        try:
            if item is None:
                raise FacLensError("pick one sample to run (the mean over samples is not a prompt)")
            if item.problem or item.image is None:
                raise FacLensError(
                    item.problem or "prepared inputs carry no image object: pass Samples to run"
                )
            self.message.value = f"running the model on {html.escape(item.label)} ..."
            key, fac = self._key(), self.config
            self.progress.value = 1
            comparison = compare(self.model, item.sample or item.image, item.question, fac=fac,
                                 max_new_tokens=self.max_new_tokens)  # fmt: skip
            case = comparison.case
            self.progress.value = 2
            probabilities = self._probabilities(item, case, fac)
            self.progress.value = 3
            steps, step_tokens = self._trace_attention(item, case, fac)
            self.progress.value = 4
            self.last_run = RunResult(key, describe_setting(self.fac_config, self.mode.value) + f" on {item.label}",
                                      fac, comparison, steps, step_tokens)  # fmt: skip
            self.last_comparison = comparison
            self.traces.value = comparison.html()
            self.probabilities.value = probabilities
            selection = self.selection()
            self.run_output.clear_output(wait=True)
            with self.run_output:
                display_figure(comparison.figure(selection=selection))
            self.step.max = max(len(steps) - 1, 1)  # min == max breaks the slider in the browser
            self.step.value = 0
            self.step.disabled = False
            self._step_changed()
            self.progress.value = 5
            self.message.value = ""
            self._mark_stale()
        except Exception as error:  # noqa: BLE001 - the panel reports any failure and stays usable
            self.message.value = (
                f"<span style='color:#b00'>model run failed: {html.escape(type(error).__name__)}: "
                f"{html.escape(str(error))}</span>"
            )
        finally:
            self.run_button.disabled = False
            self.progress.layout.visibility = "hidden"

    def _probabilities(self, item: ExplorerItem, case: Any, fac: FacConfig | Gains) -> str:
        words = [w for w in self.answer_words.value.split(",") if w.strip()]
        if not words:
            words = [str(item.answer or ""), case.answer_token.strip(), (case.fac_answer_token or "").strip()]
        ids, tokens = candidate_ids(self.model, [w for w in words if w])
        sequence = {
            k: v
            for k, v in item.inputs.items()
            if k not in ("input_ids", "attention_mask", "mm_token_type_ids")
        }
        sequence["input_ids"] = case.vanilla_ids[None]
        sequence["attention_mask"] = torch.ones_like(sequence["input_ids"])
        probs = answer_probabilities(
            self.model, sequence, case.answer_position - 1, ids, fac, case.prompt_length, tokens
        )
        return probs.html()

    def _trace_attention(self, item: ExplorerItem, case: Any, fac: FacConfig | Gains):
        """Each generation step's attention on the rescaled trace (one forward, under the gains the
        generation used), and the token each step produced."""
        ids = case.fac_ids[None]
        start = case.prompt_length
        if ids.shape[1] <= start:
            return [], []
        sequence = {
            k: v
            for k, v in item.inputs.items()
            if k not in ("input_ids", "attention_mask", "mm_token_type_ids")
        }
        sequence["input_ids"] = ids
        sequence["attention_mask"] = torch.ones_like(ids)
        positions = list(range(start - 1, ids.shape[1] - 1))
        with rescale(self.model, fac):
            if isinstance(fac, FacConfig):
                with teacher_forcing(start):
                    steps = image_attention(self.model, sequence, position=positions)
            else:
                steps = image_attention(self.model, sequence, position=positions)
        tokens = (
            self.model.tokenizer.convert_ids_to_tokens(ids[0, start:].tolist())
            if self.model.tokenizer
            else []
        )
        return steps, tokens

    def check_batch(self) -> None:
        """Accuracy of the current setting vs vanilla on every loaded sample, with its 95% interval."""
        samples = [item.sample for item in self.items if item.sample is not None and item.inputs is not None]
        self.batch_button.disabled = True
        try:
            if not samples:
                raise FacLensError(
                    "the batch check needs Samples with their ground truth (not prepared inputs)"
                )
            self.batch_progress.max = 2 * len(samples)
            self.batch_progress.value = 0
            self.batch_progress.layout.visibility = "visible"
            self.batch_result.value = f"checking {len(samples)} samples ..."

            def on_step(done: int, total: int) -> None:
                self.batch_progress.value = done

            # the static setting of the batch: gains on the mean ratio map (the heads the mean shows)
            fac = setting(self.fac_config, self.mode.value, self._mean)
            result = batch_check(
                self.model, samples, fac, self.max_new_tokens, on_step, self._vanilla_records
            )
            self.last_batch = result
            self.batch_result.value = (
                result.html()
                + f"<small>setting: {html.escape(describe_setting(self.fac_config, self.mode.value))}</small>"
            )
            self._show_sample()
        except Exception as error:  # noqa: BLE001 - the panel reports any failure and stays usable
            self.batch_result.value = (
                f"<span style='color:#b00'>batch check failed: {html.escape(str(error))}</span>"
            )
        finally:
            self.batch_button.disabled = False
            self.batch_progress.layout.visibility = "hidden"

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


def explorer(
    model: LensModel,
    data: Any,
    config: FacConfig | None = None,
    max_new_tokens: int = 48,
    progress: bool = True,
    ratios: HeadRatios | None = None,
) -> Explorer:
    """Open the head explorer on ``data`` (Samples, one Sample, or prepared inputs of one sample).

    Args:
        config: starting values of the controls (default: calibrated on the recorded ratio map).
        max_new_tokens: length of the traces the "run model" button generates.
        ratios: ratios already recorded on the samples with an image, in order
            (``fl.attention_ratios``), so they are not recorded again.
    """
    try:
        import ipywidgets  # noqa: F401
    except ImportError as error:
        raise FacLensError("the explorer needs ipywidgets: pip install 'fac-lens[notebook]'") from error
    return Explorer(model, data, config, max_new_tokens, progress, ratios)
