"""Benchmark of one pre-training config: parameters, FLOPs, step time,
clips/s, memory and FLOP/s against the matmul peak measured in the same
run, for the config and for its plain VideoMAE student side by side."""
import contextlib
import copy
import os.path as osp
import warnings
from collections import OrderedDict
from typing import Dict, Optional

import numpy as np
import torch

from amd_mmaction.benchmark.flops import amd_flops, param_counts, token_counts
from amd_mmaction.benchmark.timing import (best_time, component_fns, peak_probe, step_fn, step_memory,
                     synthetic_batch)

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def find_transform(pipeline, type_name):
    """First transform of ``type_name`` in a pipeline, looking inside
    wrappers such as RepeatedAugment; None when absent."""
    for t in pipeline or ():
        if t.get('type') == type_name:
            return t
        found = find_transform(t.get('transforms'), type_name)
        if found is not None:
            return found
    return None


def mask_setting(cfg) -> Dict:
    """Mask ratios and views of a config's training pipeline."""
    pipeline = cfg.get('train_dataloader', {}).get('dataset', {}).get('pipeline')
    mask = find_transform(pipeline, 'AsymmetricTubeMask')
    if mask is None:
        raise ValueError('the config has no AsymmetricTubeMask in '
                         'train_dataloader.dataset.pipeline')
    views = find_transform(pipeline, 'RepeatedAugment')
    return dict(mode=mask.get('mode', 'asymmetric'),
                student_ratio=mask.get('student_ratio', 0.9),
                teacher_ratio=mask.get('teacher_ratio', 0.75),
                grid=tuple(mask['grid']),
                views=views.get('num_views', 4) if views else 1)


def build_model(cfg, random_teacher_if_missing: bool = True):
    """Build cfg.model; a teacher checkpoint that is not on disk is replaced
    by a random teacher (same FLOPs and speed). Returns (model, note)."""
    import amd_mmaction  # noqa: F401  (registers modules)
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model_cfg = copy.deepcopy(cfg.model)
    note = ''
    teacher = model_cfg.get('teacher')
    if teacher is not None and teacher.get('checkpoint') and \
            not osp.exists(teacher['checkpoint']):
        if not random_teacher_if_missing:
            raise FileNotFoundError(f"teacher checkpoint {teacher['checkpoint']} not found")
        note = f"teacher checkpoint {teacher['checkpoint']} absent: random teacher"
        teacher['checkpoint'] = None
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        model = MODELS.build(model_cfg)
    return model, note


def videomae_counterpart(cfg):
    """The config's student as plain VideoMAE: no teacher, no alignment."""
    cfg = copy.deepcopy(cfg)
    cfg.model.teacher = None
    cfg.model.alignment = None
    return cfg


