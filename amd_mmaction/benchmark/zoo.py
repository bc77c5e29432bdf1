"""Model-zoo rows for a list of configs: parameters, FLOPs, views,
clips/s and (with a checkpoint and evaluation) top-1; written as a
Markdown table and an mmaction2-style metafile (Collections / Models)."""
import copy
import os.path as osp
from typing import Dict, List, Optional

import torch
import yaml

from amd_mmaction.benchmark.flops import amd_flops, param_counts, token_counts
from amd_mmaction.benchmark.step import build_model, find_transform, mask_setting, measure_model
from amd_mmaction.benchmark.timing import best_time

COLLECTION = dict(
    Name='AMD',
    README='README.md',
    Paper=dict(Title='Asymmetric Masked Distillation for Pre-Training Small '
                     'Foundation Models', URL='https://arxiv.org/abs/2311.03149'))


_SPEED_CACHE = {}
QUICK_S = 0.5  # calls shorter than this get up to 2 s of repeats


def _more_iters(seconds: float) -> int:
    return max(3, min(100, int(2.0 / max(seconds, 1e-4))))

TABLE_KEY = (
    'pretrain rows: params = trained parameters (student, decoder, generators, projections); '
    'GFLOPs = one training step per clip (teacher forward + student side forward and '
    'backward, docs/speed.md conventions); views = repeated-augmentation views per decoded '
    'clip; clips/s = training clips per second at one clip per step. recognizer rows: '
    'params = whole recognizer; GFLOPs = forward of one view (FlopCounterMode, math '
    'attention; FLOPs = 2 x MACs, mmaction2 metafiles list MACs); views = test clips x '
    'crops; clips/s = inference views per second. clips/s: best of the timed runs, this '
    'machine.')


class UnsupportedConfig(ValueError):
    """A config whose model the zoo does not describe (e.g. detectors)."""


def _views(cfg) -> int:
    """Test views per video: clips x crops of the test pipeline (1 when the
    config has none)."""
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline')
    if not pipeline:
        return 1
    clips = 1
    for name in ('SampleFrames', 'UniformSample', 'UniformSampleFrames'):
        t = find_transform(pipeline, name)
        if t is not None:
            clips = int(t.get('num_clips', 1))
            break
    crops = 3 if find_transform(pipeline, 'ThreeCrop') else (
        10 if find_transform(pipeline, 'TenCrop') else 1)
    return clips * crops


def _input_shape(cfg):
    """One view (1, C, T, H, W) for a recognizer config, from its backbone."""
    bb = cfg.model.get('backbone', {})
    frames = bb.get('num_frames', 16)
    size = bb.get('img_size', 224)
    return (1, bb.get('in_channels', 3), frames, size, size)


def pretrain_row(cfg, model, note: str, speed: int, clips: int) -> Dict:
    masks = mask_setting(cfg)
    counts = token_counts(masks['grid'], masks['student_ratio'],
                          masks['teacher_ratio'] if masks['mode'] == 'asymmetric' else None,
                          masks['mode'])
    flops = amd_flops(model, counts)
    params = param_counts(model)
    row = dict(kind='pretrain',
               params=sum(v for k, v in params.items() if k != 'teacher'),
               teacher_params=params.get('teacher', 0),
               flops=sum(f['fwd'] + f['bwd'] for f in flops.values()),
               views=masks['views'], note=note)
    if speed:
        # k400 / ssv2 twins share model and masks: measure once.
        key = (row['params'], row['teacher_params'], row['flops'], row['views'], clips)
        if key not in _SPEED_CACHE:
            r = measure_model(model, masks, clips, warmup=1, iters=speed, components=False)
            if r['step_s'] < QUICK_S:  # small model: more runs to find a quiet moment
                r = measure_model(model, masks, clips, warmup=0, components=False,
                                  iters=_more_iters(r['step_s']))
            _SPEED_CACHE[key] = r['clips_per_s']
        row['clips_per_s'] = _SPEED_CACHE[key]
    return row


def recognizer_row(cfg, model, speed: int) -> Dict:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    model.eval()
    x = torch.randn(_input_shape(cfg))
    with torch.no_grad(), sdpa_kernel([SDPBackend.MATH]), \
            FlopCounterMode(display=False) as fc:
        model(x[None], mode='tensor')
    row = dict(kind='recognizer', params=sum(p.numel() for p in model.parameters()),
               teacher_params=0, flops=fc.get_total_flops(),
               views=_views(cfg), note='')
    if speed:
        with torch.no_grad():
            t = best_time(lambda: model(x[None], mode='tensor'), 1, speed)
            if t['best'] < QUICK_S:
                t = best_time(lambda: model(x[None], mode='tensor'), 0,
                              _more_iters(t['best']))
        row['clips_per_s'] = 1 / t['best']
    return row


