"""The reproduction protocol (configs/reproduce/*.py): loading, checking,
and the list of stages it implies."""
import copy
from typing import Dict, List, Optional

MANNERS = ('none', 'serial', 'parallel', 'direct', 'generation')
MASKS = ('asymmetric', 'tube', 'symmetric')
SECTIONS = ('data', 'seeds', 'teacher', 'pretrain', 'finetune', 'linear_probe', 'variants')
# The transfer evaluations every student gets.
TRANSFERS = ('finetune', 'linear_probe')


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def check_protocol(p: dict, source: str = 'protocol') -> dict:
    """Raise ValueError naming the key and value that is wrong."""
    missing = [k for k in SECTIONS if k not in p]
    if missing:
        raise ValueError(f'{source}: missing section(s) {missing}; a protocol needs {SECTIONS}')
    seeds = p['seeds']
    if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f'{source}: seeds must be distinct ints, got {seeds!r}')
    for name in ('num_train', 'num_val', 'num_frames', 'size'):
        if int(p['data'].get(name, 0)) <= 0:
            raise ValueError(f'{source}: data.{name} must be a positive int, '
                             f'got {p["data"].get(name)!r}')
    for stage in ('teacher', 'pretrain', 'finetune', 'linear_probe'):
        for key in ('epochs', 'batch_size'):
            v = p[stage].get(key)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f'{source}: {stage}.{key} must be an int >= 1, got {v!r}')
    if not isinstance(p['teacher'].get('probe', False), bool):
        raise ValueError(f"{source}: teacher.probe must be true/false, got "
                         f"{p['teacher']['probe']!r}")
    if not p['variants']:
        raise ValueError(f'{source}: no variants')
    for name, v in p['variants'].items():
        where = f'{source}: variants.{name}'
        if v.get('manner') not in MANNERS:
            raise ValueError(f'{where}.manner={v.get("manner")!r}; expected one of {MANNERS}')
        if v.get('mask') not in MASKS:
            raise ValueError(f'{where}.mask={v.get("mask")!r}; expected one of {MASKS}')
        if (v['manner'] == 'none') != (v['mask'] == 'tube'):
            raise ValueError(f'{where}: manner {v["manner"]!r} with mask {v["mask"]!r}; plain '
                             "VideoMAE is manner 'none' with mask 'tube', and only it")
        if v['mask'] != 'tube' and not isinstance(v.get('teacher_ratio'), float):
            raise ValueError(f'{where}.teacher_ratio={v.get("teacher_ratio")!r}; a distilled '
                             'student needs a float teacher mask ratio')
    return p


def load_protocol(path: str, quick: bool = False, overrides: Optional[dict] = None) -> dict:
    """Read a protocol file (mmengine config syntax) as a plain dict.

    ``quick`` applies the file's ``quick`` section: its keys replace the
    main ones and its ``variants`` (a list of names) selects the students.
    ``overrides`` (nested dict) are applied last, the same way.
    """
    from mmengine.config import Config
    raw = Config.fromfile(path).to_dict()
    quick_part = raw.pop('quick', None)
    p = {k: v for k, v in raw.items() if k in SECTIONS}
    for part, name in ((quick_part if quick else None, 'quick'), (overrides, 'overrides')):
        if not part:
            if quick and name == 'quick':
                raise ValueError(f'{path}: --quick asked for but the file has no quick section')
            continue
        part = dict(part)
        keep = part.pop('variants', None)
        p = _merge(p, part)
        if keep is not None:
            if not isinstance(keep, (list, tuple)):
                raise ValueError(f'{path}: {name}.variants selects students by name: a list '
                                 f"such as ['videomae', 'amd_serial'], got {keep!r}")
            unknown = [v for v in keep if v not in p['variants']]
            if unknown:
                raise ValueError(f'{path}: {name}.variants names unknown variant(s) {unknown}; '
                                 f'known: {sorted(p["variants"])}')
            p['variants'] = {v: p['variants'][v] for v in keep}
    return check_protocol(p, path)


def plan_stages(p: dict) -> List[Dict]:
    """Every stage of the protocol in run order: per seed, data (once if
    not per seed), teacher (when a variant needs one) and its linear probe
    (``teacher.probe``), each student's pre-training, then each student's
    fine-tuning and linear probe."""
    stages = []
    needs_teacher = any(v['manner'] != 'none' for v in p['variants'].values())
    for i, seed in enumerate(p['seeds']):
        if p['data'].get('per_seed', True) or i == 0:
            stages.append(dict(kind='data', seed=seed, variant=None))
        if needs_teacher:
            stages.append(dict(kind='teacher', seed=seed, variant=None))
            if p['teacher'].get('probe', False):
                stages.append(dict(kind='teacher_probe', seed=seed, variant=None))
        for v in p['variants']:
            stages.append(dict(kind='pretrain', seed=seed, variant=v))
        for v in p['variants']:
            for t in TRANSFERS:
                stages.append(dict(kind=t, seed=seed, variant=v))
    return stages


def stage_key(stage: dict) -> str:
    return f"seed{stage['seed']}/{stage['kind']}" + (
        f"/{stage['variant']}" if stage['variant'] else '')


# CPU seconds per training iteration at batch 8 (process time, 1 thread,
# measured on the 2-core project machine with the configs/tiny models), per
# test clip (2 clips x 3 crops, decode included) and per stage (Runner
# build, checkpoint): only for sizing a protocol before running it.
COST = dict(teacher=0.23, videomae=0.17, distilled=0.32, finetune=0.22,
            linear_probe=0.16, test_clip=0.1, stage=2.0)


def estimate_seconds(p: dict) -> dict:
    """Rough seconds per stage kind (all seeds) from ``COST``: iterations
    = epochs x ceil(clips / batch), scaled linearly from batch 8."""
    n_train, n_val = p['data']['num_train'], p['data']['num_val']

    def train(section, per_iter):
        s = p[section]
        iters = s['epochs'] * -(-n_train // s['batch_size'])
        return iters * per_iter * s['batch_size'] / 8

    test = n_val * COST['test_clip']
    out = dict(teacher=0.0, teacher_probe=0.0, pretrain=0.0, finetune=0.0, linear_probe=0.0)
    for stage in plan_stages(p):
        k, v = stage['kind'], p['variants'].get(stage['variant'] or '', {})
        if k == 'teacher':
            out[k] += train('teacher', COST['teacher'])
        elif k == 'teacher_probe':
            out[k] += train('linear_probe', COST['linear_probe'] * 1.8) + test  # wider, deeper
        elif k == 'pretrain':
            out[k] += train('pretrain', COST['videomae' if v['manner'] == 'none'
                                             else 'distilled'])
        elif k in TRANSFERS:
            out[k] += train(k, COST[k]) + test
        if k in out:
            out[k] += COST['stage']
    out['total'] = sum(out.values())
    return out
