#!/usr/bin/env bash
# Run HERE (a machine with a package registry), before a device session:
# downloads the pure-python wheels the GPU image lacks into .whl/ (git-ignored),
# which `run` then carries to the device:  carry=[".whl"].
#
# The device image (Python 3.12) already has torch, numpy, scipy, opencv,
# matplotlib, rich, pyyaml, einops, zipp. It lacks the OpenMMLab stack and
# its small dependencies. importlib_metadata is pinned below 10: 10.x needs
# lazy_importer, which the image does not have either (mmaction2 imports
# importlib_metadata for its dependency checks).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY_VERSION=${PY_VERSION:-3.12}
mkdir -p .whl
python -m pip download --quiet --only-binary=:all: --no-deps --python-version "$PY_VERSION" \
    --implementation py --abi none --platform any -d .whl \
    mmengine==0.10.7 mmcv-lite==2.1.0 mmaction2==1.2.0 addict termcolor yapf platformdirs \
    'importlib_metadata<10'
# remove what an older fetch left that the image must not shadow
rm -f .whl/importlib_metadata-1[0-9]*.whl .whl/zipp-*.whl
ls -l .whl
du -sh .whl