def evaluate_top1(cfg, checkpoint: str, work_dir: str) -> Optional[float]:
    """Top-1 of ``checkpoint`` on the config's test set through the real
    Runner; None when the config has no test evaluator."""
    from mmengine.runner import Runner
    if not cfg.get('test_dataloader') or not cfg.get('test_evaluator'):
        return None
    cfg = copy.deepcopy(cfg)
    cfg.load_from = checkpoint
    cfg.work_dir = work_dir
    metrics = Runner.from_cfg(cfg).test()
    for key in ('acc/top1', 'top1', 'accuracy/top1'):
        if key in metrics:
            return float(metrics[key])
    raise KeyError(f'test metrics {sorted(metrics)} have no top-1 (acc/top1)')


def zoo_row(config_path: str, checkpoint: Optional[str] = None, evaluate: bool = False,
            speed: int = 3, clips: int = 1, work_dir: str = 'work_dirs/model_zoo',
            cfg_options: Optional[dict] = None) -> Dict:
    from mmengine.config import Config
    cfg = Config.fromfile(config_path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model, note = build_model(cfg)
    if model.__class__.__name__ == 'AMDPretrainer':
        row = pretrain_row(cfg, model, note, speed, clips)
    elif model.__class__.__name__.startswith('Recognizer'):
        row = recognizer_row(cfg, model, speed)
    else:
        raise UnsupportedConfig(f'{config_path}: model type {type(model).__name__} is '
                                'neither AMDPretrainer nor a Recognizer')
    name = osp.splitext(osp.basename(config_path))[0]
    encoder = getattr(model, 'student', getattr(model, 'backbone', model))
    row.update(name=name, config=config_path, weights=checkpoint, top1=None,
               architecture=type(encoder).__name__)
    if checkpoint and evaluate:
        row['top1'] = evaluate_top1(cfg, checkpoint, osp.join(work_dir, name))
    return row


def _num(n, unit):
    return f'{n / unit:.2f}'


def markdown_table(rows: List[Dict], link_from: Optional[str] = None) -> str:
    """The rows as a Markdown table; ``link_from``: the folder of the file it
    is written to, so that the config links resolve from there (as given
    otherwise)."""
    lines = ['| config | kind | params (M) | teacher params (M) | GFLOPs | views '
             '| clips/s | top-1 (%) | notes |',
             '|---|---|---:|---:|---:|---:|---:|---:|---|']
    for r in rows:
        cps = f'{r["clips_per_s"]:.3g}' if r.get('clips_per_s') else ''
        top1 = f'{100 * r["top1"]:.2f}' if r.get('top1') is not None else ''
        notes = r['note']
        link = (osp.relpath(osp.abspath(r['config']), osp.abspath(link_from))
                if link_from is not None else r['config'])
        lines.append(f'| [{r["name"]}]({link}) | {r["kind"]} | {_num(r["params"], 1e6)} '
                     f'| {_num(r["teacher_params"], 1e6) if r["teacher_params"] else ""} '
                     f'| {_num(r["flops"], 1e9)} | {r["views"]} | {cps} | {top1} | {notes} |')
    lines += ['', TABLE_KEY]
    return '\n'.join(lines) + '\n'


def metafile(rows: List[Dict]) -> str:
    models = []
    for r in rows:
        meta = {'Architecture': r['architecture'], 'Parameters': int(r['params']),
                'FLOPs': int(r['flops']), 'views': int(r['views'])}
        if r['teacher_params']:
            meta['Teacher Parameters'] = int(r['teacher_params'])
        if r.get('clips_per_s'):
            meta['clips/s'] = round(float(r['clips_per_s']), 4)
        results = []
        if r.get('top1') is not None:
            results.append({'Task': 'Action Recognition',
                            'Metrics': {'Top 1 Accuracy': round(100 * r['top1'], 2)}})
        models.append({'Name': r['name'], 'In Collection': COLLECTION['Name'],
                       'Config': r['config'], 'Metadata': meta, 'Results': results,
                       'Weights': r.get('weights')})
    return yaml.safe_dump({'Collections': [COLLECTION], 'Models': models},
                          sort_keys=False)
