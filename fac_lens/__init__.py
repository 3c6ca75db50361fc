"""fac_lens: head-level interpretability for vision-language models (functional attention control).

Public contract (DESIGN.md section 4)::

    import fac_lens as fl
    model = fl.load(source, device="cpu")
    r = fl.attention_ratios(model, inputs, query="all")
    sel = fl.identify_heads(r, l_perc=7, l_reas=3, tau_perc=0.22, tau_reas=0.01)
    gains = fl.Gains.from_selection(sel, g_perc=1.16, g_reas=1.30)
    with fl.rescale(model, gains): ...
    cm = fl.contribution_map(model, inputs, target=token_id, position=-1)
    att = fl.image_attention(model, inputs, position=-1)   # where each head looks on the image
    fl.explorer(model, samples)              # the JupyterLab panel (needs ipywidgets)
    fl.compare(model, sample, fac=config)    # before/after traces and contribution maps
    fl.generate(model, inputs, method=fl.baselines.VCD())   # baselines: VCD, PAI, VAF, MidLayer, CGD, AGLA

Importing fac_lens changes nothing outside it: no hook, registration or patch of torch, transformers
or transformer-lens happens before a call (it only lists its embedded models in its own registries).
"""

from . import (
    baselines,  # noqa: F401 - fl.baselines.VCD() etc.: methods for fl.generate(method=...)
    embedded,  # noqa: F401 - registers fac-tiny / fac-smol with fl.load and the synthetic split's location
)
from .ablation import ablate, head_means
from .architectures import supported_architectures
from .calibration import calibrated_config
from .case_study import CaseStudy, case_study
from .compare import Comparison, compare
from .concentration import HeadConcentration, attention_concentration
from .config import FacConfig
from .config_search import ChangePoint, ConfigSearch, change_point, select_config
from .contribution import ContributionMap, contribution_map
from .erasure import ErasureEffects, erasure_effects
from .errors import FacLensError
from .explorer import Explorer, explorer
from .folding import fold_gains
from .gains import STRATEGIES, Gains
from .generation import GenerationResult, generate
from .image_attention import ImageAttention, image_attention
from .lens_model import LensModel
from .loading import load
from .patching import PatchingResult, corrupt_image, patch_heads
from .ratios import HeadRatios, attention_ratios
from .rescale import RescaleHandle, rescale
from .selection import HeadSelection, identify_heads
from .teacher_forcing import teacher_forcing

__all__ = [
    "STRATEGIES",
    "CaseStudy",
    "ChangePoint",
    "Comparison",
    "ConfigSearch",
    "Explorer",
    "ContributionMap",
    "FacConfig",
    "ErasureEffects",
    "FacLensError",
    "Gains",
    "GenerationResult",
    "HeadConcentration",
    "HeadRatios",
    "HeadSelection",
    "ImageAttention",
    "LensModel",
    "PatchingResult",
    "RescaleHandle",
    "ablate",
    "attention_concentration",
    "attention_ratios",
    "calibrated_config",
    "case_study",
    "change_point",
    "compare",
    "contribution_map",
    "corrupt_image",
    "erasure_effects",
    "explorer",
    "fold_gains",
    "generate",
    "head_means",
    "identify_heads",
    "image_attention",
    "load",
    "patch_heads",
    "rescale",
    "select_config",
    "supported_architectures",
    "teacher_forcing",
]
__version__ = "0.1.0"
