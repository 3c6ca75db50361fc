"""POPE-style existence probes on synthetic scenes: random, popular and adversarial absent objects.

POPE (Li et al., 2023) asks "Is there a <object> in the image?" about present objects (answer
yes) and about absent ones (answer no), with absent objects drawn three ways. On the synthetic
scenes an "object" is a (colour, shape) pair:

- random: any absent pair, uniformly;
- popular: the absent pair seen most often across the split's scenes (POPE's frequent objects);
- adversarial: an absent pair sharing its colour or its shape with an object that is there (in
  POPE, objects that co-occur with present ones; here attributes are drawn independently, so the
  near neighbours play that part: "a red ball" when there is a red cube and a blue ball).

Each scene gives one yes and one no question per variant, balanced as in POPE. Questions use the
benchmark's existence template and trace, so :func:`fac_lens.data.synthetic.diagnose` applies.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence

from ..errors import FacLensError
from .sample import Sample
from .synthetic import COLORS, SHAPES, Scene

VARIANTS = ("random", "popular", "adversarial")


def _pairs(scene: Scene) -> set[tuple[str, str]]:
    return {(o.color, o.shape) for o in scene.objects}


def absent_pair(
    scene: Scene, variant: str, rng: random.Random, popularity: Counter | None = None
) -> tuple[str, str]:
    """The (colour, shape) a ``variant`` probe asks about for this scene (never present in it)."""
    present = _pairs(scene)
    absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present]
    if variant == "random":
        return rng.choice(absent)
    if variant == "popular":
        if popularity is None:
            raise FacLensError("the popular variant needs the split's pair counts (popularity=)")
        return max(absent, key=lambda pair: (popularity[pair], -absent.index(pair)))
    if variant == "adversarial":
        near = [(c, s) for c, s in absent if any(c == pc or s == ps for pc, ps in present)]
        return rng.choice(near or absent)
    raise FacLensError(f"unknown POPE variant {variant!r}; use one of {list(VARIANTS)}")


def pope_samples(
    samples: Iterable[Sample], variants: Sequence[str] = VARIANTS, seed: int = 0
) -> list[Sample]:
    """Two existence probes (yes, no) per scene and variant, from samples that carry a scene.

    Returns:
        Samples of kind ``"exist"`` with ``meta["pope"]`` the variant and ``meta["probe"]`` the
        object asked about; ids ``<sample id>-pope-<variant>-<yes|no>``.

    Raises:
        FacLensError: a sample without ``meta["scene"]`` (only synthetic samples have scenes).
    """
    base = list(samples)
    scenes = []
    for sample in base:
        if "scene" not in (sample.meta or {}):
            raise FacLensError(
                f"sample {sample.id} has no scene description; POPE probes need synthetic samples"
            )
        scenes.append(Scene.from_dict(sample.meta["scene"]))
    popularity = Counter(pair for scene in scenes for pair in _pairs(scene))
    rng = random.Random(f"fac-pope:{seed}")
    out = []
    for sample, scene in zip(base, scenes, strict=True):
        inventory = " , ".join(o.phrase() for o in scene.objects)
        for variant in variants:
            present = rng.choice(sorted(_pairs(scene)))
            absent = absent_pair(scene, variant, rng, popularity)
            for answer, (color, shape) in (("yes", present), ("no", absent)):
                out.append(
                    Sample(
                        id=f"{sample.id}-pope-{variant}-{answer}",
                        image=sample.image,
                        question=f"is there a {color} {shape} ?",
                        answer=answer,
                        kind="exist",
                        source="synthetic-pope",
                        meta={
                            "scene": sample.meta["scene"],
                            "pope": variant,
                            "probe": f"{color} {shape}",
                            "steps": [{"kind": "perception", "text": f"i see {inventory}"}],
                            "target": f"<think> i see {inventory} . </think> {answer}",
                        },
                    )
                )
    return out
