"""Hugging Face VideoMAE format, both ways: transformers folders read as
teachers / student inits, our students exported for transformers.

The equivalence tests run a real transformers (>= 5, not a dependency of
the project) in a subprocess with ``AMD_TEST_TRANSFORMERS_SITE`` appended
to its ``sys.path`` (as tests/test_compat.py); tensors travel as
safetensors files. The rest needs no transformers.
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import warnings

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import save_checkpoint
from safetensors.torch import load_file, save_file

from amd_mmaction.weights.formats import read_checkpoint
from amd_mmaction.weights.hf_export import export_hf
from conftest import CONFIGS, ROOT
from mmaction.registry import MODELS

init_default_scope('mmaction')
SITE = os.environ.get('AMD_TEST_TRANSFORMERS_SITE')
needs_transformers = pytest.mark.skipif(
    not SITE, reason='set AMD_TEST_TRANSFORMERS_SITE to a folder holding transformers>=5 '
                     '(pip install --target DIR "transformers>=5"; .ci/run does this)')
# The HF model of the teacher test; our teacher encoder for it.
HF_TINY = dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, image_size=32,
               patch_size=8, tubelet_size=2, num_frames=4, intermediate_size=256)
OUR_TINY = dict(type='VideoViT', embed_dims=64, depth=4, num_heads=4, img_size=32,
                patch_size=8, tubelet_size=2, num_frames=4, norm_eps=1e-12)  # HF's eps


def _perturb(module, seed):
    """Trained-looking weights: non-zero biases, non-unit norms (a mapping
    that swaps or drops a tensor then changes the output)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def _save(model, cfg, path):
    # The Runner's layout: state_dict + meta holding the config text.
    save_checkpoint({'state_dict': model.state_dict(), 'meta': {'cfg': cfg.pretty_text}}, path)


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    """A tiny AMD pre-training checkpoint and a fine-tuned Recognizer3D one,
    exported to HF folders, with the models that wrote them."""
    d = tmp_path_factory.mktemp('hf')
    pre_cfg = Config.fromfile(osp.join(CONFIGS, 'tiny', 'amd_tiny_motion.py'))
    pre_cfg.model.teacher.checkpoint = None
    ft_cfg = Config.fromfile(osp.join(CONFIGS, 'tiny', 'finetune_tiny_motion.py'))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # random teacher
        pre = MODELS.build(pre_cfg.model)
    ft = MODELS.build(ft_cfg.model)
    _perturb(pre.student, 0)
    _perturb(ft, 1)
    pre.eval(), ft.eval()
    _save(pre, pre_cfg, str(d / 'pre.pth'))
    _save(ft, ft_cfg, str(d / 'ft.pth'))
    labels = d / 'labels.txt'
    labels.write_text('\n'.join(f'class {c}' for c in 'abcdef') + '\n')
    export_hf(str(d / 'pre.pth'), str(d / 'hf_pre'))
    export_hf(str(d / 'ft.pth'), str(d / 'hf_ft'), labels=str(labels))
    return dict(dir=d, pre=pre, ft=ft, student_cfg=dict(pre_cfg.model.student))


def teacher(path, taps=(2, 4), **enc):
    return MODELS.build(dict(type='FrozenTeacher', taps=taps, checkpoint=str(path),
                             encoder=enc))


def block_outputs(vit, x):
    """Outputs of each block of an mmaction2 VisionTransformer (1-based)."""
    out = {}
    hooks = [b.register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, o))
             for n, b in enumerate(vit.blocks, start=1)]
    vit(x)
    for h in hooks:
        h.remove()
    return out


def test_exported_folder_reads_back_as_teacher_and_student_init(ckpts):
    d, student = ckpts['dir'], ckpts['pre'].student
    assert sorted(os.listdir(d / 'hf_pre')) == ['config.json', 'model.safetensors']  # no pickle
    cfg = json.loads((d / 'hf_pre' / 'config.json').read_text())
    assert cfg['model_type'] == 'videomae' and cfg['architectures'] == ['VideoMAEModel']
    # heads, clip and eps came from the config saved in the checkpoint
    assert (cfg['num_attention_heads'], cfg['num_frames'], cfg['image_size'],
            cfg['layer_norm_eps'], cfg['use_mean_pooling']) == (3, 8, 64, 1e-6, False)
    x = torch.randn(2, 3, 8, 64, 64)
    idx = torch.sort(torch.randperm(256)[:64])[0].expand(2, -1)
    _, ours = student(x, idx, taps=(2, 4), final=False)
    for path in (d / 'hf_pre', d / 'hf_pre' / 'model.safetensors'):
        feats = teacher(path, **ckpts['student_cfg'])(x, idx)
        for k in (2, 4):
            torch.testing.assert_close(feats[k], ours[k], rtol=0, atol=1e-6)
    # student init (AMDPretrained) from the folder
    vit = MODELS.build(dict(type='VisionTransformer', img_size=64, patch_size=8, num_frames=8,
                            embed_dims=96, depth=4, num_heads=3, qkv_bias=True,
                            init_cfg=dict(type='AMDPretrained', checkpoint=str(d / 'hf_pre'))))
    vit.init_weights()
    assert torch.equal(vit.blocks[3].attn.qkv.weight, student.blocks[3].attn.qkv.weight)
    assert torch.equal(vit.blocks[1].attn.v_bias, student.blocks[1].attn.v_bias)


