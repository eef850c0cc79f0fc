#!/usr/bin/env bash
# Renders the README screenshots in docs/screenshots/ from an already built tree (builds
# nothing): runs attnscope under Xvfb on the default model with four variants, a small needle
# test and a throughput sweep, then saves the window once per view (each showing the run that
# makes it interesting) plus a dark-palette map. Takes a few minutes on a CPU.
# Usage: scripts/screenshots.sh [build-dir] [model]   (defaults: build, the default model)
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

# Runs: 0 baseline, 1 PyramidKV, 2 KDGQA, 3 block top-k (NSA-style selection), 4 StreamingLLM.
# Layer 3, head 2 of SmolLM2-135M is a clear previous-token/induction head on this text.
common=("${model_args[@]}" --prompt-file "$root/resources/texts/prose_lighthouse.txt"
  --variant "kv=pyramidkv:budget=96,window=16"
  --variant "grouping=kdgqa"
  --variant "pattern=blocktopk:block=32,k=4"
  --variant "kv=streamingllm:budget=96,sinks=4"
  --decode 16 --layer 3 --head 2 --compare 0,3)

xvfb-run -a -s "-screen 0 1600x1000x24" "$app" "${common[@]}" --needle --sweep \
  --screenshots "$out" \
  --views heads@0,map@0,compare,kv@1,groups@2,masks@3,metrics@1,throughput
xvfb-run -a -s "-screen 0 1600x1000x24" "$app" "${common[@]}" --dark \
  --screenshots "$out/dark" --views map@0
mv "$out/dark/map.png" "$out/map_dark.png"
rmdir "$out/dark"
echo "screenshots.sh: wrote $(ls "$out" | tr '\n' ' ')"
