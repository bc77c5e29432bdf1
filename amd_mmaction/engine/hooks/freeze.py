"""Freezing for linear probing."""
from typing import Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmaction.registry import HOOKS


@HOOKS.register_module()
class FreezeModulesHook(Hook):
    """Sets ``requires_grad=False`` and eval mode on the named sub-modules
    (e.g. ``('backbone',)`` for a linear probe) before training: no gradient
    graph is built through them and the optimizer never updates them."""

    priority = 'VERY_HIGH'

    def __init__(self, modules: Sequence[str] = ('backbone',)):
        self.modules = tuple(modules)

    def _frozen(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        for name in self.modules:
            try:
                yield model.get_submodule(name)
            except AttributeError as err:
                raise KeyError(f'FreezeModulesHook: the model has no sub-module '
                               f'{name!r}') from err

    def before_train(self, runner):
        for m in self._frozen(runner):
            m.requires_grad_(False)
            m.eval()

    def before_train_epoch(self, runner):
        for m in self._frozen(runner):  # runner.model.train() unfreezes modes
            m.eval()
