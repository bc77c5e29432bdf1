"""Pilot runs for protocol v2's teacher design (docs/reproduce.md, "Protocol v2").

Not part of any protocol: a quick, in-memory loop used to choose the teacher's
data, target normalisation, size and mask ratio before protocol v2 was fixed.
It trains the tiny VideoMAE teacher (the real AMDPretrainer built from a
config) on clips decoded once into memory, then reports its masked-pixel loss
on validation clips against the trivial predictor's, and k-NN / linear-probe
accuracy of frozen mean-pooled features. No student is trained here.

    python tools/pilot_teacher.py --target raw --iters 1500 --num-train 600
"""
import argparse
import json
import math
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import amd_mmaction  # noqa: E402,F401
from amd_mmaction.data import synthetic  # noqa: E402
from amd_mmaction.losses.pixel import tubelet_target  # noqa: E402
from amd_mmaction.masks.tube import num_masked, sample_tube_masks  # noqa: E402
from amd_mmaction.student.vit import gather_tokens  # noqa: E402
from amd_mmaction.pretrain.amd import mask_indices  # noqa: E402

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1, 1)


def load_split(data, split):
    import decord
    clips, labels = [], []
    with open(data[split]) as f:
        for line in f:
            rel, label = line.split()
            vr = decord.VideoReader(osp.join(data['root'], rel))
            clips.append(vr.get_batch(list(range(len(vr)))).asnumpy())
            labels.append(int(label))
    return np.stack(clips), np.array(labels)


def sample_batch(clips, idx, rng, frames=8, stride=2, size=64, train=True):
    """Random temporal window + multi-scale crop (train) or centre window."""
    out = []
    total = clips.shape[1]
    for i in idx:
        start = rng.integers(0, total - frames * stride + 1) if train else (total - frames * stride) // 2
        x = torch.from_numpy(clips[i, start:start + frames * stride:stride]).float()  # T H W C
        x = x.permute(3, 0, 1, 2)  # C T H W
        if train:
            H = x.shape[-1]
            s = int(H * rng.choice([1, 0.875, 0.75, 0.66]))
            oy, ox = rng.integers(0, H - s + 1, size=2)
            x = x[..., oy:oy + s, ox:ox + s]
            x = F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False)
        out.append(x)
    return (torch.stack(out) - MEAN) / STD


