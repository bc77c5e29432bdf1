"""Linear probe on frozen features: multinomial logistic regression.

Features are standardised with the train statistics (per dimension), then
``W x + b`` is fitted by full-batch L-BFGS (strong Wolfe line search,
float64) on the mean cross-entropy + ``l2 * ||W||^2`` (the bias is not
penalised), for a fixed number of iterations from zero weights. The problem
is convex and starts from zeros: no randomness is involved, so the result
is deterministic for given features (no seed to set).

Multi-view features (N, V, C): each train view is a separate sample; a test
clip's class probabilities are averaged over its views (mmaction2's
``average_clips='prob'``).
"""
from typing import Dict, Optional

import torch
import torch.nn.functional as F


def _views(feats: torch.Tensor, name: str) -> torch.Tensor:
    if feats.ndim == 2:
        feats = feats[:, None]
    if feats.ndim != 3:
        raise ValueError(f'{name} features must be (N, C) or (N, V, C), '
                         f'got {tuple(feats.shape)}')
    return feats.double()


def linear_probe(train_feats: torch.Tensor, train_labels: torch.Tensor,
                 test_feats: torch.Tensor, test_labels: torch.Tensor,
                 num_classes: Optional[int] = None, l2: float = 1e-3,
                 iters: int = 100) -> Dict[str, float]:
    """Fit on the train clips, evaluate on the test clips.

    Returns dict(top1, train_top1) in %, both per clip with view-averaged
    probabilities, the final training ``loss`` and ``pred``: the predicted
    class of every test clip (a list, in the test clips' order).
    """
    tr, te = _views(train_feats, 'train'), _views(test_feats, 'test')
    if tr.shape[-1] != te.shape[-1]:
        raise ValueError(f'train features have {tr.shape[-1]} dims, test {te.shape[-1]}')
    if len(tr) != len(train_labels) or len(te) != len(test_labels):
        raise ValueError(f'features/labels differ in length: train {len(tr)}/'
                         f'{len(train_labels)}, test {len(te)}/{len(test_labels)}')
    y = train_labels.long()
    num_classes = num_classes or int(max(y.max(), test_labels.max())) + 1
    flat = tr.reshape(-1, tr.shape[-1])
    mean, std = flat.mean(0), flat.std(0).clamp_min(1e-8)  # constant dims stay 0
    x = (flat - mean) / std
    y_views = y.repeat_interleave(tr.shape[1])
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=iters, history_size=20,
                            tolerance_grad=1e-9, tolerance_change=1e-12,
                            line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y_views) + l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)  # returns the first loss; the final one is below
    with torch.no_grad():
        loss = float(F.cross_entropy(x @ w + b, y_views) + l2 * (w * w).sum())

    def predict(feats):
        with torch.no_grad():
            z = (feats - mean) / std
            return torch.softmax(z @ w + b, -1).mean(1).argmax(1)  # average over views

    def top1(pred, labels):
        return 100.0 * float((pred == labels.long()).double().mean())

    pred = predict(te)
    return dict(top1=top1(pred, test_labels), train_top1=top1(predict(tr), y), loss=loss,
                pred=pred.tolist())
