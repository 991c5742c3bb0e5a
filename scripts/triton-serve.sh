#!/usr/bin/env bash
# Starts NVIDIA Triton Inference Server (the tritonserver binary that the PyPI
# wheel nvidia-pytriton 0.7.0 ships: Triton 2.51, runs without a GPU) on a
# model repository, with the vkformer backend, in the background:
#   bash scripts/triton-serve.sh REPO [PORT]
# REPO: a Triton model repository (REPO/NAME/config.pbtxt with backend: "vkformer",
# REPO/NAME/1/ the Hugging Face model directory). PORT: HTTP (default 8000);
# gRPC listens on PORT+1 and metrics on PORT+2, all on 127.0.0.1 only.
# Prints the server's pid on stdout once GET /v2/health/ready answers 200 (at
# most 120 s); else kills it, prints its log's tail on stderr and exits 1.
# Stop it with kill PID.
#
# Models: explicit model control (--model-control-mode=explicit --load-model=*):
# every model of REPO is loaded at start, and POST /v2/repository/models/NAME/load
# and .../unload load and unload them; nothing is polled.
#
# Environment:
#   VKF_TRITON_HOME      the wheel's cache (default ~/.cache/vkformer/triton);
#                        fetched (by package name, sha256 checked) and unpacked
#                        once into VKF_TRITON_HOME/0.7.0
#   VKF_TRITON_BACKENDS  the backend directory, holding vkformer/libtriton_vkformer.so
#                        (default: this checkout's build/triton/backends)
#   VKF_TRITON_LOG       the server's log (default /tmp/tritonserver.PORT.log)
#   VKF_TRITON_PIDFILE   where the pid is written (default /tmp/tritonserver.PORT.pid)
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") usage >&2; exit 2 ;;
esac
[ $# -le 2 ] || { usage >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
repo=$1
port=${2:-8000}
[[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65533 ] ||
  { echo "triton-serve.sh: bad port '$port'" >&2; exit 2; }
[ -d "$repo" ] || { echo "triton-serve.sh: $repo: no such model repository" >&2; exit 1; }
repo=$(cd "$repo" && pwd)

version=0.7.0
sha=21f063ff93bb426d0c06b7a55e7eb9efcfe62c0dddd9a908e9877e18710128df
home=${VKF_TRITON_HOME:-$HOME/.cache/vkformer/triton}/$version
bin=$home/pytriton/tritonserver/bin/tritonserver
backends=${VKF_TRITON_BACKENDS:-$root/build/triton/backends}
log=${VKF_TRITON_LOG:-/tmp/tritonserver.$port.log}
pidfile=${VKF_TRITON_PIDFILE:-/tmp/tritonserver.$port.pid}

# The server, once: the wheel downloaded with its hash checked, unpacked,
# stamped; under a lock, as parallel tests may all start here.
mkdir -p "$(dirname "$home")"
if [ ! -f "$home/.complete" ] && command -v flock >/dev/null; then
  exec 9>"$home.lock"
  flock 9
fi
if [ ! -f "$home/.complete" ]; then
  command -v python3 >/dev/null || bash "$root/scripts/apt-install.sh" python3
  python3 -m pip --version >/dev/null 2>&1 || bash "$root/scripts/apt-install.sh" python3-pip
  rm -rf "$home"
  mkdir -p "$home"
  echo "triton-serve.sh: downloading nvidia-pytriton==$version (55 MB) into $home" >&2
  python3 -m pip download --quiet --no-deps --disable-pip-version-check --require-hashes -d "$home/wheel" \
    -r <(echo "nvidia-pytriton==$version --hash=sha256:$sha") >&2
  python3 -m zipfile -e "$home"/wheel/nvidia_pytriton-"$version"-*.whl "$home"
  rm -rf "$home/wheel"
  [ -f "$bin" ] || { echo "triton-serve.sh: the wheel has no pytriton/tritonserver/bin/tritonserver" >&2; exit 1; }
  chmod +x "$bin"
  touch "$home/.complete"
fi
exec 9>&-

if [ ! -f "$backends/vkformer/libtriton_vkformer.so" ]; then
  echo "triton-serve.sh: $backends/vkformer/libtriton_vkformer.so is missing: build the backend" \
       "(cmake -DVKF_BUILD_TRITON=ON, target triton_vkformer) or set VKF_TRITON_BACKENDS" >&2
  exit 1
fi
backends=$(cd "$backends" && pwd)

# The server finds its libraries (the wheel's nvidia_pytriton.libs) through
# its RPATH. Its own session: a terminal's Ctrl-C or hangup leaves it alone.
setsid "$bin" --model-repository "$repo" \
  --model-control-mode=explicit --load-model='*' \
  --http-address 127.0.0.1 --http-port "$port" \
  --grpc-address 127.0.0.1 --grpc-port $((port + 1)) \
  --metrics-address 127.0.0.1 --metrics-port $((port + 2)) \
  --allow-sagemaker=false --allow-vertex-ai=false \
  --backend-directory "$backends" </dev/null >"$log" 2>&1 &
pid=$!
echo "$pid" >"$pidfile"

ready() {
  if command -v curl >/dev/null; then
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/v2/health/ready")" = 200 ]
  else
    python3 - "$port" <<'PY'
import sys, urllib.request
try:
    r = urllib.request.urlopen("http://127.0.0.1:%s/v2/health/ready" % sys.argv[1], timeout=2)
    sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
  fi
}

deadline=$((SECONDS + 120))
while ! ready; do
  if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
    if kill -0 "$pid" 2>/dev/null; then
      echo "triton-serve.sh: not ready after 120 s; stopping it (pid $pid)" >&2
      kill "$pid" 2>/dev/null || true
      for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
    else
      echo "triton-serve.sh: tritonserver exited before it was ready" >&2
    fi
    wait "$pid" 2>/dev/null || true
    rm -f "$pidfile"
    echo "--- tail of $log ---" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "$pid"
