"""Print the installed versions of the libraries fac_lens hooks into, so every test log says what it ran on.

    python tools/installed_versions.py      # run by `make test` and `make test-latest`
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

HOOKED = ("torch", "transformers", "transformer-lens", "accelerate")


def main() -> int:
    found = []
    for name in HOOKED:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} (not installed)")
    print(f"python {sys.version.split()[0]}; " + ", ".join(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
