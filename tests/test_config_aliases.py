"""Mask ratios and views by name (``--cfg-options mask.teacher_ratio=0.45
views.num_views=2``), not by pipeline position: README's quick-start line
run on every shipped pre-training config (config level: loaded, applied,
the train pipeline built and its transforms checked), and one real
tools/train.py run on the tiny config."""
import argparse
import glob
import importlib.util
import os.path as osp
import shlex

import pytest
from mmcv.transforms import Compose
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from amd_mmaction.data.transforms.repeat import RepeatedAugment
from amd_mmaction.engine.cli import load_config
from amd_mmaction.engine.config_aliases import apply_aliases, split_aliases
from amd_mmaction.engine.preflight import RunRefused
from amd_mmaction.masks.transforms import AsymmetricTubeMask
from conftest import CONFIGS, ROOT, tiny_config

init_default_scope('mmaction')

# every shipped video pre-training config (with views), and the image ones (without)
VIDEO = sorted(glob.glob(osp.join(CONFIGS, 'pretrain', '*.py'))
               + glob.glob(osp.join(CONFIGS, 'tiny', 'amd_tiny_motion*.py'))
               + glob.glob(osp.join(CONFIGS, 'tiny', 'videomae_*.py')))
IMAGE = sorted(glob.glob(osp.join(CONFIGS, 'image', 'amd_*.py'))
               + [osp.join(CONFIGS, 'tiny', 'amd_tiny_image.py')])


def readme_options() -> dict:
    """The ``--cfg-options`` of README's quick-start line that sets the mask
    ratio, parsed as tools/train.py parses them."""
    with open(osp.join(ROOT, 'README.md')) as f:
        lines = [line for line in f if '--cfg-options mask.' in line]
    assert len(lines) == 1, lines
    words = shlex.split(lines[0].split('#')[0])
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    options = parser.parse_args(words[words.index('--cfg-options'):]).cfg_options
    assert options == {'mask.teacher_ratio': 0.45, 'views.num_views': 2}
    return options


def transforms_of(transform):
    """``transform`` and every transform nested in it (RepeatedAugment's views)."""
    yield transform
    for inner in getattr(getattr(transform, 'pipeline', None), 'transforms', ()):
        yield from transforms_of(inner)


def built_pipeline(cfg):
    pipeline = Compose(cfg.train_dataloader.dataset.pipeline)
    return [t for step in pipeline.transforms for t in transforms_of(step)]


def test_readme_example_is_what_the_tests_run():
    readme_options()
    text = open(osp.join(ROOT, 'docs', 'pretrain.md')).read()
    assert '--cfg-options mask.teacher_ratio=0.45 views.num_views=2' in text


@pytest.mark.parametrize('config', VIDEO, ids=lambda p: osp.relpath(p, CONFIGS))
def test_readme_option_on_every_video_pretraining_config(config, tmp_path):
    cfg = load_config(config, readme_options(), 'none', str(tmp_path))
    built = built_pipeline(cfg)
    masks = [t for t in built if isinstance(t, AsymmetricTubeMask)]
    views = [t for t in built if isinstance(t, RepeatedAugment)]  # DALIViews too
    assert len(masks) == 1 and len(views) == 1, built
    assert masks[0].teacher_ratio == 0.45 and masks[0].student_ratio == 0.9
    grid = masks[0].grid
    assert masks[0].n_teacher == int(0.45 * grid[1] * grid[2])  # the mask hides that many
    assert views[0].num_views == 2
    # the config's own copies agree (the saved config says what ran)
    assert cfg.mask.teacher_ratio == 0.45


@pytest.mark.parametrize('config', IMAGE, ids=lambda p: osp.relpath(p, CONFIGS))
def test_image_configs_take_the_mask_switch_and_refuse_views(config, tmp_path):
    cfg = load_config(config, {'mask.student_ratio': 0.8, 'mask.teacher_ratio': 0.45}, 'none',
                      str(tmp_path))
    masks = [t for t in built_pipeline(cfg) if isinstance(t, AsymmetricTubeMask)]
    assert [(m.student_ratio, m.teacher_ratio) for m in masks] == [(0.8, 0.45)]
    with pytest.raises(RunRefused, match=rf'views.num_views: {config} has no RepeatedAugment / '
                                         'DALIViews in its dataloader pipelines'):
        load_config(config, readme_options(), 'none', str(tmp_path))


