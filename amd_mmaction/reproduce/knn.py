"""k-nearest-neighbour accuracy on frozen features (no training).

The weighted k-NN of InstDisc (Wu et al. 2018) as used by DINO: features
are L2-normalised, similarity is the cosine, the k most similar train
clips vote for their label with weight ``exp(sim / temperature)``
(temperature 0.07), and the class with the largest summed weight wins.

Multi-view: the L2-normalised view features of a clip (test and train
alike) are averaged and normalised again, so each clip is one point and
one search (a view vote would let near-duplicate crops of one clip count
several times).
"""
from typing import Optional

import torch
import torch.nn.functional as F


def clip_embeddings(feats: torch.Tensor) -> torch.Tensor:
    """(N, C) or (N, V, C) -> (N, C): normalise each view, average the
    views, normalise again."""
    feats = feats.double()
    if feats.ndim == 2:
        return F.normalize(feats, dim=-1)
    if feats.ndim != 3:
        raise ValueError(f'features must be (N, C) or (N, V, C), got {tuple(feats.shape)}')
    return F.normalize(F.normalize(feats, dim=-1).mean(1), dim=-1)


def knn_predict(train_feats: torch.Tensor, train_labels: torch.Tensor,
                test_feats: torch.Tensor, k: int = 20, temperature: float = 0.07,
                num_classes: Optional[int] = None) -> torch.Tensor:
    """Predicted class of each test clip (see the module docstring).

    ``k`` is clipped to the number of train clips. Ties in the summed
    weight go to the lower class index (deterministic).
    """
    if len(train_feats) != len(train_labels):
        raise ValueError(f'{len(train_feats)} train features but {len(train_labels)} labels')
    if len(train_feats) == 0:
        raise ValueError('no train clips to search')
    if k < 1 or temperature <= 0:
        raise ValueError(f'k must be >= 1 and temperature > 0, got k={k}, '
                         f'temperature={temperature}')
    train, test = clip_embeddings(train_feats), clip_embeddings(test_feats)
    labels = train_labels.long()
    num_classes = num_classes or int(labels.max()) + 1
    sim = test @ train.T  # cosine similarity (N_test, N_train)
    top_sim, top_idx = sim.topk(min(k, len(train)), dim=1)
    votes = torch.zeros(len(test), num_classes, dtype=torch.float64)
    # exp((s - 1) / T): the same ranking as exp(s / T), without overflow.
    votes.scatter_add_(1, labels[top_idx], torch.exp((top_sim - 1) / temperature))
    return votes.argmax(1)


def knn_top1(train_feats: torch.Tensor, train_labels: torch.Tensor,
             test_feats: torch.Tensor, test_labels: torch.Tensor, k: int = 20,
             temperature: float = 0.07, num_classes: Optional[int] = None) -> float:
    """Top-1 accuracy (%) of the weighted k-NN on the test clips."""
    pred = knn_predict(train_feats, train_labels, test_feats, k, temperature, num_classes)
    return 100.0 * float((pred == test_labels.long()).double().mean())
