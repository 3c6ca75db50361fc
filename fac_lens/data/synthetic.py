"""A synthetic CLEVR-like visual reasoning benchmark, deterministic from a seed.

Scenes of 2-4 objects (colour, shape, size, grid cell) are drawn with PIL on a 140 x 140 canvas.
Four question kinds, each with a templated reasoning trace in the paper's format
(``<think> ... </think> answer``) and the ground-truth reasoning steps, tagged perception or
reasoning, so that a wrong answer can be traced to the step that went wrong:

- ``attribute`` (perception): "what color is the large cube ?", "what shape is the red thing ?"
- ``count``: "how many red things are there ?" (list the objects, then count)
- ``exist`` (POPE-style hallucination probe, half absent): "is there a green ball ?"
- ``two_step``: "what shape is the large thing that is the same color as the small ball ?"
  (perception: the small ball's colour; reasoning: which large thing has it)
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import FacLensError
from .sample import Sample

COLORS = {
    "red": (205, 40, 40),
    "green": (40, 165, 60),
    "blue": (40, 85, 215),
    "yellow": (235, 200, 30),
    "purple": (145, 60, 185),
    "gray": (110, 110, 110),
}
SHAPES = ("cube", "ball", "cylinder")
PLURAL = {"cube": "cubes", "ball": "balls", "cylinder": "cylinders"}
SIZES = ("small", "large")
NUMBERS = ("zero", "one", "two", "three", "four")
KINDS = ("attribute", "count", "exist", "two_step")
IMAGE_SIZE = 140
GRID = 3
BACKGROUND = (232, 230, 222)
LARGE_HALF, SMALL_HALF = 19, 12  # half the side of an object in pixels (a grid cell is 46.7)
SPLIT_SEEDS = {"train": "train", "validation": "validation", "test": "test"}


@dataclass(frozen=True)
class SceneObject:
    """One object: attributes and its grid cell (row, col), with a pixel offset inside the cell."""

    color: str
    shape: str
    size: str
    row: int
    col: int
    dx: int = 0
    dy: int = 0

    def phrase(self) -> str:
        return f"{self.size} {self.color} {self.shape}"


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]

    def to_dict(self) -> dict:
        return {"objects": [asdict(o) for o in self.objects]}

    @staticmethod
    def from_dict(data: dict) -> Scene:
        return Scene(tuple(SceneObject(**o) for o in data["objects"]))


def random_scene(rng: random.Random) -> Scene:
    """2-4 objects in distinct cells of a 3 x 3 grid, in reading order."""
    cells = rng.sample([(r, c) for r in range(GRID) for c in range(GRID)], rng.randint(2, 4))
    objects = [
        SceneObject(
            color=rng.choice(list(COLORS)),
            shape=rng.choice(SHAPES),
            size=rng.choice(SIZES),
            row=r,
            col=c,
            dx=rng.randint(-4, 4),
            dy=rng.randint(-4, 4),
        )
        for r, c in sorted(cells)
    ]
    return Scene(tuple(objects))


def render(scene: Scene):
    """Draw the scene: cube = square, ball = disc, cylinder = upright body with an elliptic top."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUND)
    draw = ImageDraw.Draw(image)
    cell = IMAGE_SIZE / GRID
    for obj in scene.objects:
        cx = (obj.col + 0.5) * cell + obj.dx
        cy = (obj.row + 0.5) * cell + obj.dy
        half = LARGE_HALF if obj.size == "large" else SMALL_HALF
        fill, outline = COLORS[obj.color], (30, 30, 30)
        if obj.shape == "cube":
            draw.rectangle((cx - half, cy - half, cx + half, cy + half), fill=fill, outline=outline)
        elif obj.shape == "ball":
            draw.ellipse((cx - half, cy - half, cx + half, cy + half), fill=fill, outline=outline)
        else:
            width, cap = half * 0.6, half * 0.35
            draw.rectangle((cx - width, cy - half + cap, cx + width, cy + half), fill=fill, outline=outline)
            draw.ellipse((cx - width, cy - half, cx + width, cy - half + 2 * cap), fill=fill, outline=outline)
    return image


def _unique(objects: Sequence[SceneObject], **attrs) -> SceneObject | None:
    found = [o for o in objects if all(getattr(o, k) == v for k, v in attrs.items())]
    return found[0] if len(found) == 1 else None


