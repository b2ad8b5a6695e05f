#!/usr/bin/env bash
# The GPU runner: on the GPU machine (no Node, no network, CUDA 13 libraries in Python packages), turns the kit that
# `npm run gpu:kit` assembled into a running server and a measured benchmark. Stages, each one call's worth:
#
#   receive   check the kit folders that arrived under .gpu-kit/ against their SHA256SUMS and keep their files in
#             $SPECSERVE_GPU_HOME/kit (they outlive the call while the machine stays up; the tree's copies may not)
#   prepare   unpack Node, onnxruntime-node 1.29.0 (the core that the CUDA 13 provider was built against) and the
#             production dependencies; start building the models in the background (they build while the next call's
#             files travel)
#   run       join the CUDA provider and put it beside the core, find the CUDA 13 libraries and the driver, check that
#             they load and that there is a GPU, then run bench/gpu/gpu.bench.ts (its arguments follow)
#   all       receive, prepare, run
#   bench SCRIPT [ARGS]   `run`'s set-up, then another script (bench/gpu/webgpu.bench.ts)
#   check-libs, check-gpu, join NAME   single steps of `run`
#
# Overrides (tests): SPECSERVE_GPU_KIT, SPECSERVE_GPU_HOME, SPECSERVE_CUDA_LIBRARY_PATH, SPECSERVE_LDCONFIG=false,
# SPECSERVE_NVIDIA_SMI, SPECSERVE_NVIDIA_DEVICE. SPECSERVE_GPU_DRY_RUN=1 runs `run` without the GPU and library checks (with --device cpu: a rehearsal on a CPU machine).
# Exit status: 2 usage, 3 no GPU, 4 a library the provider needs is missing, 5 the kit is incomplete or corrupt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GPU_HOME=${SPECSERVE_GPU_HOME:-/tmp/specserve-gpu}
KIT=$GPU_HOME/kit
KIT_SRC=${SPECSERVE_GPU_KIT:-$ROOT/.gpu-kit}
NODE=$GPU_HOME/node/bin/node
ORT_LIB_DIR=$ROOT/node_modules/onnxruntime-node/bin/napi-v6/linux/x64
PROVIDER=libonnxruntime_providers_cuda.so
# What the provider links against (readelf -d), and cuDNN, which it opens at run time.
PROVIDER_NEEDS=(libcublasLt.so.13 libcublas.so.13 libcurand.so.10 libcudart.so.13 libcuda.so.1)

die() { local code=$1; shift; echo "gpu runner: $*" >&2; exit "$code"; }
say() { echo "gpu runner: $*"; }

