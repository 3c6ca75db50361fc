"""The calibration split: the samples the reference ratio map (static heads, calibrated thresholds,
threshold grids) is recorded on, never the evaluated ones.

* synthetic datasets: the synthetic *validation* split (its own seeds, ids ``validation-...``);
* other benchmarks: a split the user gives (a file or folder of the same benchmark), or else a
  held-out part: the ``n`` samples after the evaluated ones (see :func:`hold_out`).

The split is recorded with every FAC run (``generation["calibration"]``: its name, size, the
sha256 of its sample ids and of their content), so it is part of the run id: a run calibrated on
another split, or on another copy of it, is another run, never served from the store for this one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data.sample import Sample
from ..errors import FacLensError
from .fingerprint import samples_digest

DEFAULT_SIZE = 32


@dataclass(frozen=True, eq=False)
class CalibrationSplit:
    """Samples to calibrate on, with a name saying where they come from
    (``"synthetic:validation"``, ``"mmstar:held-out"``, ``"mmstar:<file>"``)."""

    name: str
    samples: tuple[Sample, ...]

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.samples]

    def first(self, n: int) -> CalibrationSplit:
        """The first ``n`` samples (all when ``n`` is larger)."""
        return CalibrationSplit(self.name, self.samples[:n])

    def digest(self) -> str:
        """sha256 hex of the sample ids joined by newlines, in order."""
        return hashlib.sha256("\n".join(self.ids).encode("utf-8")).hexdigest()

    def content_digest(self) -> str:
        """sha256 hex of the samples' content (:func:`.fingerprint.samples_digest`)."""
        return samples_digest(self.samples)

    def record(self) -> dict[str, object]:
        """What a run stores about its calibration: ``{"split", "n", "ids_sha256", "sha256"}``
        (``sha256``: of the samples' content, so another copy with the same ids is another split)."""
        return {
            "split": self.name,
            "n": len(self.samples),
            "ids_sha256": self.digest(),
            "sha256": self.content_digest(),
        }

    def check_disjoint(self, evaluated: Sequence[Sample]) -> None:
        """Raise if a calibration sample id is also an evaluated one."""
        shared = sorted(set(self.ids) & {s.id for s in evaluated})
        if shared:
            raise FacLensError(
                f"the calibration split {self.name!r} shares {len(shared)} sample id(s) with the evaluated "
                f"samples (e.g. {shared[0]!r}): calibrate on other samples (--calibration <file or folder "
                "of a separate split>), or leave --calibration out to hold out samples after the evaluated ones"
            )


def hold_out(
    samples: Sequence[Sample], limit: int | None, n: int, dataset: str
) -> tuple[list[Sample], CalibrationSplit]:
    """(evaluated, calibration) from one benchmark's samples: the first ``limit`` samples (all but the
    last ``n`` when ``limit`` is None) are evaluated, the ``n`` after them calibrate.

    Args:
        samples: the benchmark's samples in its order (at least ``limit + n`` of them when a limit is given).
    """
    if n < 1:
        raise FacLensError(f"--calibration-n {n}: give a positive number of calibration samples")
    n_eval = len(samples) - n if limit is None else min(limit, len(samples) - n)
    if n_eval < 1:
        raise FacLensError(
            f"{dataset!r} has {len(samples)} samples: too few to hold out {n} for calibration and evaluate "
            "the rest; give a separate split with --calibration, or a smaller --calibration-n"
        )
    evaluated = list(samples[:n_eval])
    return evaluated, CalibrationSplit(f"{dataset}:held-out", tuple(samples[n_eval : n_eval + n]))


def synthetic_validation(dataset: str, n: int) -> CalibrationSplit:
    """``n`` samples of the synthetic validation split (``"synthetic-pope"``: probes on its scenes,
    the first ``n``)."""
    from ..data import synthetic

    samples = list(synthetic.samples("validation", n))
    if dataset == "synthetic-pope":
        from ..data.pope import pope_samples

        samples = pope_samples(samples)[:n]
    return CalibrationSplit(f"{dataset}:validation", tuple(samples))


def load_calibration(dataset: str, path: str | Path, n: int) -> CalibrationSplit:
    """The first ``n`` samples of a user-given split of ``dataset`` (a file or folder as for ``--data-root``)."""
    from ..data.datasets import load_samples

    samples = load_samples(dataset, path, n)
    return CalibrationSplit(f"{dataset.lower()}:{Path(path).name}", tuple(samples))