def test_finetuned_export_has_head_and_backbone(ckpts):
    d, ft = ckpts['dir'], ckpts['ft']
    cfg = json.loads((d / 'hf_ft' / 'config.json').read_text())
    assert cfg['architectures'] == ['VideoMAEForVideoClassification'] and cfg['use_mean_pooling']
    assert cfg['id2label']['5'] == 'class f' and cfg['label2id']['class a'] == 0
    raw = load_file(str(d / 'hf_ft' / 'model.safetensors'))
    assert torch.equal(raw['classifier.weight'], ft.cls_head.fc_cls.weight)
    assert torch.equal(raw['fc_norm.bias'], ft.backbone.fc_norm.bias)
    assert torch.equal(raw['videomae.encoder.layer.2.attention.attention.key.weight'],
                       ft.backbone.blocks[2].attn.qkv.weight[96:192])
    state = read_checkpoint(str(d / 'hf_ft'))
    assert torch.equal(state['head.bias'], ft.cls_head.fc_cls.bias)
    x = torch.randn(1, 3, 8, 64, 64)
    want = block_outputs(ft.backbone, x)
    feats = teacher(d / 'hf_ft', taps=(1, 3), **ckpts['student_cfg'])(x, None)
    for k in (1, 3):
        torch.testing.assert_close(feats[k], want[k], rtol=0, atol=1e-5)


def _rewrite(src_dir, dst_dir, drop=(), add=None, config=None):
    os.makedirs(dst_dir)
    state = load_file(osp.join(src_dir, 'model.safetensors'))
    state = {k: v for k, v in state.items() if k not in drop}
    state.update(add or {})
    save_file(state, osp.join(dst_dir, 'model.safetensors'), metadata={'format': 'pt'})
    cfg = json.load(open(osp.join(src_dir, 'config.json')))
    cfg.update(config or {})
    json.dump(cfg, open(osp.join(dst_dir, 'config.json'), 'w'))
    return dst_dir


def test_errors_name_fields_keys_and_shapes(ckpts, tmp_path):
    d, enc = ckpts['dir'], ckpts['student_cfg']
    with pytest.raises(ValueError, match=r'hidden_size=96 vs encoder embed_dims=64'):
        teacher(d / 'hf_pre', **dict(enc, embed_dims=64, num_heads=4))
    with pytest.raises(ValueError, match=r'num_attention_heads=3 vs encoder num_heads=4; '
                                         r'num_frames=8 vs encoder num_frames=16'):
        teacher(d / 'hf_pre', **dict(enc, num_heads=4, num_frames=16))
    with pytest.raises(ValueError, match=r'layer_norm_eps=1e-06 vs encoder norm_eps=1e-12'):
        teacher(d / 'hf_pre', **dict(enc, norm_eps=1e-12))
    key = 'encoder.layer.1.attention.attention.key.weight'
    bad = _rewrite(d / 'hf_pre', tmp_path / 'nokey', drop=[key])
    with pytest.raises(ValueError, match=r"missing key\(s\) \['" + key):
        teacher(bad, **enc)
    bias = 'encoder.layer.0.attention.attention.key.bias'
    bad = _rewrite(d / 'hf_pre', tmp_path / 'kbias', add={bias: torch.zeros(96)})
    with pytest.raises(ValueError, match='not VideoMAE weights.*' + bias):
        teacher(bad, **enc)
    # transformers 5 names of the q/v biases read the same as the hub's q_bias/v_bias
    raw = load_file(str(d / 'hf_pre' / 'model.safetensors'))
    v5 = {k.replace('attention.q_bias', 'attention.query.bias')
           .replace('attention.v_bias', 'attention.value.bias'): v for k, v in raw.items()}
    assert len(v5) == len(raw) and 'encoder.layer.3.attention.attention.value.bias' in v5
    ok = _rewrite(d / 'hf_pre', tmp_path / 'v5', drop=raw, add=v5)
    assert all(torch.equal(v, read_checkpoint(str(d / 'hf_pre'))[k])
               for k, v in read_checkpoint(str(ok)).items())
    bad = _rewrite(d / 'hf_pre', tmp_path / 'wide', config=dict(hidden_size=128))
    with pytest.raises(ValueError, match=r'config.json does not describe its weights: '
                                         r'hidden_size=128 but the tensors have 96'):
        read_checkpoint(str(bad))
    bad = _rewrite(d / 'hf_pre', tmp_path / 'vivit', config=dict(model_type='vivit'))
    with pytest.raises(ValueError, match="model_type is 'vivit', expected 'videomae'"):
        read_checkpoint(str(bad))
    # A bare file with no config.json: shapes still checked, the rest warned about.
    os.makedirs(tmp_path / 'bare')
    bare = str(tmp_path / 'bare' / 'student.safetensors')
    shutil.copy(d / 'hf_pre' / 'model.safetensors', bare)
    with pytest.warns(UserWarning, match='no config.json.*num_attention_heads'):
        teacher(bare, **enc)
    with pytest.raises(ValueError, match=r'blocks.0.attn.qkv.weight: checkpoint \(288, 96\) '
                                         r'vs model \(192, 64\)'):
        teacher(bare, **dict(enc, embed_dims=64, num_heads=4))


