#!/usr/bin/env bash
# Builds heldout with `--features cuda` on a machine with no CUDA toolkit and no GPU, from
# NVIDIA's PyPI wheels (CUDA 13.0: nvcc, headers, cuBLAS, cuRAND, NVRTC, runtime), and packs
# what the checks need into dev/ (ignored by git) for a GPU machine, where they run from the
# repository root with dev/ carried along: `bash bench/cuda/device-check.sh` (and -2, -3).
#
#   bash bench/cuda/build.sh            # kit in $KIT (default /work/cudakit), then build + pack
#
# candle's cudarc links libcuda (the driver) at build time; the wheels carry no stub of it, so
# a stub exporting the driver API's names (no code) is made here. At run time the GPU machine's
# real libcuda.so.1 and its cuBLAS/cuRAND/NVRTC/runtime (CUDA 13) are loaded instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
KIT=${KIT:-/work/cudakit}
CU=$KIT/x/nvidia/cu13
if [ ! -x "$CU/bin/nvcc" ]; then
  mkdir -p "$KIT/whl" "$KIT/x"
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$KIT/whl" \
    "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-nvrtc==13.0.*" \
    "nvidia-cuda-crt==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-cccl==13.0.*" \
    "nvidia-cublas==13.0.*" "nvidia-curand"
  (cd "$KIT/x" && for w in ../whl/*.whl; do unzip -q -o "$w"; done)
  chmod +x "$CU"/bin/* "$CU"/nvvm/bin/*
  # the driver API's names, from cudarc's bindings (the crate as cargo downloaded it)
  cargo fetch
  cudarc=$(ls ~/.cargo/registry/cache/*/cudarc-0.19.*.crate | head -1)
  tar xzf "$cudarc" -O --wildcards '*/src/driver/sys/mod.rs' |
    grep -oP '^pub unsafe fn \Kcu\w+' | sort -u |
    sed 's/.*/int &(void){return 999;}/' > "$KIT/cuda_stub.c"
  mkdir -p "$CU/lib/stubs"
  gcc -shared -fPIC -o "$CU/lib/stubs/libcuda.so" -Wl,-soname,libcuda.so.1 "$KIT/cuda_stub.c"
  (cd "$CU/lib" && for f in libcublas libcublasLt libcudart libnvrtc; do ln -sf $f.so.13 $f.so; done &&
    ln -sf libcurand.so.10 libcurand.so && ln -sf stubs/libcuda.so libcuda.so)
fi
export CUDA_HOME=$CU CUDA_ROOT=$CU CUDA_PATH=$CU PATH=$CU/bin:$PATH
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}   # H100 / H200; PTX for other cards is JIT-ed
export LIBRARY_PATH=$CU/lib:$CU/lib/stubs
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$KIT/target}
cargo build --release --features cuda --bin heldout
# the library's unit tests, CUDA copies of the step-equivalence tests among them
test_bin=$(cargo test --release --features cuda --lib --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["kind"]==["lib"]:
        print(m["executable"])')
rm -rf dev && mkdir -p dev/data dev/ref
mkdir -p .git/info; grep -qx "/dev/" .git/info/exclude 2>/dev/null || echo "/dev/" >> .git/info/exclude
strip -o dev/heldout "$CARGO_TARGET_DIR/release/heldout"
strip -o dev/heldout-tests "$test_bin"
xz -T2 -6 dev/heldout dev/heldout-tests
cp -r ../shared/data/cicids2017_improved_sample dev/data/
cp -r ../shared/reference/run.py ../shared/reference/refbench dev/ref/
du -sh dev dev/*
