# Sourced by the device-check scripts, from the repository root on the GPU machine, with the log
# name as $1: logs to $OUT/$1 (or out/$1), unpacks dev/ (what bench/cuda/build.sh packed) and
# points the loader at the CUDA 13 libraries: the driver's libcuda, and cuBLAS / cuRAND / NVRTC /
# the runtime from the machine's PyTorch wheels. Leaves the shell in dev/.
set -uo pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/$1") 2>&1
cd dev
for f in *.xz; do [ -e "$f" ] && xz -d -f "$f"; done
chmod +x heldout heldout-tests
libs=$(python3 - <<'PY'
import glob, os, site
dirs = set()
for sp in site.getsitepackages():
    for n in ("libcublas.so.13", "libcurand.so.10", "libnvrtc.so.13", "libcudart.so.13"):
        for p in glob.glob(os.path.join(sp, "nvidia", "**", n), recursive=True):
            dirs.add(os.path.dirname(p))
print(":".join(sorted(dirs)))
PY
)
export LD_LIBRARY_PATH=$libs:/usr/local/nvidia/lib64:/usr/local/nvidia/lib:${LD_LIBRARY_PATH:-}