def test_export_errors(ckpts, tmp_path):
    d = ckpts['dir']
    # an official VideoMAE file has no saved config: heads must be given
    student = {f'encoder.{k}': v for k, v in ckpts['pre'].student.state_dict().items()}
    torch.save({'model': student}, tmp_path / 'official.pth')
    with pytest.raises(ValueError, match='num_heads is not stored.*pass --num-heads'):
        export_hf(str(tmp_path / 'official.pth'), str(tmp_path / 'out'))
    out = export_hf(str(tmp_path / 'official.pth'), str(tmp_path / 'out'), num_heads=3,
                    num_frames=8, img_size=64)
    assert out['config']['num_attention_heads'] == 3
    with pytest.raises(ValueError, match='6 classes but 2 labels'):
        export_hf(str(d / 'ft.pth'), str(tmp_path / 'x'), labels=['a', 'b'])
    with pytest.raises(ValueError, match=r'backbone.pos_embed \(1, 256, 96\) is not the fixed '
                                         r'sin-cos table of 16 frames'):
        export_hf(str(d / 'ft.pth'), str(tmp_path / 'x'), num_frames=16)


def test_export_cli(ckpts, tmp_path):
    d = ckpts['dir']
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'export_hf.py'), str(d / 'ft.pth'),
           str(tmp_path / 'cli'), '--labels', str(d / 'labels.txt')]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'VideoMAEForVideoClassification: 96 wide, 4 layers, 3 heads, 8x64' in out.stdout
    assert json.loads((tmp_path / 'cli' / 'config.json').read_text())['id2label']['0'] == 'class a'
    cmd[2] = str(tmp_path / 'nothere.pth')
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 1 and 'export failed' in out.stderr and 'nothere.pth' in out.stderr


HF_SCRIPT = r'''
import json, sys
sys.path.append(sys.argv[1])
work = sys.argv[2]
import torch
from safetensors.torch import load_file, save_file
from transformers import VideoMAEConfig, VideoMAEModel, VideoMAEForVideoClassification
inputs = load_file(f'{work}/inputs.safetensors')
out, info = {}, {}
# 1. a tiny random transformers VideoMAE, saved as the hub does
torch.manual_seed(0)
model = VideoMAEModel(VideoMAEConfig(**json.loads(sys.argv[3]))).eval()
with torch.no_grad():
    for p in model.parameters():
        p.add_(0.05 * torch.randn_like(p))
model.save_pretrained(f'{work}/hf_tiny')
with torch.no_grad():
    r = model(inputs['tiny'].permute(0, 2, 1, 3, 4), output_hidden_states=True)
    info['tiny_hidden_states'] = len(r.hidden_states)
    out.update({f'tiny.{i}': h for i, h in enumerate(r.hidden_states)})
    out['tiny.last'] = r.last_hidden_state
    r = model(inputs['tiny'].permute(0, 2, 1, 3, 4), bool_masked_pos=inputs['tiny_mask'].bool(),
              output_hidden_states=True)
    out.update({f'tiny_masked.{i}': h for i, h in enumerate(r.hidden_states)})
info['tiny_keys'] = sorted(load_file(f'{work}/hf_tiny/model.safetensors'))
# 2. our exports, loaded by transformers
def loaded(cls, name):
    m, i = cls.from_pretrained(f'{work}/{name}', output_loading_info=True)
    info[f'{cls.__name__}:{name}'] = {k: sorted(map(str, v)) for k, v in i.items()}
    return m.eval()
with torch.no_grad():
    r = loaded(VideoMAEModel, 'hf_pre')(inputs['pre'].permute(0, 2, 1, 3, 4),
                                        output_hidden_states=True)
    out.update({f'pre.{i}': h for i, h in enumerate(r.hidden_states)})
    out['pre.last'] = r.last_hidden_state
    cls = loaded(VideoMAEForVideoClassification, 'hf_ft')
    out['ft.logits'] = cls(inputs['ft'].permute(0, 2, 1, 3, 4)).logits
    info['fc_norm_eps'] = cls.fc_norm.eps
    info['id2label'] = {str(k): v for k, v in cls.config.id2label.items()}
    loaded(VideoMAEModel, 'hf_ft')
save_file({k: v.clone().contiguous() for k, v in out.items()}, f'{work}/outputs.safetensors')
print(json.dumps(info))
'''


