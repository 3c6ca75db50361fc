#!/usr/bin/env bash
# Install Debian's chromium for the real-browser test (tests/views/test_browser.py), which drives it through
# Playwright's executable_path: Playwright's own browser download (a CDN) is not reachable from here.
# Idempotent: does nothing when chromium is already on PATH. Exit 0 when chromium is present afterwards.
set -u

find_chromium() {
    command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null
}

if path="$(find_chromium)"; then
    echo "install_chromium: chromium already present: $path"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium: chromium not on PATH and apt-get is not available; install chromium by hand" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "install_chromium: need root (or sudo) to run apt-get install chromium" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -qq -o Dpkg::Use-Pty=0 --no-install-recommends)

# Refresh the package lists first when chromium has no install candidate (e.g. empty lists in a container).
candidate="$(apt-cache policy chromium 2>/dev/null | awk '/Candidate:/ {print $2}')"
if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
    echo "install_chromium: no install candidate for chromium; running apt-get update"
    $SUDO apt-get update -qq || { echo "install_chromium: apt-get update failed" >&2; exit 1; }
fi

echo "install_chromium: installing Debian's chromium with apt-get (candidate ${candidate:-unknown})"
if ! $SUDO apt-get install "${APT_OPTS[@]}" chromium; then
    echo "install_chromium: apt-get install failed; retrying after apt-get update"
    $SUDO apt-get update -qq && $SUDO apt-get install "${APT_OPTS[@]}" chromium
fi

if path="$(find_chromium)"; then
    echo "install_chromium: chromium installed: $path ($("$path" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi
echo "install_chromium: chromium is still not on PATH after apt-get install" >&2
exit 1
