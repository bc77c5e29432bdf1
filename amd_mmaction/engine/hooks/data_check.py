"""Labels of a run's data sets checked against its model before the first
iteration.

mmaction2's data sets never see the model: a list label outside the
classifier's ``cls_head.num_classes`` (or -1, mmaction2's mark for a line
without a label) fails deep in mixup's ``one_hot`` or in the loss, naming
no file, or silently skews a test metric. :class:`DataListCheckHook` runs
at ``before_run``, when the runner has built the data sets it will use
(train + val in ``train()``, test in ``test()``) and before any iteration.
"""
import numbers
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmaction.registry import HOOKS
from amd_mmaction.data.lists import MAX_REPORTED


def leaf_datasets(dataset) -> list:
    """The data sets inside mmengine's Concat/Repeat/ClassBalanced wrappers."""
    children = getattr(dataset, 'datasets', None)
    if children is None and hasattr(dataset, 'dataset'):
        children = [dataset.dataset]
    if children is None:
        return [dataset]
    return [leaf for child in children for leaf in leaf_datasets(child)]


def _bad_label(label, num_classes: int, no_label_mark: Optional[int]) -> Optional[str]:
    labels = label if isinstance(label, (list, tuple)) else [label]
    for v in labels:
        if not isinstance(v, numbers.Integral):
            return f'label {v!r} is not an integer'
        if no_label_mark is not None and v == no_label_mark:
            return 'the line has no label'
        if not 0 <= v < num_classes:
            return f'label {v} is outside 0..{num_classes - 1}'
    return None


def label_errors(dataset, num_classes: int, where: str) -> List[str]:
    """One message per item whose label is not in ``[0, num_classes)``,
    naming ``file:line`` when the data set kept it (``list_line``,
    :class:`RobustVideoDataset`), else the item and its file."""
    if getattr(dataset, '_fully_initialized', True) is False:
        dataset.full_init()
    ann = getattr(dataset, 'ann_file', '') or ''
    if getattr(dataset, 'multi_class', False):  # labels become one-hot of this size
        n = dataset.num_classes
        return [] if n == num_classes else [
            f'{where}.dataset.num_classes={n} ({ann}) but model.cls_head.num_classes='
            f'{num_classes}: the multi-class targets would not match the logits']
    # mmaction2's list parsers give a line with only a path the label -1; a data set
    # that refuses such lines itself sets LINE_WITHOUT_LABEL = None (-1 is then literal)
    no_label_mark = getattr(dataset, 'LINE_WITHOUT_LABEL', -1)
    errors = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        if 'label' not in info:
            continue
        line = info.get('list_line')
        problem = _bad_label(info['label'], num_classes, no_label_mark if line else None)
        if problem is None:
            continue
        place = f'{ann}:{line}' if ann and line else \
            f'{where} item {i} ({info.get("filename", info.get("img_path", "?"))})'
        errors.append(f'{place}: {problem} ({where}; model.cls_head.num_classes={num_classes},'
                      f' expected a label in [0, {num_classes}))')
    return errors


def blending_errors(model, num_classes: int) -> List[str]:
    """Mixup/CutMix ``num_classes`` that differ from the head's (their
    one-hot targets would not match the logits)."""
    blending = getattr(getattr(model, 'data_preprocessor', None), 'blending', None)
    if blending is None:
        return []
    augments = getattr(blending, 'augments', [blending])
    return [f'model.data_preprocessor.blending: {type(a).__name__}.num_classes='
            f'{a.num_classes} but model.cls_head.num_classes={num_classes}'
            for a in augments
            if getattr(a, 'num_classes', None) not in (None, num_classes)]


@HOOKS.register_module()
class DataListCheckHook(Hook):
    """Raise ``ValueError`` before the first iteration when a label of the
    run's data sets is outside the model's ``cls_head.num_classes`` (each
    bad item named, at most ``MAX_REPORTED``), or a blending augment has
    another ``num_classes``. Models without a classification head
    (pre-training) are left alone."""

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        num_classes = getattr(getattr(model, 'cls_head', None), 'num_classes', None)
        if not num_classes:
            return
        errors = blending_errors(model, num_classes)
        for where, attr in (('train_dataloader', '_train_loop'), ('val_dataloader', '_val_loop'),
                            ('test_dataloader', '_test_loop')):
            loop = getattr(runner, attr, None)
            if loop is None or isinstance(loop, dict):  # not built for this run
                continue
            for ds in leaf_datasets(loop.dataloader.dataset):
                errors += label_errors(ds, num_classes, where)
        if errors:
            more = (f'\n... and {len(errors) - MAX_REPORTED} more'
                    if len(errors) > MAX_REPORTED else '')
            raise ValueError(f'{len(errors)} data/model mismatches found before the run:\n'
                             + '\n'.join(errors[:MAX_REPORTED]) + more)
