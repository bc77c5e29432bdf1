"""Without NVIDIA DALI (the optional [dali] extra), the DALI path says what
to install, and tests/test_dali.py is skipped with that reason.

Each check runs in a subprocess whose import system refuses 'nvidia' (a
meta-path finder inserted first), as on a machine without the extra.
"""
import os
import os.path as osp
import subprocess
import sys

from conftest import CONFIGS, ROOT

BLOCK_NVIDIA = '''
import sys
class NoNvidia:
    def find_spec(self, name, path=None, target=None):
        if name == 'nvidia' or name.startswith('nvidia.'):
            raise ModuleNotFoundError(f'No module named {name!r}', name=name)
sys.meta_path.insert(0, NoNvidia())
sys.path.insert(0, %r)
''' % ROOT

PIP_LINE = 'pip install nvidia-dali-cuda120==2.4.0'
EXTRA_LINE = 'pip install -e ".[dali]"'


def run_without_dali(code, timeout=120):
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, '-c', BLOCK_NVIDIA + code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


BUILD_DATASET = '''
import amd_mmaction
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmaction.registry import DATASETS
from amd_mmaction.data.dali import DALIMissing
cfg = Config.fromfile(%r)
ds = cfg.train_dataloader.dataset
ds.ann_file, ds.data_prefix = %r, dict(video=%r)
init_default_scope('mmaction')
try:
    DATASETS.build(ds)
except DALIMissing as err:
    print('DATASET:', err)
# a bad-clip policy must not swallow it as a bad clip
from amd_mmaction.data.dali import dali_collate
plan = dict(filename=%r, frame_inds=[0, 1], clip_len=2, codec='vp9', original_shape=(64, 64),
            views=[dict(crop_bbox=(0, 0, 64, 64), size=(64, 64), flip=None)],
            on_bad_clip='skip')
try:
    dali_collate([dict(inputs=plan, data_samples=None)], device='cpu')
except DALIMissing as err:
    print('COLLATE:', err)
'''


def test_dali_config_without_dali_names_the_install(motion_data):
    clip = osp.join(motion_data['root'], 'train', 'train_00000.webm')
    code = BUILD_DATASET % (osp.join(CONFIGS, 'tiny', 'amd_tiny_motion_dali.py'),
                            motion_data['train'], motion_data['root'], clip)
    proc = run_without_dali(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(': ', 1) for line in proc.stdout.splitlines()
                 if line.startswith(('DATASET:', 'COLLATE:')))
    assert set(lines) == {'DATASET', 'COLLATE'}, proc.stdout + proc.stderr[-2000:]
    for where, msg in lines.items():
        assert PIP_LINE in msg and EXTRA_LINE in msg, (where, msg)
        assert "No module named 'nvidia" in msg, (where, msg)
    assert 'DALIVideoDataset' in lines['DATASET']
    assert 'dali_collate' in lines['COLLATE']


def test_dali_tests_skip_with_the_install_line():
    code = ('import pytest\nsys.exit(pytest.main(["-q", "-rs", "-p", "no:cacheprovider", %r]))'
            % osp.join(ROOT, 'tests', 'test_dali.py'))
    proc = run_without_dali(code)
    out = proc.stdout + proc.stderr
    assert proc.returncode in (0, 5), out[-3000:]  # 5: nothing collected
    assert 'SKIPPED' in out and PIP_LINE in out and 'failed' not in out, out[-3000:]
