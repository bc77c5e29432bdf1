"""Classification head for training batches that hold several augmented
views of each video (``RepeatedAugment`` in the fine-tuning pipeline, the
authors' ``--num_sample 2``).

mmaction2's ``Recognizer3D`` flattens ``(B, V, C, T, H, W)`` into ``B * V``
clips (video-major), but its heads compare the ``B * V`` scores with ``B``
labels. The authors' ``multiple_samples_collate`` gives every view its
video's label: so does this head. Mixup/cutmix labels (set on the data
samples by the data preprocessor) are repeated the same way.
"""
from typing import Dict

import torch

from mmaction.models.heads import TimeSformerHead
from mmaction.registry import MODELS


@MODELS.register_module()
class MultiViewTimeSformerHead(TimeSformerHead):
    """``TimeSformerHead`` whose training loss repeats each label per view.

    Same arguments as ``TimeSformerHead``; with one view it is identical.
    """

    def loss_by_feat(self, cls_scores: torch.Tensor, data_samples) -> Dict:
        views, rest = divmod(cls_scores.size(0), len(data_samples))
        if rest or not views:
            raise ValueError(
                f'{type(self).__name__}: {cls_scores.size(0)} clip scores for '
                f'{len(data_samples)} videos; expected a whole number of '
                'views per video (RepeatedAugment num_views)')
        if views > 1:
            # video-major, as Recognizer3D flattens (B, V, ...) into B * V
            data_samples = [s for s in data_samples for _ in range(views)]
        return super().loss_by_feat(cls_scores, data_samples)
