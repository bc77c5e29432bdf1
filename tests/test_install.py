"""The project installs like any package (``pip install .``, not editable)
and its library runs from the installed copy alone: a fresh virtual
environment, a folder outside the checkout, one tiny pre-training stage
whose config comes from the package data (``amd_mmaction::tiny/...``).

The fresh environment sees the dependencies of the environment running the
tests through a ``.pth`` line (so nothing is downloaded or reinstalled), but
not this environment's own (editable) amd_mmaction: a plain path line in a
``.pth`` file does not run the ``.pth`` files of the folder it names.
"""
import glob
import json
import os
import os.path as osp
import shutil
import site
import subprocess
import sys
import sysconfig
import textwrap

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# what a checkout holds besides the project's source (top level; not copied)
NOT_SOURCE = {'.git', '.venv', 'build', 'dist', 'data', 'work_dirs', '.pytest_cache',
              'amd_mmaction.egg-info'}

STAGE = r'''
import json, os, os.path as osp, sys, sysconfig
import amd_mmaction
from amd_mmaction.config_files import config_file
from amd_mmaction.data import make_motion_dataset
from mmengine.config import Config
from mmengine.runner import Runner

data = make_motion_dataset('motion', num_train=4, num_val=2, num_frames=16,
                           size=64, ext='webm', seed=0)
# a user's config: the installed tiny VideoMAE student, 1 epoch of 2 iterations
with open('student.py', 'w') as f:
    f.write(f"""
_base_ = ['amd_mmaction::tiny/videomae_student_tiny_motion.py']
work_dir = 'work'
train_dataloader = dict(batch_size=2, dataset=dict(
    ann_file={data['train']!r}, data_prefix=dict(video={data['root']!r})))
train_cfg = dict(max_epochs=1, val_interval=2)
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=True,
                        begin=0, end=1, convert_to_iter_based=True)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
""")
cfg = Config.fromfile('student.py')
runner = Runner.from_cfg(cfg)
runner.train()
print('RESULT ' + json.dumps(dict(
    package=amd_mmaction.__file__, config=config_file('tiny/videomae_student_tiny_motion.py'),
    purelib=sysconfig.get_paths()['purelib'], model=cfg.model.type,
    teacher=cfg.model.teacher, iters=runner.iter,
    checkpoints=sorted(os.listdir('work')))))
'''


def _run(cmd, env, cwd, timeout=240):
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (
        f'{" ".join(map(str, cmd))} failed ({proc.returncode}):\n'
        f'{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}')
    return proc.stdout


