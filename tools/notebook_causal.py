"""Cell sources of notebooks/05_causal_head_analysis.ipynb (written by tools/build_notebooks.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

CAUSAL = [
    new_markdown_cell(
        r"""# 05 · Causal head analysis

The ratio $S_v$ says where a head looks; this notebook asks what each head *does*, with the standard causal tools, on the embedded models:

1. **erasure effect sizes** (seed 004, A.1): remove each head and compare the change in probability of tokens of wrong answers ("hallucinated") and of right answers ("faithful"), exact and first-order (gradient);
2. **ablation**: remove the heads with the largest effect (zero or mean ablation) and measure accuracy;
3. **attention concentration**: entropy and variance of attention rows, over all keys and over image keys;
4. **normalised ratio**: $S_v$ divided by the share of image keys, and identification on it;
5. **activation patching**: copy each head's output from the clean run into a run on a noised image (VCD);
6. **per-layer gains**, **a data-driven config search** (validation and test split) and the **change point** of the S_v trajectory.

Every number comes with a bootstrap interval over samples (or tokens); whatever it shows is reported as is. The *fac-tiny* part runs on a CPU in a few minutes; the *fac-smol* part runs when its converted parts exist (`make smol`) and `RUN_SMOL` is true."""
    ),
    new_code_cell(
        r"""import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
%matplotlib inline

