"""``DumpResultsJSON``: mmengine's ``DumpResults`` (``tools/test.py --dump
x.pkl``) as JSON, for readers that must not unpickle files (a pickle can run
code when loaded; this project refuses untrusted pickles elsewhere).

One object per test sample, in data set order (mmengine collects the ranks'
results back into that order): every field of the predicted data sample,
tensors and arrays as (nested) lists, e.g. ``pred_score`` (class scores),
``pred_label``, ``gt_label``.
"""
import json
import os
import os.path as osp
from typing import Any, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from mmaction.registry import METRICS


def to_jsonable(x: Any) -> Any:
    if isinstance(x, BaseDataElement):
        x = x.to_dict()
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return repr(x)  # not data: keep a trace rather than fail the whole dump


@METRICS.register_module()
class DumpResultsJSON(BaseMetric):
    """Write predictions to ``out_file_path`` (``.json``) on rank 0."""

    def __init__(self, out_file_path: str, collect_device: str = 'cpu',
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, collect_dir=collect_dir)
        if not out_file_path.endswith('.json'):
            raise ValueError(f'DumpResultsJSON: out_file_path {out_file_path!r} '
                             'must end with .json')
        self.out_file_path = out_file_path

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        self.results.extend(to_jsonable(list(data_samples)))

    def compute_metrics(self, results: list) -> dict:
        os.makedirs(osp.dirname(osp.abspath(self.out_file_path)), exist_ok=True)
        with open(self.out_file_path, 'w') as f:
            json.dump(results, f)
        print_log(f'{len(results)} predictions written to {self.out_file_path}',
                  logger='current')
        return {}
