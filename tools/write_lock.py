"""Write the lock file from the environment this interpreter runs in (``make lock`` runs it in
``.venv-latest``, freshly resolved to the newest versions pyproject.toml allows).

Every installed distribution except fac-lens itself is pinned with ``==``. Local version labels
(``2.13.0+cpu``) are dropped so the pin also matches the same release from another index.

    python tools/write_lock.py requirements/lock.txt
"""

from __future__ import annotations

import re
import sys
from datetime import date
from importlib.metadata import distributions
from pathlib import Path

HEADER = """\
# The one tested set of versions fac_lens installs (make setup: pip install -r this file).
# Written by `make lock` on {day} (python {python}) from the newest versions pyproject.toml allows.
# Refresh: make lock && make test; commit this file only when the whole suite passed on it.
# torch is installed first from the CPU wheel (pip install torch==2.13.0); it is pinned here too.
"""


def pins() -> list[str]:
    seen = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if name is None:
            continue
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in {"fac-lens", "pip", "setuptools", "wheel"}:
            continue
        seen[key] = f"{key}=={dist.version.split('+')[0]}"
    return [seen[k] for k in sorted(seen)]


def main(out: str) -> int:
    python = ".".join(map(str, sys.version_info[:3]))
    text = HEADER.format(day=date.today().isoformat(), python=python) + "\n".join(pins()) + "\n"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text)
    print(f"wrote {out}: {len(pins())} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
