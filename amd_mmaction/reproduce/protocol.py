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
# Protocol v3 (configs/reproduce/teacher_protocol.py) adds: `teachers` (more
# teachers, e.g. a larger one, each trained on the same pool), `dose` (the
# teacher dose-response: which variant and metrics), `datasets` (one arm per
# data set, each a whole protocol: the common sections merged with the arm's).
OPTIONAL = ('teachers', 'dose')
GROUPS = ('headline', 'ablation')
DATA_SOURCES = ('synthetic', 'order', 'lists')
UNTRAINED, TRAINED, RANDOM = 'untrained', 'trained', 'random'
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
    unknown = sorted(set(p) - set(SECTIONS) - set(OPTIONAL))
    if unknown:
        _fail(source, f'unknown section(s) {unknown}; a protocol has {SECTIONS + OPTIONAL}')
    if missing:
        _fail(source, f'missing section(s) {missing}; a protocol needs {SECTIONS}')
    d = p['data']
    if d.get('source') in ('synthetic', 'order'):
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
        _fail(source, f"data.source must be one of {DATA_SOURCES}, got {d.get('source')!r}")
    if p['target_norm'] not in TARGET_NORMS:
        _fail(source, f'target_norm must be one of {TARGET_NORMS}, got {p["target_norm"]!r}')
    for stage in ('teacher', 'pretrain'):
        for key in ('epochs', 'batch_size'):
            v = p[stage].get(key)
            if not isinstance(v, int) or v < 1:
                _fail(source, f'{stage}.{key} must be an int >= 1, got {v!r}')
    _check_teacher(source, 'teacher', p['teacher'])
    gate = p['teacher'].get('gate', {})
    for key in ('recon_margin', 'probe_factor'):
        if not isinstance(gate.get(key), (int, float)) or gate[key] <= 0:
            _fail(source, f'teacher.gate.{key} must be a positive number, got {gate.get(key)!r}')
    for key in ('vs_untrained', 'required'):
        if not isinstance(gate.get(key, False), bool):
            _fail(source, f'teacher.gate.{key} must be True or False, got {gate[key]!r}')
    extra = p.get('teachers') or {}
    if not isinstance(extra, dict):
        _fail(source, f'teachers must be a dict of name -> teacher section, got {extra!r}')
    for name, t in extra.items():
        if name in (TRAINED, RANDOM, UNTRAINED) or name.startswith('epoch_'):
            _fail(source, f'teachers.{name}: that name means a stage of the main teacher; '
                          'choose another (e.g. large)')
        if not isinstance(t, dict):
            _fail(source, f'teachers.{name} must be a teacher section (dict), got {t!r}')
        for key in ('epochs', 'batch_size'):
            if not isinstance(t.get(key), int) or t[key] < 1:
                _fail(source, f'teachers.{name}.{key} must be an int >= 1, got {t.get(key)!r}')
        _check_teacher(source, f'teachers.{name}', t)
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
        ref = v.get('teacher', TRAINED)
        known = [TRAINED, RANDOM] + [stage_name(e) for e in teacher_stages(p)] + list(extra)
        if ref not in known:
            _fail(source, f'{where}.teacher={ref!r}; expected one of {known} (a stage '
                          'epoch_N must be listed in teacher.stages)')
    dose = p.get('dose')
    if dose is not None:
        if not teacher_stages(p):
            _fail(source, 'dose needs teacher.stages (the checkpoints it distils from)')
        missing = [stage_name(e) for e in teacher_stages(p)
                   if dose_variant(p, e) is None]
        if missing:
            _fail(source, f"dose: no variant of manner {dose.get('manner')!r} distils from "
                          f'teacher stage(s) {missing}; add one per stage')
    for claim in p['claims']:
        if len(claim) != 3 or any(c not in p['variants'] for c in claim[:2]):
            continue  # claims on variants left out (--quick) are skipped
    if not isinstance(p['workers'], int) or p['workers'] < 1:
        _fail(source, f'workers must be an int >= 1, got {p["workers"]!r}')
    return p


def _check_teacher(source, where: str, t: dict):
    _check_config(source, f'{where}.config', t.get('config'))
    if not isinstance(t.get('mask_ratio'), float) or not 0 < t['mask_ratio'] < 1:
        _fail(source, f'{where}.mask_ratio must be a float in (0, 1), got {t.get("mask_ratio")!r}')
    stages = t.get('stages')
    if stages is None:
        return
    if (not isinstance(stages, (list, tuple)) or len(stages) < 2
            or not all(isinstance(e, int) and not isinstance(e, bool) for e in stages)
            or sorted(set(stages)) != list(stages) or stages[0] < 0
            or stages[-1] != t['epochs']):
        _fail(source, f'{where}.stages={stages!r}: expected increasing epochs (ints) from 0 '
                      f'(untrained) or later up to {where}.epochs={t.get("epochs")} (the end)')


def teacher_stages(p: dict) -> List[int]:
    """The main teacher's dose-response stages (epochs; 0 = untrained), or []."""
    return list(p['teacher'].get('stages') or [])


def stage_name(epoch: int) -> str:
    return UNTRAINED if epoch == 0 else f'epoch_{epoch}'


def stage_ref(p: dict, epoch: int) -> str:
    """A variant's ``teacher`` value for a stage: the untrained stage is the
    random-teacher control, the last one the trained teacher."""
    if epoch == 0:
        return RANDOM
    if epoch == p['teacher']['epochs']:
        return TRAINED
    return stage_name(epoch)


