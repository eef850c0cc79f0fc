#!/usr/bin/env bash
# Takes the GUI screenshots in docs/screenshots/ from an already built tree (builds nothing):
# runs attnscope under Xvfb, lets it run the default prompt, shows one (layer, head) and saves
# the window. Usage: scripts/screenshots.sh [build-dir] [model]   (defaults: build, default model)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
app="$build/app/attnscope"
out="$root/docs/screenshots"

if [[ ! -x "$app" ]]; then
  echo "screenshots.sh: $app: not found; build the GUI first (cmake --build $build --target attnscope)" >&2
  exit 1
fi
command -v xvfb-run >/dev/null || { echo "screenshots.sh: xvfb-run not found (apt-get install xvfb xauth)" >&2; exit 1; }
mkdir -p "$out"

model_args=()
if [[ $# -ge 2 ]]; then model_args=("$2"); fi

# Layer 3, head 0 of SmolLM2-135M shows a clear previous-token/induction pattern on the
# default prompt; any (layer, head) works.
xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$app" "${model_args[@]}" --screenshot "$out/main_window.png" --layer 3 --head 0
xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$app" "${model_args[@]}" --dark --screenshot "$out/main_window_dark.png" --layer 3 --head 0
echo "screenshots.sh: wrote $out/main_window.png and $out/main_window_dark.png"