def _autocast(device, dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def measure_model(model, masks: Dict, clips: int, device='cpu', dtype=torch.float32,
                  warmup: int = 1, iters: int = 3, components: bool = True,
                  probe=None, clock: str = 'wall') -> Dict:
    """Everything about one model at ``clips`` clips per step. FLOP/s are
    turned into fractions of the matmul peak probed before each timed call
    (``peak_fraction``: best time over best probe; ``peak_fraction_paired``:
    median over calls of each call's FLOP/s over its own probe)."""
    model = model.to(device).train()
    x, samples = synthetic_batch(model, clips, masks['student_ratio'],
                                 masks['teacher_ratio'], masks['mode'], device)
    counts = token_counts(masks['grid'], masks['student_ratio'],
                          masks['teacher_ratio'] if masks['mode'] == 'asymmetric' else None,
                          masks['mode'])
    flops = amd_flops(model, counts)
    step_flops = sum(f['fwd'] + f['bwd'] for f in flops.values())
    res = OrderedDict(params=param_counts(model), flops=flops, tokens=counts,
                      step_flops_per_clip=step_flops, clips=clips)

    def rates(t, f):
        out = dict(s=t['best'], s_median=t['median'], flops_per_s=f / t['best'])
        if t['peaks']:
            out['peak'] = max(t['peaks'])
            out['peak_fraction'] = out['flops_per_s'] / out['peak']
            out['peak_fraction_paired'] = float(np.median(
                [f / s / p for s, p in zip(t['times'], t['peaks'])]))
        return out

    with _autocast(device, dtype):
        run = step_fn(model, x, samples)
        t = best_time(run, warmup, iters, device, probe, clock)
        res['loss'] = float(run.loss)
        step = rates(t, step_flops * clips)
        res.update(step_s=step['s'], step_s_median=step['s_median'],
                   clips_per_s=clips / step['s'], **{
                       k: v for k, v in step.items() if k not in ('s', 's_median')})
        res['memory'] = step_memory(model, x, samples)
        if components:
            comp = OrderedDict()
            for name, fn in component_fns(model, x, samples).items():
                f = flops[name]['fwd'] + flops[name]['bwd']
                comp[name] = rates(best_time(fn, warmup, iters, device, probe, clock),
                                   f * clips)
            res['components'] = comp
    return res


def benchmark_config(cfg, clips: int = 1, device='cpu', dtype='fp32',
                     warmup: int = 1, iters: int = 3, components: bool = True,
                     baseline: bool = True, threads: Optional[int] = None,
                     teacher_dtype: Optional[str] = None, clock: str = 'wall') -> Dict:
    """Measure ``cfg`` (an mmengine Config) and, with ``baseline``, its
    plain VideoMAE student in the same run. ``dtype`` other than fp32 runs
    the step under autocast and measures the peak in that dtype. ``clock``:
    'wall' seconds, or 'cpu' seconds of this process (see ``best_time``)."""
    if clock == 'cpu' and torch.device(device).type != 'cpu':
        raise ValueError("clock='cpu' measures CPU work; use clock='wall' on "
                         f'device {device}')
    if threads:
        torch.set_num_threads(threads)
    dt = DTYPES[dtype]
    masks = mask_setting(cfg)
    probe = peak_probe(device, dt, clock=clock)
    model, note = build_model(cfg)
    if model.teacher is not None and (teacher_dtype or dtype != 'fp32'):
        model.teacher.autocast_dtype = DTYPES[teacher_dtype or dtype]
        if model.teacher.autocast_dtype == torch.float32:
            model.teacher.autocast_dtype = None
    out = OrderedDict(device=str(device), dtype=dtype, threads=torch.get_num_threads(),
                      clock=clock,
                      note=note, masks=masks, teacher_dtype=teacher_dtype or dtype)
    if torch.device(device).type == 'cuda':
        out['device_name'] = torch.cuda.get_device_name(device)
    out['amd'] = measure_model(model, masks, clips, device, dt, warmup, iters,
                               components, probe, clock)
    del model
    if baseline and cfg.model.get('teacher') is not None:
        base, _ = build_model(videomae_counterpart(cfg))
        out['videomae'] = measure_model(base, masks, clips, device, dt, warmup, iters,
                                        components, probe, clock)
        out['time_ratio'] = out['amd']['step_s'] / out['videomae']['step_s']
    out['matmul_peak'] = max(r['peak'] for r in (out.get('amd'), out.get('videomae')) if r)
    return out


def _fmt_bytes(n):
    return f'{n / 2 ** 20:.0f} MiB'


def format_report(out: Dict, cfg_name: str = '') -> str:
    """Plain-text report of ``benchmark_config``'s result."""
    g = 1e9
    lines = [f'# {cfg_name}  device={out["device"]} dtype={out["dtype"]} '
             f'threads={out["threads"]} clock={out["clock"]}']
    if out['note']:
        lines.append(f'# note: {out["note"]}')
    lines.append(f'matmul peak (measured, {out["dtype"]}, best probe): '
                 f'{out["matmul_peak"] / g:.1f} GFLOP/s')
    for key in ('amd', 'videomae'):
        if key not in out:
            continue
        r = out[key]
        lines.append(f'[{key}] clips/step={r["clips"]} tokens={r["tokens"]}')
        lines.append('  component     params(M)  GFLOPs/clip fwd  fwd+bwd   time(ms)  '
                     'GFLOP/s  of peak')
        names = list(r['flops'])
        for name in names:
            f = r['flops'][name]
            c = r.get('components', {}).get(name)
            p = r['params'].get(name, 0) / 1e6
            row = (f'  {name:<12} {p:>9.2f}  {f["fwd"] / g:>15.2f}  '
                   f'{(f["fwd"] + f["bwd"]) / g:>7.2f}')
            if c:
                row += (f'  {c["s"] * 1e3:>9.1f}  {c["flops_per_s"] / g:>7.1f}  '
                        f'{c["peak_fraction"]:>6.1%}')
            lines.append(row)
        mem = r['memory']
        lines.append(f'  step: {r["step_flops_per_clip"] / g:.1f} GFLOPs/clip, '
                     f'{r["step_s"] * 1e3:.0f} ms (best; median '
                     f'{r["step_s_median"] * 1e3:.0f} ms), {r["clips_per_s"]:.2f} clips/s, '
                     f'{r["flops_per_s"] / g:.1f} GFLOP/s = {r["peak_fraction"]:.1%} of peak '
                     f'(paired median {r["peak_fraction_paired"]:.1%})')
        mem_s = (f'  memory: activations {_fmt_bytes(mem["activations"])}, params '
                 f'{_fmt_bytes(mem["params"])}, grads {_fmt_bytes(mem["grads"])}')
        if 'cuda_peak' in mem:
            mem_s += f', CUDA peak allocated {_fmt_bytes(mem["cuda_peak"])}'
        lines.append(mem_s)
    if 'time_ratio' in out:
        lines.append(f'AMD / VideoMAE step time: {out["time_ratio"]:.2f}x')
    return '\n'.join(lines)