@pytest.fixture(scope='module')
def hf_run(ckpts):
    """One transformers subprocess for all equivalence checks."""
    d = ckpts['dir']
    g = torch.Generator().manual_seed(2)
    mask = torch.zeros(2, 32)  # 2 x 4 x 4 tokens
    for row in mask:
        row[torch.randperm(32, generator=g)[:24]] = 1  # HF: True = masked
    inputs = dict(tiny=torch.randn(2, 3, 4, 32, 32, generator=g), tiny_mask=mask,
                  pre=torch.randn(2, 3, 8, 64, 64, generator=g),
                  ft=torch.randn(3, 3, 8, 64, 64, generator=g))
    save_file(inputs, str(d / 'inputs.safetensors'))
    res = subprocess.run([sys.executable, '-c', HF_SCRIPT, SITE, str(d), json.dumps(HF_TINY)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    info = json.loads(res.stdout.strip().splitlines()[-1])
    return dict(inputs=inputs, info=info, out=load_file(str(d / 'outputs.safetensors')))


@needs_transformers
def test_transformers_videomae_is_our_teacher(ckpts, hf_run):
    d, out, x = ckpts['dir'], hf_run['out'], hf_run['inputs']['tiny']
    assert hf_run['info']['tiny_hidden_states'] == 5  # embeddings + 4 layers
    # HF with mean pooling has no final norm: last_hidden_state is block 4's raw output
    assert torch.equal(out['tiny.last'], out['tiny.4'])
    t = teacher(d / 'hf_tiny', taps=(1, 2, 3, 4), **OUR_TINY)
    feats = t(x, None)
    for k in (1, 2, 3, 4):
        torch.testing.assert_close(feats[k], out[f'tiny.{k}'], rtol=0, atol=1e-5)
    # visible tokens only, as the teacher runs in AMD (HF: ~bool_masked_pos)
    idx = torch.stack([torch.nonzero(row == 0).flatten() for row in hf_run['inputs']['tiny_mask']])
    feats = t(x, idx)
    for k in (2, 4):
        torch.testing.assert_close(feats[k], out[f'tiny_masked.{k}'], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match=r'layer_norm_eps=1e-12 vs encoder norm_eps=1e-06'):
        teacher(d / 'hf_tiny', **dict(OUR_TINY, norm_eps=1e-6))


@needs_transformers
def test_our_exports_load_in_transformers_with_same_outputs(ckpts, hf_run):
    info, out, inputs = hf_run['info'], hf_run['out'], hf_run['inputs']
    for name in ('VideoMAEModel:hf_pre', 'VideoMAEForVideoClassification:hf_ft',
                 'VideoMAEModel:hf_ft'):
        assert info[name]['missing_keys'] == [], (name, info[name])
        assert info[name]['mismatched_keys'] == [], (name, info[name])
    assert info['VideoMAEModel:hf_pre']['unexpected_keys'] == []
    assert info['id2label']['2'] == 'class c'
    student = ckpts['pre'].student
    final, feats = student(inputs['pre'], taps=(1, 2, 3, 4))
    torch.testing.assert_close(out['pre.last'], final, rtol=0, atol=1e-5)
    for k in (1, 2, 3, 4):
        torch.testing.assert_close(out[f'pre.{k}'], feats[k], rtol=0, atol=1e-5)
    ft = ckpts['ft']
    with torch.no_grad():
        ours = ft.cls_head(ft.backbone(inputs['ft']))
        # transformers' fc_norm has a fixed eps of 1e-5 (mmaction2 / VideoMAE: 1e-6)
        assert info['fc_norm_eps'] == 1e-5 and ft.backbone.fc_norm.eps == 1e-6
        ft.backbone.fc_norm.eps = 1e-5
        same_eps = ft.cls_head(ft.backbone(inputs['ft']))
        ft.backbone.fc_norm.eps = 1e-6
    torch.testing.assert_close(out['ft.logits'], same_eps, rtol=0, atol=1e-5)
    # the eps difference alone (measured 1.2e-5 on logits up to 2.0)
    assert float((out['ft.logits'] - ours).abs().max()) < 1e-4