def _attribute(scene: Scene, rng: random.Random):
    objs = scene.objects
    options = []
    for o in objs:
        if _unique(objs, size=o.size, shape=o.shape):
            options.append(("color", o))
        if _unique(objs, color=o.color):
            options.append(("shape", o))
    if not options:
        return None
    asked, o = rng.choice(options)
    if asked == "color":
        step = f"the {o.size} {o.shape} is {o.color}"
        return f"what color is the {o.size} {o.shape} ?", o.color, [("perception", step)]
    step = f"the {o.color} thing is a {o.shape}"
    return f"what shape is the {o.color} thing ?", o.shape, [("perception", step)]


def _count(scene: Scene, rng: random.Random):
    if rng.random() < 0.5:
        color = rng.choice(list(COLORS))
        matching = [o for o in scene.objects if o.color == color]
        question, subject = f"how many {color} things are there ?", f"{color} things"
    else:
        shape = rng.choice(SHAPES)
        matching = [o for o in scene.objects if o.shape == shape]
        question, subject = f"how many {PLURAL[shape]} are there ?", PLURAL[shape]
    listing = " , ".join(o.phrase() for o in matching) if matching else "none"
    n = NUMBERS[len(matching)]
    return question, n, [("perception", f"{subject} : {listing}"), ("reasoning", f"that makes {n}")]


def _exist(scene: Scene, rng: random.Random):
    present = {(o.color, o.shape) for o in scene.objects}
    if rng.random() < 0.5:
        color, shape = rng.choice(sorted(present))
        answer = "yes"
    else:
        # adversarial POPE: an absent pair sharing a colour or a shape with something present
        near = [
            (c, s)
            for c in COLORS
            for s in SHAPES
            if (c, s) not in present and any(c == pc or s == ps for pc, ps in present)
        ]
        color, shape = rng.choice(near)
        answer = "no"
    inventory = " , ".join(o.phrase() for o in scene.objects)
    return f"is there a {color} {shape} ?", answer, [("perception", f"i see {inventory}")]


def _two_step(scene: Scene, rng: random.Random):
    objs = scene.objects
    options = []
    for ref in objs:
        if not _unique(objs, size=ref.size, shape=ref.shape):
            continue
        for size in SIZES:
            others = [o for o in objs if o is not ref and o.color == ref.color and o.size == size]
            if len(others) == 1:
                options.append((ref, size, others[0]))
    if not options:
        return None
    ref, size, target = rng.choice(options)
    question = f"what shape is the {size} thing that is the same color as the {ref.size} {ref.shape} ?"
    steps = [
        ("perception", f"the {ref.size} {ref.shape} is {ref.color}"),
        ("reasoning", f"the {size} {ref.color} thing is a {target.shape}"),
    ]
    return question, target.shape, steps


_MAKERS = {"attribute": _attribute, "count": _count, "exist": _exist, "two_step": _two_step}


def make_sample(split: str, index: int, kinds: Sequence[str] = KINDS) -> Sample:
    """Sample ``index`` of ``split``: the same on every machine and run (seeded by split and index)."""
    if split not in SPLIT_SEEDS:
        raise FacLensError(f"unknown split {split!r}; use one of {list(SPLIT_SEEDS)}")
    rng = random.Random(f"fac-synthetic:{SPLIT_SEEDS[split]}:{index}")
    kind = kinds[index % len(kinds)]
    while True:
        scene = random_scene(rng)
        made = _MAKERS[kind](scene, rng)
        if made is not None:
            break
    question, answer, steps = made
    trace = " . ".join(text for _, text in steps) + " ."
    return Sample(
        id=f"{split}-{index:06d}",
        image=render(scene),
        question=question,
        answer=answer,
        kind=kind,
        source="synthetic",
        meta={
            "scene": scene.to_dict(),
            "steps": [{"kind": k, "text": t} for k, t in steps],
            "target": f"<think> {trace} </think> {answer}",
        },
    )


def samples(split: str, n: int, start: int = 0, kinds: Sequence[str] = KINDS) -> Iterator[Sample]:
    """``n`` consecutive samples of a split (kinds cycle, so every kind is equally frequent)."""
    for index in range(start, start + n):
        yield make_sample(split, index, kinds)