usage() {
  sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

unxz() {
  if command -v xz >/dev/null 2>&1; then xz -dc "$1"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi
}

receive() {
  mkdir -p "$KIT"
  local n=0 dir name
  shopt -s nullglob
  for dir in "$KIT_SRC"/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    [ -f "$dir/SHA256SUMS" ] || continue
    if ! (cd "$dir" && sha256sum -c --quiet SHA256SUMS) >&2; then
      die 5 "kit folder $name: a file is missing or corrupt (sha256sum above); send it again"
    fi
    local sum file
    while read -r sum file; do mv -f "$dir/$file" "$KIT/$file"; done < "$dir/SHA256SUMS"
    cp "$dir/SHA256SUMS" "$KIT/SHA256SUMS.$name"
    [ -f "$dir/JOINS" ] && cp "$dir/JOINS" "$KIT/JOINS.$name"
    rm -f "$dir/SHA256SUMS"
    n=$((n + 1))
    say "received $name ($(wc -l < "$KIT/SHA256SUMS.$name") files)"
  done
  if [ "$n" = 0 ] && [ -z "$(ls -A "$KIT")" ]; then
    die 5 "no kit under $KIT_SRC: build it with npm run gpu:kit and carry its folders (.gpu-kit/base, .gpu-kit/cuda)"
  fi
}

# join NAME: the file NAME from its parts, as a JOINS line lists them ("sha256  NAME  part part ..."), checked.
join_file() {
  local want=$1 line sum name parts part
  [ -f "$KIT/$want" ] && return 0
  line=$(cat "$KIT"/JOINS.* 2>/dev/null | awk -v w="$want" '$2 == w' | head -1)
  [ -n "$line" ] || die 5 "$want: no JOINS line names it (has the kit folder that holds it arrived?)"
  read -r sum name parts <<< "$line"
  for part in $parts; do
    [ -f "$KIT/$part" ] || die 5 "$want: part $part has not arrived (carry the kit folder that holds it)"
  done
  (cd "$KIT" && cat $parts > "$want.joining")
  if ! echo "$sum  $want.joining" | (cd "$KIT" && sha256sum -c --quiet) >&2; then
    rm -f "$KIT/$want.joining"
    die 5 "$want: the joined file's checksum differs"
  fi
  mv "$KIT/$want.joining" "$KIT/$want"
  say "joined $want from $(echo $parts | wc -w) parts"
}

prepare() {
  local f
  for f in node.xz onnxruntime-node.tar.xz deps.tar.xz models.tar.xz; do
    [ -f "$KIT/$f" ] || die 5 "kit file $f has not arrived (carry .gpu-kit/base and run receive)"
  done
  mkdir -p "$GPU_HOME/node/bin" "$GPU_HOME/node_modules" "$GPU_HOME/shared"
  unxz "$KIT/node.xz" > "$NODE.tmp" && chmod +x "$NODE.tmp" && mv "$NODE.tmp" "$NODE"
  unxz "$KIT/deps.tar.xz" | tar -x -C "$GPU_HOME"
  rm -rf "$GPU_HOME/node_modules/onnxruntime-node"
  unxz "$KIT/onnxruntime-node.tar.xz" | tar -x -C "$GPU_HOME/node_modules"
  unxz "$KIT/models.tar.xz" | tar -x -C "$GPU_HOME/shared"
  if [ -e "$ROOT/node_modules" ] && [ ! -L "$ROOT/node_modules" ]; then
    die 1 "$ROOT/node_modules exists and is not the kit's; remove it so that the kit's dependencies are used"
  fi
  ln -sfn "$GPU_HOME/node_modules" "$ROOT/node_modules"
  say "node $("$NODE" --version), onnxruntime-node $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$GPU_HOME/node_modules/onnxruntime-node/package.json" | head -1)"
  (cd "$ROOT" && setsid nohup "$NODE" bin/run-ts.js bench/gpu/gpu.bench.ts build --shared "$GPU_HOME/shared/models" \
    --models "$GPU_HOME/models" > "$GPU_HOME/build.log" 2>&1 < /dev/null &)
  say "building the models in the background (log: $GPU_HOME/build.log)"
}

# The CUDA 13 libraries of the image's Python packages (nvidia-*: lib folders), and the driver's libcuda.
library_path() {
  if [ -n "${SPECSERVE_CUDA_LIBRARY_PATH:-}" ]; then echo "$SPECSERVE_CUDA_LIBRARY_PATH"; return; fi
  local dirs
  dirs=$(python3 - <<'PY' 2>/dev/null || true
import glob, os, sys
found = []
for base in sys.path:
    for d in sorted(glob.glob(os.path.join(base, 'nvidia', '*', 'lib')) + glob.glob(os.path.join(base, 'nvidia', 'cu13', 'lib'))):
        if d not in found:
            found.append(d)
print(':'.join(found))
PY
)
  local d
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/local/cuda/lib64 /usr/lib64; do
    [ -e "$d/libcuda.so.1" ] && dirs="$dirs:$d"
  done
  echo "${dirs#:}"
}

find_lib() {
  local lib=$1 d
  IFS=':' read -ra search <<< "${LD_LIBRARY_PATH:-}"
  for d in "${search[@]}"; do [ -n "$d" ] && [ -e "$d/$lib" ] && return 0; done
  [ "${SPECSERVE_LDCONFIG:-true}" = true ] && ldconfig -p 2>/dev/null | grep -q "[[:space:]]$lib " && return 0
  return 1
}

