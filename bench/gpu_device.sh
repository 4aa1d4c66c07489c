#!/bin/sh
# gpu_device.sh DIR OUT: the checks and figures of moss's GPU paths on a
# machine with an NVIDIA GPU and its driver but no moss compiler (the device
# tool's), from what bench/gpu_prepare.py and the tests' --export wrote
# into DIR on the development machine:
#   DIR/gpu_run            bench/gpu_run.c built there (libmossrt alone)
#   DIR/libOpenCL.so.1     an OpenCL ICD loader (Debian's ocl-icd-libopencl1)
#   DIR/libvulkan.so.1     the Vulkan loader (Debian's libvulkan1)
#   DIR/digits-*/          digits bundles per target (gpu_prepare.py --digits)
#   DIR/tiles/             test_gpu_tiles.py --export (PTX)
#   DIR/vkconf.tar.xz      run_node_tests.py --vulkan --export, packed (optional)
#   DIR/bench/             gpu_prepare.py's bundles, models.tsv, forms.tsv
# The driver's OpenCL ICD and Vulkan ICD are the ones NVIDIA's container
# runtime mounts under /usr/local/nvidia. Logs go to OUT.
D=$(cd "$1" && pwd)
OUT=$2
R=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT" "$D/vendors"
echo /usr/local/nvidia/lib64/libnvidia-opencl.so.1 > "$D/vendors/nvidia.icd"
export OCL_ICD_VENDORS="$D/vendors" MOSS_OPENCL_LIBRARY="$D/libOpenCL.so.1" MOSS_CACHE_DIR=off
export MOSS_VULKAN_LIBRARY="$D/libvulkan.so.1" VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export VK_ICD_FILENAMES=$VK_DRIVER_FILES XDG_RUNTIME_DIR=/tmp PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,power.draw,clocks.sm --format=csv | tee "$OUT/gpu.txt"
for d in "$D"/digits-*; do
  for code in auto source spirv; do # MOSS_OPENCL_CODE: the OpenCL blobs' two forms (others ignore it)
    case $d in *opencl*) ;; *) [ $code = auto ] || continue ;; esac
    echo "== $(basename "$d") (MOSS_OPENCL_CODE=$code)"
    MOSS_OPENCL_CODE=$code python3 "$R/tests/e2e/check_gpu.py" "$d" "$D/gpu_run" --iterations 100 2>&1 |
      tee "$OUT/$(basename "$d")-$code.log" | tail -8
  done
done
if [ -d "$D/tiles" ]; then
  echo "== work-group tiles (PTX)"
  python3 "$R/tests/e2e/check_gpu.py" "$D/tiles" "$D/gpu_run" --iterations 100 2>&1 | tee "$OUT/tiles.log" | tail -8
fi
if [ -f "$D/vkconf.tar.xz" ]; then
  mkdir -p /tmp/vkconf && tar xJf "$D/vkconf.tar.xz" -C /tmp/vkconf
  echo "== Vulkan node tests"
  python3 "$R/tests/e2e/check_gpu.py" /tmp/vkconf "$D/gpu_run" -j 12 > "$OUT/vkconf.log" 2>&1
  grep -v "^pass" "$OUT/vkconf.log" | tail -30
fi
if [ -d "$D/bench" ]; then
  echo "== models"
  python3 "$R/bench/bench_gpu.py" "$D/bench" "$D/gpu_run" --iterations 50 2>&1 | tee "$OUT/bench.log"
fi
