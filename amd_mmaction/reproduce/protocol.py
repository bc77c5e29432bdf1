"""The micro-scale reproduction protocol (configs/reproduce/
motion_protocol.py, protocol v2 in the results) and its low-label addendum
(motion_protocol_lowlabel.py): loading, checking, the stage plan and cost
estimates. See docs/reproduce.md."""
import copy
import os.path as osp
from typing import Dict, List, Optional

from amd_mmaction.config_files import config_file

# Alignment manners (amd_mmaction.alignment; 'none': plain VideoMAE) and
# mask modes (amd_mmaction.masks.AsymmetricTubeMask) a variant may name.
MANNERS = ('none', 'serial', 'parallel', 'direct', 'generation')
MASKS = ('asymmetric', 'tube', 'symmetric')
SECTIONS = ('data', 'target_norm', 'teacher', 'pretrain', 'evaluation', 'seeds',
            'variants', 'claims', 'workers')
GROUPS = ('headline', 'ablation')
TARGET_NORMS = ('channel', 'none')


def merge(base: dict, over: dict) -> dict:
    """A deep copy of ``base`` with ``over`` merged in: nested dicts merge
    key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _fail(source, msg):
    raise ValueError(f'{source}: {msg}')


def resolve_config(config: str) -> str:
    """A stage config named relative to ``configs/`` (``'tiny/x.py'``: the
    copy installed with the package) or given as an absolute path."""
    if osp.isabs(config):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config {config} does not exist')
        return config
    return config_file(config)


def _check_config(source, where: str, config):
    if not isinstance(config, str) or not config.endswith('.py'):
        _fail(source, f"{where}={config!r}: expected a config file, a name under configs/ "
                      "such as 'tiny/finetune_tiny_motion.py' or an absolute path")
    try:
        resolve_config(config)
    except FileNotFoundError as err:
        _fail(source, f'{where}: {err}')


def check_protocol(p: dict, source: str = 'protocol') -> dict:
    """Raise ValueError naming the key and value that is wrong."""
    missing = [k for k in SECTIONS if k not in p]
    if missing:
        _fail(source, f'missing section(s) {missing}; a protocol needs {SECTIONS}')
    d = p['data']
    if d.get('source') == 'synthetic':
        for name in ('num_pool', 'num_train', 'num_val', 'num_frames', 'size'):
            v = d.get(name)
            if not isinstance(v, int) or v < (0 if name == 'num_pool' else 1):
                _fail(source, f'data.{name} must be an int >= '
                              f'{0 if name == "num_pool" else 1}, got {v!r}')
    elif d.get('source') == 'lists':
        for name in ('train', 'val', 'root'):
            if not isinstance(d.get(name), str) or not d[name]:
                _fail(source, f'data.{name} must be a path (data.source="lists"), got '
                              f'{d.get(name)!r}')
        if not isinstance(d.get('num_classes'), int) or d['num_classes'] < 2:
            _fail(source, f'data.num_classes must be an int >= 2, got {d.get("num_classes")!r}')
        if d.get('pool') is not None and not isinstance(d['pool'], str):
            _fail(source, f'data.pool must be a path or None, got {d["pool"]!r}')
    else:
        _fail(source, f"data.source must be 'synthetic' or 'lists', got {d.get('source')!r}")
    if p['target_norm'] not in TARGET_NORMS:
        _fail(source, f'target_norm must be one of {TARGET_NORMS}, got {p["target_norm"]!r}')
    for stage in ('teacher', 'pretrain'):
        for key in ('epochs', 'batch_size'):
            v = p[stage].get(key)
            if not isinstance(v, int) or v < 1:
                _fail(source, f'{stage}.{key} must be an int >= 1, got {v!r}')
    t = p['teacher']
    _check_config(source, 'teacher.config', t.get('config'))
    if not isinstance(t.get('mask_ratio'), float) or not 0 < t['mask_ratio'] < 1:
        _fail(source, f'teacher.mask_ratio must be a float in (0, 1), got {t.get("mask_ratio")!r}')
    gate = t.get('gate', {})
    for key in ('recon_margin', 'probe_factor'):
        if not isinstance(gate.get(key), (int, float)) or gate[key] <= 0:
            _fail(source, f'teacher.gate.{key} must be a positive number, got {gate.get(key)!r}')
    ft = p['evaluation'].get('finetune')
    if ft is not None:
        _check_config(source, 'evaluation.finetune.config', ft.get('config'))
        for key in ('epochs', 'batch_size', 'val_interval'):
            if not isinstance(ft.get(key), int) or ft[key] < 1:
                _fail(source, f'evaluation.finetune.{key} must be an int >= 1, got {ft.get(key)!r}')
    for g in GROUPS:
        s = p['seeds'].get(g)
        if not s or len(set(s)) != len(s) or not all(isinstance(x, int) for x in s):
            _fail(source, f'seeds.{g} must be distinct ints, got {s!r}')
    if not p['variants']:
        _fail(source, 'no variants')
    for name, v in p['variants'].items():
        where = f'variants.{name}'
        if v.get('manner') not in MANNERS:
            _fail(source, f'{where}.manner={v.get("manner")!r}; expected one of {MANNERS}')
        if v.get('mask') not in MASKS:
            _fail(source, f'{where}.mask={v.get("mask")!r}; expected one of {MASKS}')
        if (v['manner'] == 'none') != (v['mask'] == 'tube'):
            _fail(source, f"{where}: plain VideoMAE is manner 'none' with mask 'tube', and only it")
        if v['mask'] != 'tube' and not isinstance(v.get('teacher_ratio'), float):
            _fail(source, f'{where}.teacher_ratio={v.get("teacher_ratio")!r}; a distilled '
                          'student needs a float teacher mask ratio')
        if v.get('group') not in GROUPS:
            _fail(source, f'{where}.group={v.get("group")!r}; expected one of {GROUPS}')
        if v.get('teacher', 'trained') not in ('trained', 'random'):
            _fail(source, f"{where}.teacher={v.get('teacher')!r}; expected 'trained' or 'random'")
    for claim in p['claims']:
        if len(claim) != 3 or any(c not in p['variants'] for c in claim[:2]):
            continue  # claims on variants left out (--quick) are skipped
    if not isinstance(p['workers'], int) or p['workers'] < 1:
        _fail(source, f'workers must be an int >= 1, got {p["workers"]!r}')
    return p


def load_protocol(path: str, quick: bool = False, overrides: Optional[dict] = None) -> dict:
    """Read a protocol file as a plain dict; ``quick`` applies its
    ``quick`` section, ``overrides`` (nested dict) are applied last. A
    ``variants`` list in either selects students by name."""
    from mmengine.config import Config
    raw = Config.fromfile(path).to_dict()
    quick_part = raw.pop('quick', None)
    p = {k: v for k, v in raw.items() if k in SECTIONS}
    p['claims'] = [list(c) for c in p.get('claims', [])]
    for part, name in ((quick_part if quick else None, 'quick'), (overrides, 'overrides')):
        if not part:
            if quick and name == 'quick':
                _fail(path, '--quick asked for but the file has no quick section')
            continue
        part = copy.deepcopy(dict(part))
        keep = part.pop('variants', None)
        p = merge(p, part)
        if keep is not None:
            if not isinstance(keep, (list, tuple)):
                _fail(path, f"{name}.variants selects students by name: a list such as "
                            f"['videomae', 'amd_serial'], got {keep!r}")
            unknown = [v for v in keep if v not in p['variants']]
            if unknown:
                _fail(path, f'{name}.variants names unknown variant(s) {unknown}; known: '
                            f'{sorted(p["variants"])}')
            p['variants'] = {v: p['variants'][v] for v in keep}
    # a finetune section set to None in quick / overrides turns it off
    return check_protocol(p, path)


def seeds_of(p: dict, variant: str) -> List[int]:
    return list(p['seeds'][p['variants'][variant]['group']])


def units(p: dict) -> List[Dict]:
    """Every (variant, seed) student, in a fixed order: seeds outer, so the
    first finished units already pair across variants."""
    out = []
    all_seeds = sorted({s for v in p['variants'] for s in seeds_of(p, v)})
    for seed in all_seeds:
        for v in p['variants']:
            if seed in seeds_of(p, v):
                out.append(dict(variant=v, seed=seed))
    return out


def unit_stages(p: dict, unit: dict) -> List[Dict]:
    kinds = ['pretrain', 'features'] + (['finetune'] if p['evaluation'].get('finetune') else [])
    return [dict(kind=k, **unit) for k in kinds]


def plan_stages(p: dict) -> List[Dict]:
    """Shared stages (data, teacher, random teacher, gate), then every
    unit's pre-training, frozen-feature evaluation (k-NN + linear probe) and
    fine-tuning."""
    shared = [dict(kind=k, variant=None, seed=None)
              for k in ('data', 'teacher', 'teacher_random', 'gate')]
    return shared + [s for u in units(p) for s in unit_stages(p, u)]


def stage_key(stage: dict) -> str:
    if stage.get('variant') is None:
        return stage['kind']
    return f"seed{stage['seed']}/{stage['kind']}/{stage['variant']}"


# CPU seconds per training iteration at batch 8 (1 thread, idle 2-core
# project machine, configs/tiny models; measured for protocol v1), the
# teacher's 2-thread speed-up, per clip of feature extraction (2 x 3 views,
# decode included) and of the gate (features + masked reconstruction).
# The teacher and gate figures were measured by the first --quick run.
COST = dict(teacher=0.23, two_threads=0.75, videomae=0.17, distilled=0.32, finetune=0.22,
            feature_clip=0.1, gate_clip=0.145, val_clip=0.02, test_clip=0.1, stage=3.0)


def data_sizes(p: dict) -> Dict[str, int]:
    d = p['data']
    if d['source'] == 'synthetic':
        return dict(pool=d['num_pool'] + d['num_train'], train=d['num_train'], val=d['num_val'])
    def lines(key):  # for --plan only: the lists are checked properly when run
        path = d.get(key)
        if not path:
            return 0
        try:
            with open(path) as f:
                return sum(1 for line in f if line.strip())
        except OSError:
            return 0
    return dict(pool=lines('pool') + lines('train'), train=lines('train'), val=lines('val'))


def estimate_seconds(p: dict, sizes: Optional[Dict[str, int]] = None) -> dict:
    """Rough wall seconds: the teacher (on 2 threads if asked), the gate,
    the units spread over ``workers`` processes of one thread each."""
    n = sizes or data_sizes(p)

    def iters(section, clips):
        return p[section]['epochs'] * -(-clips // p[section]['batch_size'])

    def scale(section):
        return p[section]['batch_size'] / 8
    teacher = iters('teacher', n['pool']) * COST['teacher'] * scale('teacher')
    if p['teacher'].get('threads', 1) > 1:
        teacher *= COST['two_threads']
    gate = 2 * (n['train'] + 2 * n['val']) * COST['gate_clip']
    unit_total = 0.0
    for u in units(p):
        v = p['variants'][u['variant']]
        per = COST['videomae' if v['manner'] == 'none' else 'distilled']
        unit_total += iters('pretrain', n['train']) * per * scale('pretrain') + COST['stage']
        unit_total += (n['train'] + n['val']) * COST['feature_clip'] + COST['stage']
        ft = p['evaluation'].get('finetune')
        if ft:
            ft_iters = ft['epochs'] * -(-n['train'] // ft['batch_size'])
            vals = ft['epochs'] // ft['val_interval']
            unit_total += (ft_iters * COST['finetune'] * ft['batch_size'] / 8
                           + vals * n['val'] * COST['val_clip'] + n['val'] * COST['test_clip']
                           + COST['stage'])
    students = unit_total / p['workers']
    return dict(teacher=teacher, gate=gate, students=students, units=len(units(p)),
                total=teacher + gate + students)


# -- the low-label addendum ------------------------------------------------
LOWLABEL_KEYS = ('per_class', 'subset_seed', 'finetune', 'workers')


def load_lowlabel(path: str, overrides: Optional[dict] = None) -> dict:
    """The low-label addendum file as a dict; ValueError naming a wrong key."""
    from mmengine.config import Config
    raw = {k: v for k, v in Config.fromfile(path).to_dict().items() if k in LOWLABEL_KEYS}
    unknown = sorted(set(overrides or {}) - set(LOWLABEL_KEYS))
    if unknown:
        _fail(path, f'unknown key(s) {unknown}; the addendum has {LOWLABEL_KEYS}')
    raw = merge(raw, copy.deepcopy(overrides or {}))
    missing = [k for k in LOWLABEL_KEYS if k not in raw]
    if missing:
        _fail(path, f'missing key(s) {missing}; a low-label addendum needs {LOWLABEL_KEYS}')
    for key in ('per_class', 'workers'):
        if not isinstance(raw[key], int) or raw[key] < 1:
            _fail(path, f'{key} must be an int >= 1, got {raw[key]!r}')
    if not isinstance(raw['subset_seed'], int):
        _fail(path, f'subset_seed must be an int, got {raw["subset_seed"]!r}')
    _check_config(path, 'finetune.config', raw['finetune'].get('config'))
    for key in ('epochs', 'batch_size', 'val_interval'):
        v = raw['finetune'].get(key)
        if not isinstance(v, int) or v < 1:
            _fail(path, f'finetune.{key} must be an int >= 1, got {v!r}')
    return raw


def estimate_lowlabel_seconds(ll: dict, num_classes: int, num_val: int, count: int) -> dict:
    """Rough wall seconds of ``count`` low-label fine-tunings of
    ``per_class x num_classes`` clips, over ``ll['workers']`` processes."""
    ft = ll['finetune']
    clips = ll['per_class'] * num_classes
    per = (ft['epochs'] * -(-clips // ft['batch_size']) * COST['finetune']
           + ft['epochs'] // ft['val_interval'] * num_val * COST['val_clip']
           + num_val * COST['test_clip'] + COST['stage'])
    return dict(clips=clips, units=count, total=per * count / ll['workers'])
