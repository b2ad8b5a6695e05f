#!/usr/bin/env bash
# Puts ONNX Runtime's CUDA 13 execution provider under node_modules, in the layout that ran on the GPU machine
# (bench/results/gpu-*.json): onnxruntime-node 1.29.0 (core and Node binding; onnxruntime-common 1.29.0 nested
# beside it) with the provider libraries that com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 ships for that
# release. onnxruntime-node's own CUDA download is a CUDA 12 build; this one needs CUDA 13's cuBLAS, cuRAND and
# runtime, cuDNN 9 and an NVIDIA driver for CUDA 13. The project's CPU path keeps onnxruntime-node 1.30.0 elsewhere.
#
#   docker/install-cuda-provider.sh [APP_DIR]      (needs the npm registry; run after npm ci)
set -euo pipefail
APP=$(cd "${1:-$(dirname "$0")/..}" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack --silent onnxruntime-node@1.29.0 onnxruntime-common@1.29.0 com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 >/dev/null
ORT=$APP/node_modules/onnxruntime-node
rm -rf "$ORT"
mkdir -p "$ORT/node_modules/onnxruntime-common"
tar -xzf onnxruntime-node-1.29.0.tgz --strip-components=1 -C "$ORT" package/package.json package/dist package/bin/napi-v6/linux/x64
tar -xzf onnxruntime-common-1.29.0.tgz --strip-components=1 -C "$ORT/node_modules/onnxruntime-common"
tar -xzf com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz \
  package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so package/Plugins/Linux/x64/libonnxruntime_providers_shared.so
mv package/Plugins/Linux/x64/libonnxruntime_providers_*.so "$ORT/bin/napi-v6/linux/x64/"
echo "onnxruntime-node 1.29.0 with the CUDA 13 provider in $ORT"