def _stated_objects(trace: str, after: str) -> list[tuple[str, ...]] | None:
    """Objects a trace lists after ``after`` (e.g. "i see"), as word tuples; None if not found."""
    match = re.search(re.escape(after) + r" (.*?) \.", trace)
    if match is None:
        return None
    listed = match.group(1).strip()
    return [] if listed == "none" else [tuple(item.split()) for item in listed.split(" , ")]


def final_answer(trace: str) -> str | None:
    """The word after ``</think>`` (the synthetic benchmark's answers are single words)."""
    if "</think>" not in trace:
        return None
    words = trace.split("</think>", 1)[1].split()
    return words[0] if words else None


def diagnose(sample: Sample, generated: str, predicted: str | None) -> str:
    """Which step a wrong answer went wrong at: ``"correct"``, ``"perception"`` or ``"reasoning"``.

    The trace is read against the ground-truth steps (``sample.meta["steps"]``):

    - ``exist``: the objects the trace lists. If they imply the wrong answer the model gave, it saw
      wrongly (perception); if the answer contradicts its own list, the conclusion drifted (reasoning).
    - ``count``: the same with the listed objects and the number.
    - ``two_step``: a wrong colour for the reference object is a perception error; a right one
      followed by a wrong answer is a reasoning error.
    - otherwise, the kind of the first ground-truth step the trace does not state; a wrong answer
      after correct steps is a reasoning error.
    """
    if predicted is not None and predicted.strip() == sample.answer:
        return "correct"
    steps = sample.meta.get("steps") or []
    text = " ".join(generated.split())
    if sample.kind == "exist":
        listed = _stated_objects(text, "i see")
        if listed is not None:
            color, shape = sample.question.rstrip(" ?").split()[-2:]
            implied = "yes" if any(obj[-2:] == (color, shape) for obj in listed) else "no"
            return "perception" if implied == predicted else "reasoning"
    if sample.kind == "count":
        subject = steps[0]["text"].split(" : ")[0] if steps else ""
        listed = _stated_objects(text, f"{subject} :")
        if listed is not None:
            return "perception" if NUMBERS[min(len(listed), 4)] == predicted else "reasoning"
    if sample.kind == "two_step" and steps:
        return "perception" if steps[0]["text"] not in text else "reasoning"
    for step in steps:
        if step["text"] not in text:
            return step["kind"]
    return "reasoning" if steps else "unknown"


def write_split(root: str | Path, split: str, n: int) -> Path:
    """Write ``n`` samples as ``<root>/<split>/images/*.png`` and ``<root>/<split>/<split>.jsonl``."""
    folder = Path(root) / split
    (folder / "images").mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}.jsonl"
    with path.open("w") as out:
        for sample in samples(split, n):
            image_path = f"images/{sample.id}.png"
            sample.image.save(folder / image_path, optimize=True)
            record = {
                "id": sample.id,
                "image": image_path,
                "question": sample.question,
                "answer": sample.answer,
                "kind": sample.kind,
                **sample.meta,
            }
            out.write(json.dumps(record) + "\n")
    return path


def load_split(path: str | Path) -> Iterator[Sample]:
    """Read a split written by :func:`write_split` (path to its ``.jsonl``)."""
    from PIL import Image

    path = Path(path)
    if not path.exists():
        raise FacLensError(f"{path} not found; write it with fac_lens.data.synthetic.write_split")
    with path.open() as lines:
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
                image = Image.open(path.parent / record["image"]).convert("RGB")
                yield Sample(
                    id=record["id"],
                    image=image,
                    question=record["question"],
                    answer=record["answer"],
                    kind=record["kind"],
                    source="synthetic",
                    meta={k: record[k] for k in ("scene", "steps", "target")},
                )
            except (json.JSONDecodeError, KeyError) as error:
                raise FacLensError(f"{path}, line {number}: malformed record ({error})") from error


def vocabulary() -> list[str]:
    """Every word the questions and traces use (the word-level tokenizer's vocabulary)."""
    words = set(COLORS) | set(SHAPES) | set(PLURAL.values()) | set(SIZES) | set(NUMBERS)
    words |= set(
        "what color shape is the a thing things how many are there ? . , : i see that makes none "
        "same as of yes no <think> </think> user assistant".split()
    )
    return sorted(words)