def test_bad_switches_are_one_clear_refusal(tmp_path):
    config = osp.join(CONFIGS, 'tiny', 'amd_tiny_motion.py')
    cases = [({'mask.teacher_ration': 0.5}, r'mask.teacher_ration: unknown switch; the named '
              r'switches are mask.student_ratio, mask.teacher_ratio, mask.mode, mask.seed, '
              r'views.num_views'),
             ({'mask.teacher_ratio': 0.95}, rf'mask.teacher_ratio=0.95 \({config}\): '
              r'teacher_ratio=0.95 must be < student_ratio=0.9'),
             ({'views.num_views': 0}, 'num_views must be an integer >= 1, got 0'),
             ({'mask.mode': 'blocks'}, "mask mode 'blocks' is not one of")]
    for options, message in cases:
        with pytest.raises(RunRefused, match=message):
            load_config(config, options, 'none', str(tmp_path))
    # both ratios move together: checked once both are set
    cfg = load_config(config, {'mask.student_ratio': 0.6, 'mask.teacher_ratio': 0.5}, 'none',
                      str(tmp_path))
    assert cfg.train_dataloader.dataset.pipeline[3].transforms[3].student_ratio == 0.6


def test_aliases_apply_after_the_dotted_keys():
    """A pipeline replaced by a dotted key still gets the switch; other
    keys pass through untouched."""
    aliases, rest = split_aliases({'mask.mode': 'tube', 'model.recfac': 2.0})
    assert aliases == {'mask.mode': 'tube'} and rest == {'model.recfac': 2.0}
    cfg = {'train_dataloader': {'dataset': {'pipeline': [
        {'type': 'Wrapper', 'transforms': [{'type': 'AsymmetricTubeMask', 'grid': (2, 4, 4)}]}]}}}
    assert apply_aliases(cfg, aliases) == {'mask.mode': 1}
    assert cfg['train_dataloader']['dataset']['pipeline'][0]['transforms'][0]['mode'] == 'tube'


def test_readme_option_trains_the_tiny_config(motion_data, tmp_path):
    """One real tools/train.py run: the data the model trained on had the
    switched teacher mask and views."""
    config = str(tmp_path / 'tiny.py')
    four = str(tmp_path / 'train4.txt')  # one batch
    with open(motion_data['train']) as f, open(four, 'w') as g:
        g.writelines(f.readlines()[:4])
    tiny_config('amd_tiny_motion.py', motion_data, tmp_path / 'unused',
                **{'train_dataloader.dataset.ann_file': four, 'train_cfg.max_epochs': 1,
                   'model.teacher.checkpoint': None}).dump(config)
    spec = importlib.util.spec_from_file_location('train_cli_aliases',
                                                  osp.join(ROOT, 'tools', 'train.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    work = str(tmp_path / 'work')
    argv = [config, '--work-dir', work, '--cfg-options']
    argv += [f'{k}={v}' for k, v in readme_options().items()]
    runner = cli.main(argv)
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    sample = runner.train_dataloader.dataset[0]['data_samples']
    assert sample.mask_stu.shape == (2, 256) and sample.mask_tea.shape == (2, 256)
    per_frame = sample.mask_tea.reshape(2, 4, 64).sum(-1)
    assert (per_frame == int(0.45 * 64)).all()  # 28 of 64 cells hidden from the teacher
    saved = Config.fromfile(osp.join(work, 'tiny.py'))  # the config copy says what ran
    assert saved.train_dataloader.dataset.pipeline[3].transforms[3].teacher_ratio == 0.45
    assert saved.train_dataloader.dataset.pipeline[3].num_views == 2
