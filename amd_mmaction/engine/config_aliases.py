"""Config switches by name instead of by pipeline position.

``--cfg-options train_dataloader.dataset.pipeline.4.transforms.3.teacher_ratio=0.45``
depends on where the mask sits in the pipeline (step 4 in the 16x224
configs, step 3 in the tiny ones), and overriding a config's top-level
``mask`` variable reaches nothing: mmengine copies it into the pipeline when
the file is parsed. These aliases name the switch instead:

=====================  =====================================================
``mask.student_ratio``  every ``AsymmetricTubeMask``'s student mask ratio
``mask.teacher_ratio``  ... teacher mask ratio
``mask.mode``           ... mode (``asymmetric`` / ``tube`` / ``symmetric``)
``mask.seed``           ... seed of the mask's own generator
``views.num_views``     every ``RepeatedAugment`` / ``DALIViews``'s views
=====================  =====================================================

They set the value on every such transform anywhere in the config (every
dataloader's pipeline, nested transforms included, and the config's own
top-level copies such as ``mask``), e.g.
``python tools/train.py CONFIG --cfg-options mask.teacher_ratio=0.45 views.num_views=2``.
An alias that matches no transform of a dataloader, an unknown alias key or
a value the transform refuses is one clear error naming the config.
"""
from typing import Dict, Tuple

from amd_mmaction.engine.preflight import RunRefused

# alias prefix -> (transform types it reaches, the keys it sets)
ALIASES = {
    'mask': (('AsymmetricTubeMask',), ('student_ratio', 'teacher_ratio', 'mode', 'seed')),
    'views': (('RepeatedAugment', 'DALIViews'), ('num_views',)),
}


def split_aliases(options: dict) -> Tuple[Dict[str, object], Dict[str, object]]:
    """(alias options, the other options) of a ``--cfg-options`` dict."""
    aliases, rest = {}, {}
    for key, value in (options or {}).items():
        (aliases if str(key).split('.')[0] in ALIASES else rest)[key] = value
    return aliases, rest


def _type_name(value) -> str:
    name = value.get('type') if isinstance(value, dict) else None
    return name.split('.')[-1] if isinstance(name, str) else ''


def _walk(node, types, in_loader=False, seen=None):
    """(transform dict, under a dataloader) for every dict of ``types``
    inside ``node`` (dicts, lists, tuples), each once."""
    seen = set() if seen is None else seen
    if isinstance(node, dict):
        if id(node) in seen:
            return
        seen.add(id(node))
        if _type_name(node) in types:
            yield node, in_loader
        for key, value in node.items():
            yield from _walk(value, types, in_loader or str(key).endswith('dataloader'), seen)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _walk(value, types, in_loader, seen)


def _check(transform: dict, options: str, where: str) -> None:
    """Refuse values the transform would refuse when the data set is built
    (at once, before a Runner writes anything)."""
    if _type_name(transform) in ALIASES['views'][0]:
        value = transform.get('num_views')
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RunRefused(f'--cfg-options {options} ({where}): num_views must be an '
                             f'integer >= 1, got {value!r}; e.g. views.num_views=2')
        return
    from mmaction.registry import TRANSFORMS
    try:
        TRANSFORMS.build(dict(transform))
    except (ValueError, TypeError) as err:
        raise RunRefused(f'--cfg-options {options} ({where}): {err}') from err


def apply_aliases(cfg, aliases: dict, source: str = 'the config') -> Dict[str, int]:
    """Set each alias (``mask.teacher_ratio``: value, ...) on every transform
    it names anywhere in ``cfg``; returns, per alias, how many dataloader
    transforms it set. Raises :class:`RunRefused` (one line, naming
    ``source``) for an unknown alias key, an alias that reaches no dataloader
    transform, or values the transform refuses (checked once all are set,
    so ``mask.student_ratio`` and ``mask.teacher_ratio`` may move together)."""
    # the config's own dicts (set in place), dataloaders first: a transform
    # shared with a top-level variable counts as the dataloader's
    root = dict(sorted((cfg if isinstance(cfg, dict) else dict(cfg.items())).items(),
                       key=lambda item: not str(item[0]).endswith('dataloader')))
    done, touched = {}, {}
    for option, value in aliases.items():
        prefix, _, key = str(option).partition('.')
        types, keys = ALIASES[prefix]
        if key not in keys:
            known = ', '.join(f'{p}.{k}' for p, (_, ks) in ALIASES.items() for k in ks)
            raise RunRefused(f'--cfg-options {option}: unknown switch; the named switches '
                             f'are {known} (others are mmengine dotted keys)')
        found = list(_walk(root, types))
        if not any(in_loader for _, in_loader in found):
            raise RunRefused(
                f'--cfg-options {option}: {source} has no {" / ".join(types)} in its '
                'dataloader pipelines, so there is nothing to set'
                + (' (a single-view pipeline: add RepeatedAugment to use views)'
                   if prefix == 'views' else ''))
        for transform, in_loader in found:
            transform[key] = value
            if in_loader:
                touched[id(transform)] = transform
        done[option] = sum(1 for _, in_loader in found if in_loader)
    given = ' '.join(f'{k}={v!r}' for k, v in aliases.items())
    for transform in touched.values():
        _check(transform, given, source)
    return done


def merge_options(cfg, options: dict, source: str = 'the config') -> Dict[str, int]:
    """``cfg.merge_from_dict(options)`` with the named switches of
    :data:`ALIASES` applied after the dotted keys (so they reach a pipeline
    the other options replaced). Returns :func:`apply_aliases`'s counts."""
    aliases, rest = split_aliases(options)
    cfg.merge_from_dict(rest)
    return apply_aliases(cfg, aliases, source)
