#!/usr/bin/env bash
# The checks a session with a lent GPU machine runs, as one command (see RESULTS.md):
# the CUDA tests (they skip on a machine without CUDA) and the CUDA overhead figures.
#
# Run from the repository root on the GPU machine, with the wheels of what its image lacks
# (transitions) in .whl/ (git-ignored; `pip download --no-deps transitions==0.9.3 -d .whl`)
# and $OUT naming a folder whose files come back. Each part has its own time limit so a
# slow part still leaves the others' output.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_checks}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/machine.txt"
python3 -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name())" \
    | tee -a "$OUT/machine.txt"
timeout 200 python3 -m pytest -q -p no:cacheprovider -rs \
    tests/runtime/test_no_sync.py tests/differential/test_precision_differential.py \
    tests/core/test_logging.py 2>&1 | tee "$OUT/cuda_tests.log"
timeout 300 python3 benchmarks/overhead.py --device cuda --variants raw trainer lightning \
    --repeats 5 --json "$OUT/overhead_cuda.json" 2>&1 | tee "$OUT/overhead_cuda.log"
