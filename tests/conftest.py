"""Shared fixtures: a tiny labeled motion data set written as real videos,
and tiny configs pointed at it."""
import os
import os.path as osp
import sys
import uuid
import warnings

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault('OMP_NUM_THREADS', '2')
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention')

import amd_mmaction  # noqa: E402,F401
from amd_mmaction.data.synthetic import make_motion_dataset  # noqa: E402

CONFIGS = osp.join(ROOT, 'configs')


def pytest_configure(config):
    config.addinivalue_line('markers', 'chaos: kills real training processes at random '
                            'moments (tests/test_exact_resume.py); slow by design, never skipped')


@pytest.fixture(scope='session')
def motion_data(tmp_path_factory):
    """12 train + 6 val VP9 .webm clips, 24 frames of 64x64, 6 classes."""
    root = str(tmp_path_factory.mktemp('motion'))
    return make_motion_dataset(root, num_train=12, num_val=6, num_frames=24,
                               size=64, ext='webm', seed=0)


def tiny_config(name, data, work_dir, **overrides):
    """Load ``configs/tiny/<name>`` pointed at ``data`` (motion_data) with
    ``overrides`` given as mmengine cfg-options (dotted keys)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(CONFIGS, 'tiny', name))
    opts = {
        'train_dataloader.dataset.ann_file': data['train'],
        'train_dataloader.dataset.data_prefix.video': data['root'],
        'train_dataloader.batch_size': 4,
        'work_dir': str(work_dir),
        'default_hooks.logger.interval': 1,
        # mmengine names its logger/visualizer instances after the experiment
        # (config name + second): two Runners built in the same second would
        # share them and log into each other's folders.
        'experiment_name': f'{osp.splitext(name)[0]}_{uuid.uuid4().hex[:8]}',
    }
    opts.update(overrides)
    cfg.merge_from_dict(opts)
    return cfg


@pytest.fixture
def tiny_cfg(motion_data, tmp_path):
    def make(name, **overrides):
        return tiny_config(name, motion_data, tmp_path / 'work', **overrides)
    return make
