"""Loading a checkpoint never runs code from the file (docs/reliability.md,
"Loading checkpoints safely"): a real .pth whose pickle would create a file
is refused through every door (teacher, load_from, --resume, the export
tools, visualisation) with a message naming the file, the global and the
opt-in; trusted by name it loads (and the payload runs: the tests can fail).
Our own Runner checkpoints, official VideoMAE files (argparse.Namespace
'args') and mmaction2 checkpoints load with the safe default."""
import argparse
import os
import os.path as osp
import pickle
import shlex
import subprocess
import sys

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import load_checkpoint

from amd_mmaction.weights.io import (TRUST_ENV, UntrustedCheckpointError,
                                        load_checkpoint_file)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SMALL = {'model.student.depth': 1, 'model.decoder.depth': 1, 'train_cfg.max_epochs': 1,
         'default_hooks.checkpoint.interval': 1}
TINY_VIT = dict(type='VideoViT', img_size=32, patch_size=8, num_frames=4, tubelet_size=2,
                embed_dims=64, depth=4, num_heads=4)


class Payload:
    """Pickles as ``os.system('touch MARKER')``: run by a full unpickle."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, ('touch ' + shlex.quote(self.marker),)


@pytest.fixture(autouse=True)
def no_trust(monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)


@pytest.fixture(scope='module')
def runner_ckpt(motion_data, tmp_path_factory):
    """A real 1-epoch checkpoint saved by mmengine's Runner (message hub,
    HistoryBuffer, numpy scalars, optimizer, schedulers)."""
    from conftest import tiny_config
    work = tmp_path_factory.mktemp('safety_run')
    Runner.from_cfg(tiny_config('videomae_student_tiny_motion.py', motion_data, work,
                                **SMALL)).train()
    return osp.join(str(work), 'epoch_1.pth')


def with_payload(src, dst, marker):
    """``src`` (trusted, ours) plus a key whose unpickling touches ``marker``."""
    ckpt = load_checkpoint_file(src, trust=True)
    ckpt['payload'] = Payload(marker)
    torch.save(ckpt, dst)
    return str(dst)


def assert_refused(text, path):
    assert repr(str(path)) in text or str(path) in text, text
    assert 'posix.system' in text, text  # the global torch refused
    assert 'could run code' in text and f'{TRUST_ENV}=' in text, text
    assert '--trust-checkpoint' in text, text


def official_videomae(vit, **extra):
    """The VideoMAE / AMD release layout: model (encoder.*, decoder.*), optimizer,
    epoch, scaler and the training args as an argparse.Namespace."""
    model = {f'encoder.{k}': v.clone() for k, v in vit.state_dict().items()}
    model['decoder.norm.weight'] = torch.ones(8)
    args = argparse.Namespace(model='pretrain_videomae_base_patch16_224', mask_ratio=0.9,
                              window_size=(8, 14, 14), lr=1.5e-4, output_dir='/out')
    return dict(model=model, optimizer={'state': {}, 'param_groups': []}, epoch=799,
                scaler={'scale': 65536.0, '_growth_tracker': 10}, args=args, **extra)


def build_teacher(path):
    return MODELS.build(dict(type='FrozenTeacher', taps=(2, 4), checkpoint=str(path),
                             encoder=TINY_VIT))


def test_runner_checkpoint_loads_safely_and_needs_the_allow_list(runner_ckpt):
    # torch's bare weights_only refuses mmengine's message hub: the allow-list is needed
    assert torch.serialization.get_unsafe_globals_in_checkpoint(runner_ckpt)
    ckpt = load_checkpoint_file(runner_ckpt)
    assert {'state_dict', 'optimizer', 'message_hub', 'meta'} <= set(ckpt)
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert type(buf).__name__ == 'HistoryBuffer' and buf.mean() > 0  # statistics methods work


def test_our_checkpoint_resumes_with_the_safe_default(runner_ckpt, tiny_cfg):
    runner = Runner.from_cfg(tiny_cfg('videomae_student_tiny_motion.py', load_from=runner_ckpt,
                                      resume=True, **dict(SMALL, **{'train_cfg.max_epochs': 2})))
    runner.load_or_resume()
    assert runner.epoch == 1 and runner.iter == 3
    assert runner.message_hub.get_scalar('train/loss').mean() > 0


def test_official_videomae_with_namespace_args_loads_safely(tmp_path):
    torch.manual_seed(0)
    src = MODELS.build(dict(TINY_VIT))
    path = tmp_path / 'videomae_official.pth'
    torch.save(official_videomae(src), path)
    assert 'argparse.Namespace' in torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    assert load_checkpoint_file(path)['args'].window_size == (8, 14, 14)
    teacher = build_teacher(path)
    assert torch.equal(teacher.encoder.blocks[0].attn.qkv.weight, src.blocks[0].attn.qkv.weight)


def test_mmaction2_checkpoint_loads_safely(motion_data, tmp_path):
    """A Recognizer3D + VisionTransformer checkpoint saved by mmaction2's
    (mmengine's) Runner: the fine-tuning stage's own output."""
    from conftest import tiny_config
    cfg = tiny_config('finetune_tiny_motion.py', motion_data, tmp_path / 'ft', **{
        'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 10,
        'val_dataloader.dataset.ann_file': motion_data['val'],
        'val_dataloader.dataset.data_prefix.video': motion_data['root'],
        'default_hooks.checkpoint.interval': 1})
    Runner.from_cfg(cfg).train()
    path = str(tmp_path / 'ft' / 'epoch_1.pth')
    ckpt = load_checkpoint_file(path)
    assert any(k.startswith('backbone.') for k in ckpt['state_dict'])
    from amd_mmaction.weights.mmaction import load_encoder
    assert 'blocks.0.attn.qkv.weight' in load_encoder(path)


def test_teacher_build_refuses_a_payload_unless_trusted(tmp_path, monkeypatch):
    src = MODELS.build(dict(TINY_VIT))
    marker = tmp_path / 'pwned'
    path = tmp_path / 'teacher_evil.pth'
    torch.save(official_videomae(src, payload=Payload(marker)), path)
    with pytest.raises(UntrustedCheckpointError) as err:
        build_teacher(path)
    assert_refused(str(err.value), path)
    assert not marker.exists()
    # trusting another file does not trust this one
    monkeypatch.setenv(TRUST_ENV, str(tmp_path / 'other.pth'))
    with pytest.raises(UntrustedCheckpointError):
        build_teacher(path)
    assert not marker.exists()
    monkeypatch.setenv(TRUST_ENV, os.pathsep.join([str(tmp_path / 'other.pth'), str(path)]))
    build_teacher(path)
    assert marker.exists()  # the full unpickle ran the payload: the refusal was real


def test_load_from_refuses_a_payload(runner_ckpt, tiny_cfg, tmp_path, monkeypatch):
    marker = tmp_path / 'pwned'
    evil = with_payload(runner_ckpt, tmp_path / 'evil.pth', marker)
    runner = Runner.from_cfg(tiny_cfg('videomae_student_tiny_motion.py', load_from=evil,
                                      resume=False, **SMALL))
    with pytest.raises(UntrustedCheckpointError) as err:
        runner.load_or_resume()
    assert_refused(str(err.value), evil)
    model = MODELS.build(runner.cfg.model)
    with pytest.raises(UntrustedCheckpointError):
        load_checkpoint(model, evil, map_location='cpu')
    assert not marker.exists()
    monkeypatch.setenv(TRUST_ENV, evil)
    load_checkpoint(model, evil, map_location='cpu')
    assert marker.exists()


@pytest.mark.parametrize('door', ['load_encoder', 'load_pretrainer', 'AMDPretrained'])
def test_python_doors_refuse_a_payload(door, runner_ckpt, tiny_cfg, tmp_path):
    marker = tmp_path / 'pwned'
    evil = with_payload(runner_ckpt, tmp_path / 'evil.pth', marker)
    with pytest.raises(UntrustedCheckpointError) as err:
        if door == 'load_encoder':
            from amd_mmaction.weights.mmaction import load_encoder
            load_encoder(evil)
        elif door == 'load_pretrainer':
            from amd_mmaction.visualization import load_pretrainer
            load_pretrainer(tiny_cfg('videomae_student_tiny_motion.py', **SMALL), evil)
        else:
            from amd_mmaction.weights.mmaction import AMDPretrainedInit
            AMDPretrainedInit(checkpoint=evil)(MODELS.build(dict(
                type='VisionTransformer', img_size=64, patch_size=8, num_frames=8,
                embed_dims=64, depth=1, num_heads=2)))
    assert_refused(str(err.value), evil)
    assert not marker.exists()


class ReachInit:
    """Pickles as ``getattr(HistoryBuffer, '__init__')``: the allowed getattr
    must not reach past HistoryBuffer's statistics methods."""

    def __reduce__(self):
        from mmengine.logging.history_buffer import HistoryBuffer
        return getattr, (HistoryBuffer, '__init__')


def test_getattr_only_reaches_statistics_methods(tmp_path):
    path = tmp_path / 'reach.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'x': ReachInit()}, path)
    with pytest.raises(UntrustedCheckpointError, match=r"getattr\(.*HistoryBuffer.*'__init__'\)"):
        load_checkpoint_file(path)


@pytest.mark.parametrize('damage', ['cut_zip', 'cut_pickle', 'bytes'])
def test_a_damaged_file_is_unreadable_not_untrusted(damage, runner_ckpt, tmp_path):
    """Only a refused global is reported as untrusted (with the opt-in);
    telling users to trust a broken file would be wrong."""
    data = open(runner_ckpt, 'rb').read()
    bad = {'cut_zip': data[:len(data) // 3],
           'cut_pickle': pickle.dumps({'state_dict': {'w': 1}}, protocol=2)[:-3],
           'bytes': bytes(range(256)) * 8}[damage]
    path = tmp_path / 'bad.pth'
    path.write_bytes(bad)
    with pytest.raises(Exception) as err:
        load_checkpoint_file(path)
    assert not isinstance(err.value, UntrustedCheckpointError), err.value


def run_tool(args, cwd):
    env = {k: v for k, v in os.environ.items() if k != TRUST_ENV}
    env['OMP_NUM_THREADS'] = '1'
    return subprocess.run([sys.executable] + args, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)


def test_export_tool_refuses_a_payload_unless_trusted(runner_ckpt, tmp_path):
    marker = tmp_path / 'pwned'
    evil = with_payload(runner_ckpt, tmp_path / 'evil.pth', marker)
    cmd = [osp.join(ROOT, 'tools', 'export_checkpoint.py'), evil, str(tmp_path / 'out.pth'),
           '--num-frames', '8', '--img-size', '64']
    refused = run_tool(cmd, tmp_path)
    assert refused.returncode != 0 and not (tmp_path / 'out.pth').exists()
    assert_refused(refused.stderr, evil)
    assert not marker.exists()
    trusted = run_tool(cmd + ['--trust-checkpoint', evil], tmp_path)
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert marker.exists() and (tmp_path / 'out.pth').exists()


def test_train_resume_refuses_a_payload_unless_trusted(runner_ckpt, motion_data, tmp_path):
    marker = tmp_path / 'pwned'
    evil = with_payload(runner_ckpt, tmp_path / 'evil.pth', marker)
    opts = {'train_dataloader.dataset.ann_file': motion_data['train'],
            'train_dataloader.dataset.data_prefix.video': motion_data['root'],
            'train_dataloader.batch_size': 4, **SMALL}
    cmd = [osp.join(ROOT, 'tools', 'train.py'),
           osp.join(ROOT, 'configs', 'tiny', 'videomae_student_tiny_motion.py'),
           '--work-dir', str(tmp_path / 'work'), '--resume', evil,
           '--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]
    refused = run_tool(cmd, tmp_path)
    assert refused.returncode != 0
    assert_refused(refused.stderr, evil)
    assert not marker.exists()
    trusted = run_tool(cmd + ['--trust-checkpoint', evil], tmp_path)
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert marker.exists()


def test_a_saved_config_is_read_never_run(tmp_path):
    """mmengine keeps the training config's text in ``meta.cfg``. The head
    count and the HF export read its ``model`` as literals: code in the text
    (which a full Config load would execute) never runs."""
    from amd_mmaction.weights.formats import open_checkpoint
    from amd_mmaction.weights.head_count import recorded_heads
    from amd_mmaction.weights.hf_export import export_hf
    marker = tmp_path / 'ran'
    text = (f'import os\nos.system("touch {marker}")\n'
            f'model = dict(type="AMDPretrainer", student=dict(type="VideoViT", num_heads=4, '
            f'img_size=32, num_frames=4, norm_eps=1e-6, extra=open("{marker}", "w")))\n')
    src = MODELS.build(dict(TINY_VIT))
    path = tmp_path / 'amd.pth'
    torch.save({'state_dict': {f'student.{k}': v for k, v in src.state_dict().items()},
                'meta': {'cfg': text}}, path)
    ckpt = open_checkpoint(str(path))
    assert ckpt.model_cfg()['student'] == dict(type='VideoViT', num_heads=4, img_size=32,
                                               num_frames=4, norm_eps=1e-6)
    assert recorded_heads(ckpt) == (4, 'meta.cfg model.student.num_heads')
    out = export_hf(str(path), str(tmp_path / 'hf'))
    assert (out['config']['num_attention_heads'], out['config']['image_size'],
            out['config']['num_frames']) == (4, 32, 4)
    assert not marker.exists()
