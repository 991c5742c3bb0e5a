#!/usr/bin/env bash
# ctest's test_python: the Python package as a user gets it. A fresh venv under the
# build tree (Debian's python3-numpy, -cffi and -pytest seen through
# --system-site-packages; whatever is missing comes from PyPI, as does the build
# backend scikit-build-core), `pip install` of the repository, the cats photo classified
# from an unrelated directory as vkformer-classify classifies it, the pytest suite
# (python/tests), then `pip uninstall`.
#   bash tests/python.sh PYTHON BUILD_DIR SOURCE_DIR
set -euo pipefail
py=$1 build=$2 src=$3
venv=$build/python-venv
rm -rf "$venv"
"$py" -m venv --system-site-packages "$venv"
t0=$(date +%s)
"$venv/bin/pip" install -q --disable-pip-version-check "$src[test]" --config-settings=build-dir="$build/python-build"
echo "test_python: pip install took $(($(date +%s) - t0)) s"
cd "$(mktemp -d)"
"$venv/bin/python" - "$build/vkformer-classify" "$src/models/images/000000039769.png" "$venv" <<'PY'
import json, subprocess, sys
import vkformer
assert vkformer.__file__.startswith(sys.argv[3]), vkformer.__file__
got = vkformer.pipeline("image-classification")(sys.argv[2])
want = json.loads(subprocess.run([sys.argv[1], "-q", "--json", sys.argv[2]], capture_output=True, check=True).stdout)[0]
assert got[0]["label"] == want[0]["label"] == "tabby, tabby cat", (got, want)
print("test_python: installed package:", got[0])
PY
VKF_REPO_DIR=$src VKF_TOOLS_DIR=$build "$venv/bin/python" -m pytest -q -p no:cacheprovider "$src/python/tests"
"$venv/bin/pip" uninstall -q -y vkformer
if "$venv/bin/python" -c "import vkformer" 2>/dev/null; then echo "test_python: vkformer still imports after uninstall" >&2; exit 1; fi
echo "test_python: uninstalled"