def targets(model, x, raw):
    pixels = x * STD / 255 + MEAN / 255
    if raw:
        B, C, T, H, W = pixels.shape
        p, t = model.student.patch_size, model.student.tubelet_size
        y = pixels.reshape(B, C, T // t, t, H // p, p, W // p, p)
        return y.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(B, -1, t * p * p * C)
    return tubelet_target(pixels, model.student.tubelet_size, model.student.patch_size)


def recon_loss(model, x, mask, raw):
    vis, msk = mask_indices(~mask), mask_indices(mask)
    latent, _ = model.student(x, vis)
    pred = model.decoder(latent, vis, msk)
    tgt = gather_tokens(targets(model, x, raw), msk)
    loss = F.mse_loss(pred, tgt)
    # trivial predictor: zeros (normalised) or the clip's visible mean colour (raw)
    if raw:
        vt = gather_tokens(targets(model, x, raw), vis)
        C = 3
        mean = vt.reshape(len(x), -1, C).mean(1)  # (B, C)
        triv = mean.repeat(1, tgt.shape[-1] // C).unsqueeze(1).expand_as(tgt)
    else:
        triv = torch.zeros_like(tgt)
    return loss, F.mse_loss(triv, tgt)


def masks_for(n, grid, ratio, rng):
    k = num_masked(ratio, grid[1] * grid[2])
    return torch.stack([torch.as_tensor(sample_tube_masks(grid, k, k, rng)[0])
                        for _ in range(n)]).bool()


@torch.no_grad()
def features(model, clips, rng):
    model.eval()
    feats = []
    for i in range(0, len(clips), 32):
        idx = range(i, min(i + 32, len(clips)))
        x = sample_batch(clips, idx, rng, train=False)
        out, _ = model.student(x)
        feats.append(out.mean(1))
    model.train()
    return torch.cat(feats)


def knn(tr, ytr, te, yte, k=20, T=0.07):
    tr, te = F.normalize(tr, dim=1), F.normalize(te, dim=1)
    sim = te @ tr.T
    s, j = sim.topk(min(k, len(tr)), dim=1)
    w = (s / T).exp()
    votes = torch.zeros(len(te), int(ytr.max()) + 1).scatter_add_(1, ytr[j], w)
    return float((votes.argmax(1) == yte).float().mean() * 100)


def linear_probe(tr, ytr, te, yte, wd=1e-3, iters=300):
    mu, sd = tr.mean(0), tr.std(0) + 1e-6
    tr, te = (tr - mu) / sd, (te - mu) / sd
    n_cls = int(ytr.max()) + 1
    W = torch.zeros(tr.shape[1], n_cls, requires_grad=True)
    b = torch.zeros(n_cls, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=iters, line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(tr @ W + b, ytr) + wd * (W ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    with torch.no_grad():
        return float(((te @ W + b).argmax(1) == yte).float().mean() * 100)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--target', choices=['raw', 'norm'], default='raw')
    p.add_argument('--mask', type=float, default=0.75)
    p.add_argument('--iters', type=int, default=1000)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--lr', type=float, default=1.5e-3)
    p.add_argument('--num-train', type=int, default=600)
    p.add_argument('--num-val', type=int, default=192)
    p.add_argument('--width', type=int, default=128)
    p.add_argument('--depth', type=int, default=6)
    p.add_argument('--heads', type=int, default=4)
    p.add_argument('--data-root', default='/tmp/pilot_data')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--eval-every', type=int, default=500)
    p.add_argument('--threads', type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    root = osp.join(a.data_root, f'n{a.num_train}_v{a.num_val}')
    if not osp.exists(osp.join(root, 'val.txt')):
        synthetic.make_motion_dataset(root, a.num_train, a.num_val, seed=1000)
    data = dict(root=osp.join(root, 'videos'), train=osp.join(root, 'train.txt'),
                val=osp.join(root, 'val.txt'))
    ctr, ytr = load_split(data, 'train')
    cva, yva = load_split(data, 'val')
    ytr, yva = torch.as_tensor(ytr), torch.as_tensor(yva)

    from mmengine.config import Config
    from mmaction.registry import MODELS
    from mmaction.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(osp.join(ROOT, 'configs/tiny/videomae_teacher_tiny_motion.py'))
    cfg.model.student.update(embed_dims=a.width, depth=a.depth, num_heads=a.heads)
    model = MODELS.build(cfg.model)
    grid = model.student.grid
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.05)
    warm = max(1, a.iters // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1, (i + 1) / warm) * (
        0.5 * (1 + math.cos(math.pi * min(1.0, max(0, i - warm) / max(1, a.iters - warm))))))
    vrng = np.random.default_rng(123)
    xv = sample_batch(cva, range(len(cva)), vrng, train=False)
    mv = masks_for(len(cva), grid, a.mask, vrng)
    t0 = time.time()
    hist = []
    for it in range(1, a.iters + 1):
        idx = rng.integers(0, len(ctr), a.batch)
        x = sample_batch(ctr, idx, rng)
        m = masks_for(a.batch, grid, a.mask, rng)
        loss, _ = recon_loss(model, x, m, a.target == 'raw')
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if it % a.eval_every == 0 or it == a.iters:
            with torch.no_grad():
                model.eval()
                lv, tv = recon_loss(model, xv, mv, a.target == 'raw')
                model.train()
            erng = np.random.default_rng(7)
            ftr, fva = features(model, ctr, erng), features(model, cva, erng)
            row = dict(it=it, sec=round(time.time() - t0), train=float(loss), val=float(lv),
                       trivial=float(tv), ratio=float(lv / tv), knn=knn(ftr, ytr, fva, yva),
                       probe=linear_probe(ftr, ytr, fva, yva))
            hist.append(row)
            print(json.dumps(row), flush=True)
    rng0 = np.random.default_rng(7)
    rand = MODELS.build(cfg.model)
    ftr, fva = features(rand, ctr, rng0), features(rand, cva, rng0)
    print(json.dumps(dict(random_init=True, knn=knn(ftr, ytr, fva, yva),
                          probe=linear_probe(ftr, ytr, fva, yva))), flush=True)


if __name__ == '__main__':
    main()
