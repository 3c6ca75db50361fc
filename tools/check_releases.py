"""Early warning: the newest releases of the libraries whose internals fac_lens hooks into.

Prints, for each watched package, the version in ``requirements/lock.txt``, the range pyproject.toml
allows, and the newest release on the package index, and says what to do when a newer release
exists. Never fails the build: a release outside the range is a notice (widen the range only after
the whole suite passed on it: ``make test-latest``), and an unreachable index is reported as such.

    python tools/check_releases.py          # run by `make test`
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "lock.txt"
WATCHED = ("transformers", "transformer-lens")
INDEX_URL = "https://pypi.org/pypi/{name}/json"
TIMEOUT_S = 10


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock_text: str) -> dict[str, str]:
    """``name==version`` lines of a lock file, by canonical name (local labels like +cpu kept)."""
    pins = {}
    for line in lock_text.splitlines():
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)", line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def allowed_ranges(pyproject_text: str) -> dict[str, SpecifierSet]:
    """The version range pyproject.toml's ``[project] dependencies`` give each package."""
    ranges = {}
    for requirement in tomllib.loads(pyproject_text)["project"]["dependencies"]:
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)$", requirement)
        ranges[canonical(match.group(1))] = SpecifierSet(match.group(2).split(";")[0].strip())
    return ranges


def newest_release(releases: dict[str, list]) -> Version | None:
    """The newest final (not pre-release, not yanked-only) version in a PyPI JSON ``releases`` map."""
    versions = []
    for text, files in releases.items():
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if version.is_prerelease or version.is_devrelease:
            continue
        if files and all(f.get("yanked", False) for f in files):
            continue
        versions.append(version)
    return max(versions, default=None)


def verdict(locked: str | None, allowed: SpecifierSet | None, newest: Version | None) -> str:
    """What a maintainer should do about one package, in a few words."""
    if newest is None:
        return "newest release unknown (index not reachable)"
    if locked is None:
        return "not in the lock: run `make lock`"
    locked_version = Version(locked)
    if newest.release <= locked_version.release:
        return "up to date"
    if allowed is not None and not allowed.contains(newest, prereleases=False):
        return (
            f"NEW {newest} is outside the allowed range {allowed}: try it (`make test-latest` after "
            "widening the range in a branch) and widen the range only if the whole suite passes"
        )
    return f"NEW {newest} is inside the allowed range: `make test-latest` tests it; `make lock` to adopt it"


def fetch_releases(name: str) -> dict[str, list] | None:
    try:
        with urllib.request.urlopen(INDEX_URL.format(name=name), timeout=TIMEOUT_S) as response:
            return json.load(response)["releases"]
    except Exception as error:  # noqa: BLE001 - an unreachable index is a notice, not a failure
        print(f"  ({name}: could not read the package index: {type(error).__name__}: {error})")
        return None


def main() -> int:
    pins = locked_versions(LOCK.read_text()) if LOCK.exists() else {}
    ranges = allowed_ranges((REPO / "pyproject.toml").read_text())
    print("release check (libraries whose internals fac_lens hooks into):")
    print(f"  {'package':<18}{'locked':<14}{'allowed':<18}{'newest':<10}")
    for name in WATCHED:
        releases = fetch_releases(name)
        newest = newest_release(releases) if releases is not None else None
        locked, allowed = pins.get(name), ranges.get(name)
        print(
            f"  {name:<18}{locked or '-':<14}{str(allowed or '-'):<18}{str(newest or '?'):<10}"
            f"{verdict(locked, allowed, newest)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
