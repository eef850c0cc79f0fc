#!/usr/bin/env bash
# Sets up (packages + default model), builds (Release) and runs every test with ctest:
# core unit tests, model tests, GPU tests (skipped without a GPU) and GUI tests (offscreen).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${ATTNSCOPE_BUILD_DIR:-$ROOT/build}"

bash "$ROOT/scripts/setup.sh"
bash "$ROOT/scripts/build.sh"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"${ATTNSCOPE_TEST_JOBS:-$(nproc)}"