check_libs() {
  export LD_LIBRARY_PATH="$(library_path)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  local missing=() lib
  for lib in "${PROVIDER_NEEDS[@]}"; do find_lib "$lib" || missing+=("$lib"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    die 4 "the CUDA provider cannot load: ${missing[*]} not found (searched LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-<empty>} and ldconfig); the CUDA 13 libraries come from the image's Python packages (nvidia-cublas, nvidia-curand, nvidia-cuda-runtime) and libcuda.so.1 from the NVIDIA driver"
  fi
  find_lib libcudnn.so.9 || say "warning: libcudnn.so.9 not found; nodes that need cuDNN will fail"
  say "CUDA libraries: $LD_LIBRARY_PATH"
}

check_gpu() {
  local smi=${SPECSERVE_NVIDIA_SMI:-nvidia-smi} dev=${SPECSERVE_NVIDIA_DEVICE:-/dev/nvidia0}
  if command -v "$smi" >/dev/null 2>&1 && "$smi" -L >/dev/null 2>&1; then
    say "$("$smi" -L | head -1)"
  elif [ -e "$dev" ]; then
    say "$dev present (no nvidia-smi)"
  else
    die 3 "no NVIDIA GPU: nvidia-smi -L lists none and $dev is absent"
  fi
}

# The provider beside the core, the libraries found, the GPU there; then `node bin/run-ts.js SCRIPT ARGS`.
run_script() {
  local script=$1; shift
  [ -x "$NODE" ] || die 5 "Node is not unpacked: run prepare first"
  # The tree is copied afresh for every call, which can drop the link that prepare made.
  [ -e "$ROOT/node_modules" ] || ln -sfn "$GPU_HOME/node_modules" "$ROOT/node_modules"
  if [ -n "${SPECSERVE_GPU_DRY_RUN:-}" ]; then
    # Everything but the GPU: a rehearsal of the kit on a CPU machine (gpu.bench.ts --device cpu).
    say "dry run: no GPU or CUDA library checks"
    cd "$ROOT"
    exec "$NODE" bin/run-ts.js "$script" "$@"
  fi
  check_gpu
  # The full provider where all its parts arrived, else the one trimmed to Hopper's code (bench/gpu/fatbin.ts).
  local provider_xz=providers_cuda.sm90.so.xz
  if cat "$KIT"/JOINS.* 2>/dev/null | grep -q ' providers_cuda.full.so.xz '; then
    if (join_file providers_cuda.full.so.xz); then provider_xz=providers_cuda.full.so.xz
    else say "the full provider is incomplete; using the sm_90 one"; fi
  fi
  join_file "$provider_xz"
  if [ ! -f "$ORT_LIB_DIR/$PROVIDER" ] || [ "$KIT/$provider_xz" -nt "$ORT_LIB_DIR/$PROVIDER" ]; then
    unxz "$KIT/$provider_xz" > "$ORT_LIB_DIR/$PROVIDER.tmp" && mv "$ORT_LIB_DIR/$PROVIDER.tmp" "$ORT_LIB_DIR/$PROVIDER"
  fi
  cp -f "$KIT/libonnxruntime_providers_shared.so" "$ORT_LIB_DIR/"
  say "provider: $provider_xz"
  check_libs
  vulkan
  cd "$ROOT"
  exec "$NODE" bin/run-ts.js "$script" "$@"
}

# WebGPU (Dawn over Vulkan) needs a Vulkan loader, which the image lacks: Debian's, carried as .deb files in .gl/
# (README.md of the device tool), unpacked into / ; the NVIDIA driver brings the ICD.
vulkan() {
  local deb
  shopt -s nullglob
  for deb in "$ROOT"/.gl/*.deb; do dpkg -x "$deb" /; done
  ldconfig 2>/dev/null || true
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd
  if ldconfig -p 2>/dev/null | grep -q libvulkan.so.1; then say "Vulkan loader present${VK_DRIVER_FILES:+ (ICD $VK_DRIVER_FILES)}"; fi
}

run() {
  run_script bench/gpu/gpu.bench.ts run --shared "$GPU_HOME/shared/models" --models "$GPU_HOME/models" "$@"
}

stage=${1:-}
[ $# -gt 0 ] && shift
case "$stage" in
  receive) receive ;;
  prepare) prepare ;;
  run) if [ -d "$KIT_SRC" ]; then receive; fi; run "$@" ;;
  all) receive; prepare; run "$@" ;;
  check-libs) check_libs ;;
  check-gpu) check_gpu ;;
  join) [ $# -eq 1 ] || usage; join_file "$1" ;;
  bench) [ $# -ge 1 ] || usage; if [ -d "$KIT_SRC" ]; then receive; fi; run_script "$@" ;;
  *) usage ;;
esac
