#!/usr/bin/env bash
# Sets up (packages + default model), builds (Release) and launches the GUI, which opens the
# default model at start. Extra arguments are passed to the GUI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${ATTNSCOPE_BUILD_DIR:-$ROOT/build}"

bash "$ROOT/scripts/setup.sh"
bash "$ROOT/scripts/build.sh"
if [[ -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" && -z "${QT_QPA_PLATFORM:-}" ]]; then
  echo "run_gui: no display found; running under xvfb-run (set DISPLAY to see the window)" >&2
  exec xvfb-run -a -s "-screen 0 1600x1000x24" "$BUILD_DIR/app/attnscope" "$@"
fi
exec "$BUILD_DIR/app/attnscope" "$@"