MODEL = "fac-tiny"
DEVICE = "cpu"
N_SAMPLES = 12        # test samples (evaluation and analysis)
N_VALIDATION = 8      # validation samples (the config search)
N_GRADIENT = 6        # samples the first-order erasure estimate is compared on
SEARCH_BUDGET = 6     # settings the config search may evaluate
MAX_NEW_TOKENS = 24
RUN_SMOL = os.environ.get("FAC_LENS_NOTEBOOK_SMOL", "1") == "1"   # the fac-smol section (slower)"""
    ),
    new_code_cell(
        r"""import matplotlib.pyplot as plt
import numpy as np
import torch

import fac_lens as fl
from fac_lens import plotting as P
from fac_lens.config_search import bootstrap_interval
from fac_lens.data.answers import is_correct
from fac_lens.data.datasets import load_samples
from fac_lens.erasure import append_tokens
from fac_lens.experiments.calibration_split import synthetic_validation

model = fl.load(MODEL, device=DEVICE)
samples = load_samples('synthetic', limit=N_SAMPLES)              # the committed test split
validation = synthetic_validation('synthetic', N_VALIDATION).samples  # its own seeds
inputs = [model.prepare(s.image, s.prompt()) for s in samples]
model"""
    ),
    new_code_cell(
        r'''def answers(model, samples, fac=None, ablation=None):
    """Per-sample 1/0 correctness of greedy answers (one batched generation), optionally under
    FAC (Gains / FacConfig) or inside an ablation context."""
    batch = model.prepare([s.image for s in samples], [s.prompt() for s in samples])
    if ablation is None:
        out = fl.generate(model, batch, max_new_tokens=MAX_NEW_TOKENS, fac=fac)
    else:
        with fl.ablate(model, **ablation):
            out = fl.generate(model, batch, max_new_tokens=MAX_NEW_TOKENS, fac=fac)
    return [float(is_correct(t, s)) for t, s in zip(out.text, samples, strict=True)], out


def show(name, scores):
    print(f'{name:<28} accuracy {bootstrap_interval(scores)}')


vanilla, generated = answers(model, samples)
show('vanilla', vanilla)'''
    ),
    new_markdown_cell(
        r"""## Erasure effect sizes (seed 004, A.1)

Each sample is teacher-forced on its own greedy answer; the answer tokens of wrongly answered samples form the hallucinated set $\mathcal{H}$, those of correctly answered ones the faithful set $\mathcal{N}$. For each head, $\Delta P_h(y_t) = P_M(y_t) - P_{M\setminus h}(y_t)$; $S_h$ is the difference of the set means and $E_h = S_h / \sqrt{\sigma^2_\mathcal{H} + \sigma^2_\mathcal{N}}$. Exact erasure costs one forward per batch of heads; the gradient estimate one forward and backward per sample."""
    ),
    new_code_cell(
        r"""eos = model.tokenizer.eos_token_id
forced, hallucinated, faithful, prompt_lengths = [], [], [], []
for b, (sample, correct) in enumerate(zip(samples, vanilla, strict=True)):
    single = model.prepare(sample.image, sample.prompt())
    new = generated.sequences[b, generated.prompt_length:]
    stop = (new == eos).nonzero()
    new = new[: int(stop[0]) + 1] if len(stop) else new     # up to and with the first EOS
    forced.append(append_tokens(single, new))
    answer = list(range(single['input_ids'].shape[1], forced[-1]['input_ids'].shape[1]))
    prompt_lengths.append(single['input_ids'].shape[1])
    hallucinated.append(answer if not correct else [])
    faithful.append(answer if correct else [])
print('hallucinated tokens:', sum(map(len, hallucinated)), '| faithful tokens:', sum(map(len, faithful)))"""
    ),
    new_code_cell(
        r'''erasure = fl.erasure_effects(model, forced, hallucinated, faithful, batch_size=25, progress=False)
k = N_GRADIENT
if any(hallucinated[:k]) and any(faithful[:k]):   # first order vs exact on the first k samples
    exact_k = fl.erasure_effects(model, forced[:k], hallucinated[:k], faithful[:k], batch_size=25, progress=False)
    estimate = fl.erasure_effects(model, forced[:k], hallucinated[:k], faithful[:k], method='gradient', progress=False)
    pair = [torch.cat([e.hallucinated_deltas, e.faithful_deltas]).flatten() for e in (exact_k, estimate)]
    print(f'gradient vs exact on {k} samples: correlation of Delta P {float(torch.corrcoef(torch.stack(pair))[0, 1]):.3f}, '
          f'of E_h {float(torch.corrcoef(torch.stack([exact_k.effect_size.flatten(), estimate.effect_size.flatten()]))[0, 1]):.3f}')
else:
    estimate = erasure


def sensitivity_interval(effects, layer, head, n=2000, seed=0):
    """S_h with a bootstrap interval: tokens of each set resampled with replacement."""
    rng = np.random.default_rng(seed)
    h = effects.hallucinated_deltas[:, layer, head].double().numpy()
    f = effects.faithful_deltas[:, layer, head].double().numpy()
    draws = [rng.choice(h, len(h)).mean() - rng.choice(f, len(f)).mean() for _ in range(n)]
    return h.mean() - f.mean(), *np.percentile(draws, [2.5, 97.5])


for layer, head, e in erasure.ranking(top=5):
    s, lo, hi = sensitivity_interval(erasure, layer, head)
    print(f'L{layer}H{head}: E_h {e:+.3f}  S_h {s:+.4f} [{lo:+.4f}, {hi:+.4f}]')
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
P.plot_erasure(erasure, ax=axes[0])
P.plot_erasure(estimate, ax=axes[1]);'''
    ),
    new_markdown_cell(
        r"""## Ablating the heads with the largest effect

Zero and mean ablation of the three heads with the largest $E_h$ (means recorded on the validation samples), against three heads drawn at random."""
    ),
    new_code_cell(
        r"""top = torch.zeros(model.n_layers, model.n_heads, dtype=torch.bool)
for layer, head, _ in erasure.ranking(top=3):
    top[layer, head] = True
random_heads = torch.zeros(model.n_layers * model.n_heads, dtype=torch.bool)
random_heads[torch.randperm(len(random_heads), generator=torch.Generator().manual_seed(0))[:3]] = True
random_heads = random_heads.view_as(top)
means = fl.head_means(model, [model.prepare(s.image, s.prompt()) for s in validation], progress=False)
for name, heads, kind in (('top-3 zero', top, 'zero'), ('top-3 mean', top, 'mean'), ('random-3 zero', random_heads, 'zero')):
    scores, _ = answers(model, samples, ablation=dict(heads=heads, kind=kind, means=means if kind == 'mean' else None))
    show(name, scores)"""
    ),
    new_markdown_cell(
        r"""## Attention concentration and the normalised ratio

Entropy (low: concentrated) and variance of the attention rows (query set "all"), over all keys and over image keys; and $S_v$ divided by the share of image keys each query sees (1: attention to the image in proportion to its token count)."""
    ),
    new_code_cell(
        r"""concentration = fl.attention_concentration(model, inputs, progress=False)
ratios = fl.attention_ratios(model, inputs, progress=False)
normalised = fl.attention_ratios(model, inputs, normalize='image_share', progress=False)
for name in ('entropy', 'image_entropy'):
    per_layer = concentration.mean(name).mean(-1)
    print(f'{name:<14} per layer:', [round(v, 3) for v in per_layer.tolist()])
sv = ratios.visual.flatten()
rho = torch.corrcoef(torch.stack([sv, concentration.mean('image_entropy').flatten()]))[0, 1]
print(f'correlation over heads of S_v and image-key entropy: {float(rho):.3f}')
print('normalised S_v per layer:', [round(v, 3) for v in normalised.visual.mean(-1).tolist()])
config = fl.calibrated_config(ratios)
raw_sel = config.select(ratios)
norm_sel = fl.identify_heads(normalised, config.l_perc, config.l_reas,
                             float(normalised.visual[: config.l_perc + 1].quantile(0.75)),
                             float(normalised.visual[config.l_reas:].quantile(0.25)))
print('raw:       ', raw_sel.summary())
print('normalised:', norm_sel.summary())
print('perception heads in both:', int((raw_sel.perception & norm_sel.perception).sum()))
fig, axes = plt.subplots(1, 3, figsize=(17, 4))
P.plot_concentration(concentration, ax=axes[0])
P.plot_concentration(concentration, field='image_entropy', ax=axes[1])
P.plot_head_values(normalised.visual, ax=axes[2], title='S_v / image share', label='normalised', centered=False);"""
    ),
    new_markdown_cell(
        r"""## Activation patching

Clean run: the sample's image and its teacher-forced answer; corrupted run: the image noised as in VCD (500 of 1000 diffusion steps). The metric is the log-probability of the answer's last token (before EOS); each head's clean output is patched into the corrupted run alone. Reported: the fraction recovered, as a mean over samples with a bootstrap interval."""
    ),
    new_code_cell(
        r"""recovered = []
for sequence in forced:
    ids = sequence['input_ids'][0]
    t = len(ids) - 2 if int(ids[-1]) == eos else len(ids) - 1   # the answer's last token
    corrupted = fl.corrupt_image(sequence, 'noise', noise_step=500)
    result = fl.patch_heads(model, sequence, corrupted, target=int(ids[t]), position=t - 1, batch_size=24, progress=False)
    if abs(result.clean - result.corrupted) > 1e-3:
        recovered.append(result.recovered)
recovered = torch.stack(recovered)  # [samples, L, H]
print(f'{len(recovered)} samples whose metric the noise changed')
flat = recovered.mean(0).flatten()
for i in torch.argsort(flat, descending=True)[:5].tolist():
    layer, head = divmod(i, model.n_heads)
    print(f'L{layer}H{head}: recovered {bootstrap_interval(recovered[:, layer, head].tolist())}')
P.plot_head_values(recovered.mean(0), title='activation patching: mean fraction recovered', label='recovered');"""
    ),
    new_markdown_cell(
        r"""## Per-layer gains, a config search from data, and the change point

The search chooses boundaries and thresholds on the **validation** samples (coarse-to-fine over every layer and S_v quantiles, at most `SEARCH_BUDGET` settings); the chosen setting is then scored once on the **test** samples. The change point splits the S_v trajectory into two levels."""
    ),
    new_code_cell(
        r"""found = fl.change_point(ratios)
print(f'change point: layer {found.layer}, interval {found.interval}, S_v {found.before:.3f} -> {found.after:.3f}')

def accuracy_score(config, split):
    return answers(model, split, fac=config)[0]

search = fl.select_config(model, validation, accuracy_score, test=samples, ratios=ratios, budget=SEARCH_BUDGET, progress=False)
print('chosen:', search.config)
print('validation:', search.validation, '| test:', search.test, '| evaluations:', search.n_evaluations)
layered = search.config.replace(g_perc=tuple(1.3 - 0.05 * layer for layer in range(model.n_layers)))
show('calibrated config (test)', accuracy_score(config, samples))
show('searched, per-layer g_perc', accuracy_score(layered, samples))
fig, axes = plt.subplots(1, 3, figsize=(17, 4))
P.plot_change_point(ratios, found, ax=axes[0])
P.plot_config_search(search, ax=axes[1])
P.plot_layer_gains(layered, model.n_layers, ax=axes[2]);"""
    ),
    new_markdown_cell(
        r"""## fac-smol: the same analysis on a pretrained language model

SmolLM2-135M (30 layers x 9 heads) behind a trained projector: change point, attention concentration and first-order erasure effect sizes on a few samples (needs `make smol`)."""
    ),
    new_code_cell(
        r"""def smol_available():
    from fac_lens.embedded.smol.build import cached_parts
    try:
        cached_parts()
    except fl.FacLensError as error:
        print('fac-smol skipped:', error)
        return False
    return True


SMOL = RUN_SMOL and smol_available()
if SMOL:
    smol = fl.load('fac-smol', device=DEVICE)
    smol_samples = samples[:6]
    smol_inputs = [smol.prepare(s.image, s.prompt()) for s in smol_samples]
    smol_ratios = fl.attention_ratios(smol, smol_inputs, progress=False)
    smol_found = fl.change_point(smol_ratios)
    print(f'change point: layer {smol_found.layer}, interval {smol_found.interval}, '
          f'S_v {smol_found.before:.3f} -> {smol_found.after:.3f}')"""
    ),
    new_code_cell(
        r"""if SMOL:
    smol_conc = fl.attention_concentration(smol, smol_inputs, progress=False)
    print('image-key entropy per layer:', [round(v, 2) for v in smol_conc.mean('image_entropy').mean(-1).tolist()])
    out = fl.generate(smol, smol.prepare([s.image for s in smol_samples], [s.prompt() for s in smol_samples]),
                      max_new_tokens=16)
    correct = [float(is_correct(t, s)) for t, s in zip(out.text, smol_samples, strict=True)]
    show('fac-smol vanilla', correct)"""
    ),
    new_code_cell(
        r"""smol_effects = None
if SMOL:
    s_forced, s_h, s_f = [], [], []
    for b, (x, ok) in enumerate(zip(smol_inputs, correct, strict=True)):
        new = out.sequences[b, out.prompt_length:]
        new = new[new != smol.tokenizer.pad_token_id][:8]
        s_forced.append(append_tokens(x, new))
        span = list(range(x['input_ids'].shape[1], s_forced[-1]['input_ids'].shape[1]))
        s_h.append([] if ok else span)
        s_f.append(span if ok else [])
    if any(s_h) and any(s_f):
        smol_effects = fl.erasure_effects(smol, s_forced, s_h, s_f, method='gradient', progress=False)
        for layer, head, e in smol_effects.ranking(top=5):
            s, lo, hi = sensitivity_interval(smol_effects, layer, head)
            print(f'L{layer}H{head}: E_h {e:+.3f}  S_h {s:+.5f} [{lo:+.5f}, {hi:+.5f}]')
    else:
        print('all answers right (or all wrong): no two token sets to compare')"""
    ),
    new_code_cell(
        r"""if SMOL:
    fig, axes = plt.subplots(1, 3, figsize=(18, 4))
    P.plot_change_point(smol_ratios, smol_found, ax=axes[0])
    P.plot_concentration(smol_conc, field='image_entropy', ax=axes[1])
    if smol_effects is not None:
        P.plot_erasure(smol_effects, ax=axes[2])"""
    ),
]