def checkpoint_interval(t: dict) -> int:
    """Epochs between a teacher's saved checkpoints: the stages' spacing
    (their greatest common divisor), else every 5 epochs."""
    import math
    trained = [e for e in (t.get('stages') or []) if e > 0]
    if trained:
        g = 0
        for e in trained:
            g = math.gcd(g, e)
        return g
    return min(5, t['epochs'])


def dose_variant(p: dict, epoch: int) -> Optional[str]:
    """The variant of the dose-response that distils from stage ``epoch``."""
    dose = p.get('dose') or {}
    ref = stage_ref(p, epoch)
    for name, v in p['variants'].items():
        if v.get('manner') == dose.get('manner') and v.get('mask') == dose.get('mask') \
                and v.get('teacher', TRAINED) == ref \
                and v.get('teacher_ratio') == dose.get('teacher_ratio'):
            return name
    return None


# -- several data sets (protocol v3) ------------------------------------------
def arm_names(p: dict) -> List[str]:
    return list(p.get('datasets') or [])


def arm_protocol(p: dict, name: str) -> dict:
    """The whole protocol of data set ``name``: the common sections with the
    arm's merged in."""
    common = {k: v for k, v in p.items() if k != 'datasets'}
    return merge(common, p['datasets'][name])


def _check_arms(p: dict, source: str) -> dict:
    arms = p.get('datasets')
    if not isinstance(arms, dict) or not arms:
        _fail(source, f'datasets must name at least one data set (name -> its sections), '
                      f'got {arms!r}')
    p['datasets'] = {k: v for k, v in arms.items() if v is not None}  # None drops an arm
    if not p['datasets']:
        _fail(source, 'every data set was dropped (datasets.<name>=None)')
    for name in p['datasets']:
        if not isinstance(p['datasets'][name], dict) or 'data' not in p['datasets'][name]:
            _fail(source, f'datasets.{name} must be a dict with at least a data section')
        check_protocol(arm_protocol(p, name), f'{source} [datasets.{name}]')
    return p


def load_protocol(path: str, quick: bool = False, overrides: Optional[dict] = None) -> dict:
    """Read a protocol file as a plain dict; ``quick`` applies its
    ``quick`` section, ``overrides`` (nested dict) are applied last. A
    ``variants`` list in either selects students by name."""
    from mmengine.config import Config
    raw = Config.fromfile(path).to_dict()
    quick_part = raw.pop('quick', None)
    p = {k: v for k, v in raw.items() if k in SECTIONS + OPTIONAL + ('datasets',)}
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
    if 'datasets' in p:
        return _check_arms(p, path)
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


def shared_stages(p: dict) -> List[Dict]:
    """The stages before any student, in order: data, the teacher, the
    random teacher, the gate; then each dose-response stage's gate
    (``stage_gate@epoch_N``, the stages between untrained and the end), then
    each extra teacher and its gate (``teacher@name``, ``gate@name``)."""
    out = [dict(kind=k, variant=None, seed=None)
           for k in ('data', 'teacher', 'teacher_random', 'gate')]
    out += [dict(kind='stage_gate', name=stage_name(e), variant=None, seed=None)
            for e in teacher_stages(p) if 0 < e < p['teacher']['epochs']]
    for name in p.get('teachers') or {}:
        out += [dict(kind=k, name=name, variant=None, seed=None) for k in ('teacher', 'gate')]
    return out


def plan_stages(p: dict) -> List[Dict]:
    """Shared stages (:func:`shared_stages`), then every unit's
    pre-training, frozen-feature evaluation (k-NN + linear probe) and
    fine-tuning."""
    return shared_stages(p) + [s for u in units(p) for s in unit_stages(p, u)]


def stage_key(stage: dict) -> str:
    if stage.get('variant') is None:
        return stage['kind'] + (f"@{stage['name']}" if stage.get('name') else '')
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
    if d['source'] in ('synthetic', 'order'):
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
    def teacher_seconds(t):
        s = (t['epochs'] * -(-n['pool'] // t['batch_size']) * COST['teacher']
             * t['batch_size'] / 8 * relative_cost(t['config']))
        return s * (COST['two_threads'] if t.get('threads', 1) > 1 else 1)
    extra = (p.get('teachers') or {}).values()
    teacher = teacher_seconds(p['teacher']) + sum(teacher_seconds(t) for t in extra)
    # the gate scores two networks; a stage gate or an extra teacher's gate one or two
    stage_gates = len([e for e in teacher_stages(p) if 0 < e < p['teacher']['epochs']])
    gate = (2 + stage_gates + 2 * len(extra)) * (n['train'] + 2 * n['val']) * COST['gate_clip']
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


def relative_cost(config: str) -> float:
    """A pre-training config's cost per iteration relative to the tiny
    teacher's (128 wide, 6 blocks): width squared times depth."""
    from mmengine.config import Config
    st = Config.fromfile(resolve_config(config)).model.student
    return (st.embed_dims / 128) ** 2 * st.depth / 6


def estimate_all(p: dict) -> dict:
    """:func:`estimate_seconds` of a protocol, or summed over its data sets."""
    if 'datasets' not in p:
        return estimate_seconds(p)
    parts = [estimate_seconds(arm_protocol(p, name)) for name in arm_names(p)]
    return {k: sum(x[k] for x in parts) for k in parts[0]}


def all_stage_keys(p: dict) -> List[str]:
    """Every stage key, prefixed by its data set's name for a protocol with several."""
    if 'datasets' not in p:
        return [stage_key(s) for s in plan_stages(p)]
    return [f'{name}/{stage_key(s)}' for name in arm_names(p)
            for s in plan_stages(arm_protocol(p, name))]


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
