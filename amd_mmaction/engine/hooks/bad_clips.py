"""Data-health figures in the training log."""
from collections import Counter

from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmaction.registry import HOOKS


def robust_datasets(dataset) -> list:
    """Data sets with a bad-clip policy inside ``dataset`` (also through
    mmengine's Concat/Repeat/ClassBalanced wrappers)."""
    if hasattr(dataset, 'policy') and hasattr(dataset, 'bad_clips'):
        return [dataset]
    children = getattr(dataset, 'datasets', None) or [getattr(dataset, 'dataset', None)]
    return [d for child in children if child is not None for d in robust_datasets(child)]


@HOOKS.register_module()
class BadClipLogHook(Hook):
    """Puts the bad clips met by the training data set(s), DataLoader worker
    processes included, into the training log: ``bad_clips`` (this run's
    total) beside the losses in every log line and in ``scalars.json``, and
    the count per reason after each epoch. A resumed run counts from 0."""

    priority = 'NORMAL'  # ahead of LoggerHook (BELOW_NORMAL), which writes the line
    datasets: tuple = ()  # set in before_train

    def before_train(self, runner):
        # the training data sets do not change during the run: find them once
        self.datasets = robust_datasets(runner.train_loop.dataloader.dataset)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.datasets:
            runner.message_hub.update_scalar('train/bad_clips',
                                             sum(d.policy.total for d in self.datasets))

    def after_train_epoch(self, runner):
        if not self.datasets:
            return
        counts = Counter()
        for d in self.datasets:
            counts.update(d.bad_clips)
        print_log(f'epoch {runner.epoch + 1}: {sum(counts.values())} bad clips so far in this run'
                  f' {dict(counts)}', logger='current')
