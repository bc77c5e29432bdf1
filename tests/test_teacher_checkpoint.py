"""Teacher weights from the formats met in the wild (method.md §7)."""
import re

import pytest
import torch
from mmaction.registry import MODELS

TINY = dict(type='VideoViT', img_size=32, patch_size=8, num_frames=4, tubelet_size=2,
            embed_dims=64, depth=4, num_heads=4)


def official_videomae_state(vit):
    """A VideoMAE pre-training checkpoint: encoder.* + decoder.*."""
    sd = {f'encoder.{k}': v.clone() for k, v in vit.state_dict().items()}
    sd['decoder.blocks.0.norm1.weight'] = torch.ones(8)
    sd['encoder_to_decoder.weight'] = torch.zeros(8, 64)
    sd['mask_token'] = torch.zeros(1, 1, 8)
    return sd


def mmaction_state(vit):
    """mmaction2 Recognizer3D + VisionTransformer naming."""
    out = {}
    for k, v in vit.state_dict().items():
        k = k.replace('patch_embed.proj.', 'patch_embed.projection.')
        k = re.sub(r'\.mlp\.fc1\.', '.mlp.layers.0.0.', k)
        k = re.sub(r'\.mlp\.fc2\.', '.mlp.layers.1.', k)
        out['backbone.' + k] = v.clone()
    out['backbone.pos_embed'] = torch.zeros(1, 32, 64)
    out['cls_head.fc_cls.weight'] = torch.zeros(6, 64)
    return out


def build_teacher(path, **enc):
    return MODELS.build(dict(type='FrozenTeacher', taps=(2, 4), checkpoint=str(path),
                             encoder=dict(TINY, **enc)))


@pytest.mark.parametrize('fmt', ['model', 'module', 'mmaction', 'mmengine_student'])
def test_teacher_loads_renamed_formats(tmp_path, fmt):
    torch.manual_seed(0)
    src = MODELS.build(dict(TINY))
    if fmt == 'model':
        ckpt = {'model': official_videomae_state(src)}
    elif fmt == 'module':
        ckpt = {'module': {'module.' + k: v for k, v in official_videomae_state(src).items()}}
    elif fmt == 'mmaction':
        ckpt = {'state_dict': mmaction_state(src), 'meta': {'epoch': 3}}
    else:
        ckpt = {'state_dict': {'student.' + k: v for k, v in src.state_dict().items()},
                'message_hub': {'x': 1}}
    path = tmp_path / 'teacher.pth'
    torch.save(ckpt, path)
    t = build_teacher(path)
    for k, v in t.encoder.state_dict().items():
        if k in src.state_dict():
            assert torch.equal(v, src.state_dict()[k]), k
    x = torch.randn(1, 3, 4, 32, 32)
    idx = torch.arange(32)[None]
    _, want = src(x, idx, taps=(2, 4))
    got = t(x, idx)
    torch.testing.assert_close(got[4], want[4])


def test_teacher_errors_name_keys_and_shapes(tmp_path):
    src = MODELS.build(dict(TINY))
    path = tmp_path / 't.pth'
    torch.save({'model': official_videomae_state(src)}, path)
    with pytest.raises(ValueError, match=r'blocks\.0\.attn\.qkv\.weight: checkpoint \(192, 64\) vs model \(288, 96\)'):
        build_teacher(path, embed_dims=96, num_heads=4)
    with pytest.raises(ValueError, match='checkpoint has 4 blocks but the config builds 6'):
        build_teacher(path, depth=6)
    with pytest.raises(ValueError, match=r'teacher feature taps \[8\] are outside layers 1..4'):
        MODELS.build(dict(type='FrozenTeacher', taps=(2, 8), checkpoint=str(path), encoder=TINY))
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        build_teacher(tmp_path / 'nope.pth')
    bad = tmp_path / 'bad.pth'
    torch.save({'model': {'head.weight': torch.zeros(2)}}, bad)
    with pytest.raises(ValueError, match='no encoder blocks found'):
        build_teacher(bad)
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint at all')
    with pytest.raises(ValueError, match='junk.pth.*not a readable torch file'):
        build_teacher(junk)
