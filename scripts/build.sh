#!/usr/bin/env bash
# Configures and builds attnscope (Release) into build/. CUDA is used when nvcc is found;
# warnings are errors when CI=true. Extra arguments go to the cmake configure step.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${ATTNSCOPE_BUILD_DIR:-$ROOT/build}"
WERROR=OFF
[[ "${CI:-}" == "true" ]] && WERROR=ON

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DATTNSCOPE_WERROR="$WERROR" "$@"
cmake --build "$BUILD_DIR" -j"$(nproc)"