def _copy_source(dst):
    """The checkout's source files (git's tracked and not-ignored ones) into
    ``dst``: pip builds in the tree it is given, so the checkout stays clean."""
    try:
        names = subprocess.run(
            ['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
            cwd=ROOT, capture_output=True, check=True).stdout.decode().split('\0')
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        shutil.copytree(ROOT, dst, ignore=lambda folder, names: [
            n for n in names if n == '__pycache__' or (folder == ROOT and n in NOT_SOURCE)])
        return
    for name in filter(None, names):
        src = osp.join(ROOT, name)
        if osp.isfile(src):  # tracked files deleted in the work tree are skipped
            os.makedirs(osp.dirname(osp.join(dst, name)), exist_ok=True)
            shutil.copy2(src, osp.join(dst, name))


def _outer_site_dirs():
    dirs = list(site.getsitepackages()) + [sysconfig.get_paths()[k] for k in ('purelib', 'platlib')]
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return list(dict.fromkeys(d for d in dirs if osp.isdir(d)))


def test_non_editable_install_runs_a_stage_outside_the_checkout(tmp_path):
    venv = tmp_path / 'venv'
    made = subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f'cannot create a virtual environment here: {made.stderr.strip()}')
    python = str(venv / 'bin' / 'python')
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('PYTHON', 'PIP_')) and k != 'VIRTUAL_ENV'}
    env.update(VIRTUAL_ENV=str(venv), PATH=f'{venv / "bin"}{os.pathsep}{env.get("PATH", "")}',
               PIP_NO_INDEX='1', PIP_DISABLE_PIP_VERSION_CHECK='1', PIP_NO_CACHE_DIR='1',
               PIP_ROOT_USER_ACTION='ignore', OMP_NUM_THREADS='2',
               PYTHONWARNINGS='ignore')
    purelib = _run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                   env, tmp_path).strip()
    with open(osp.join(purelib, 'outer_site.pth'), 'w') as f:
        f.write(''.join(d + '\n' for d in _outer_site_dirs()))
    probe = ('import importlib.util as u; '
             'print(u.find_spec("mmengine") is not None, u.find_spec("amd_mmaction") is None)')
    assert _run([python, '-c', probe], env, tmp_path).split() == ['True', 'True'], \
        'the fresh environment must see the dependencies but not the editable amd_mmaction'

    src = tmp_path / 'src'
    _copy_source(src)
    configs = sorted(osp.relpath(p, src / 'configs')
                     for p in glob.glob(str(src / 'configs' / '**' / '*.py'), recursive=True))
    assert configs
    checkout_before = {p: osp.lexists(osp.join(ROOT, p)) for p in ('build', 'amd_mmaction.egg-info')}
    _run([python, '-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation',
          '--ignore-installed', str(src)], env, tmp_path)
    shutil.rmtree(src)  # from here on only the installed copy exists
    assert {p: osp.lexists(osp.join(ROOT, p)) for p in checkout_before} == checkout_before

    # every config ships as a real file, beside mmengine's model index
    mim = osp.join(purelib, 'amd_mmaction', '.mim')
    installed = sorted(osp.relpath(p, osp.join(mim, 'configs')) for p in
                       glob.glob(osp.join(mim, 'configs', '**', '*.py'), recursive=True))
    assert installed == configs
    assert not any(osp.islink(osp.join(mim, 'configs', p)) for p in installed)
    assert not osp.islink(osp.join(mim, 'configs'))
    assert osp.isfile(osp.join(mim, 'model-index.yml'))

    stage = tmp_path / 'stage'
    stage.mkdir()
    out = _run([python, '-c', textwrap.dedent(STAGE)], env, stage)
    result = json.loads(out.split('RESULT ', 1)[1])
    package = osp.realpath(result['package'])
    assert package == osp.join(osp.realpath(purelib), 'amd_mmaction', '__init__.py')
    assert not package.startswith(osp.realpath(ROOT) + os.sep)
    assert osp.realpath(result['config']) == osp.realpath(
        osp.join(mim, 'configs', 'tiny', 'videomae_student_tiny_motion.py'))
    assert result['model'] == 'AMDPretrainer' and result['teacher'] is None
    assert result['iters'] == 2  # 4 clips, batch 2, 1 epoch
    assert 'epoch_1.pth' in result['checkpoints']


def test_installed_configs_resolve_by_package_name(tmp_path):
    """A user's config inherits an installed one as ``amd_mmaction::<path>``
    (here through the editable install), the configs' own ``../_base_``
    bases included, and its modules build in mmaction's registries."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    from amd_mmaction.config_files import config_file
    mine = tmp_path / 'mine.py'
    mine.write_text("_base_ = ['amd_mmaction::tiny/amd_tiny_motion.py']\n"
                    "model = dict(teacher=dict(checkpoint=None))\n")
    cfg = Config.fromfile(str(mine))
    installed = Config.fromfile(config_file('tiny/amd_tiny_motion.py'))
    installed.model.teacher.checkpoint = None
    assert cfg.model._scope_ == 'mmaction'
    assert {k: v for k, v in cfg.model.items() if k != '_scope_'} == installed.model.to_dict()
    assert cfg.default_scope == installed.default_scope == 'mmaction'
    init_default_scope('mmaction')
    assert type(MODELS.build(cfg.model)).__name__ == 'AMDPretrainer'


def test_a_config_that_is_not_installed_is_named():
    from amd_mmaction.config_files import config_file
    with pytest.raises(FileNotFoundError, match=r"'tiny/nope\.py' is not installed"):
        config_file('tiny/nope.py')
