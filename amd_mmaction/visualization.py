"""Pictures of a pre-training run: what the student saw and rebuilt, and
the loss curves.

``reconstruction_grid`` draws one clip as rows of frames:

1. the input frames;
2. the student's visible tokens (everything else grey);
3. the teacher-only "diff" tokens: seen by the teacher, hidden from the
   student (AMD's asymmetric masks; empty for VideoMAE/DMAE masks);
4. the tokens masked from the student;
5. the reconstruction: the decoder's predicted tubelets, which are
   normalised, un-normalised with each tubelet's own mean/std taken from
   the input (the loss's target statistics), and the visible tokens pasted
   from the input.

``plot_loss_curves`` reads mmengine's ``vis_data/scalars.json`` files (one
per run; a resumed run adds one) and plots the loss terms per iteration.
"""
import copy
import glob
import json
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch

GREY = 0.5  # 0-1 value of tokens that a row does not show
ROWS = ('input', 'student visible', 'teacher only (diff)', 'masked from student',
        'reconstruction')


# -- model and clip -------------------------------------------------------------
def _find(transforms, name):
    """First transform config of type ``name`` (descending into
    RepeatedAugment) in a pipeline config."""
    for t in transforms:
        if t.get('type') == name:
            return t
        found = _find(t.get('transforms', []), name)
        if found is not None:
            return found
    return None


def load_pretrainer(config, checkpoint: Optional[str] = None, device: str = 'cpu'):
    """Build the config's AMDPretrainer without its teacher (not needed to
    reconstruct, and its file may be elsewhere) and load ``checkpoint``.

    Returns (model, cfg). Every student and decoder weight must be in the
    checkpoint.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmaction.registry import MODELS
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    init_default_scope('mmaction')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.teacher = None
    model_cfg.alignment = None
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        from amd_mmaction.weights.io import load_local_checkpoint
        ckpt = load_local_checkpoint(checkpoint, map_location='cpu')
        state = ckpt.get('state_dict', ckpt)
        state = {k[len('module.'):] if k.startswith('module.') else k: v
                 for k, v in state.items()}
        own = model.state_dict()
        missing = sorted(set(own) - set(state))
        if missing:
            raise ValueError(f'checkpoint {checkpoint!r} lacks {len(missing)} weights of the '
                             f'student/decoder, e.g. {missing[:5]}: is it a pre-training '
                             'checkpoint of this config?')
        bad = [f'{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}'
               for k, v in own.items() if state[k].shape != v.shape]
        if bad:
            raise ValueError(f'checkpoint {checkpoint!r} does not fit {config}: {bad[:4]}')
        model.load_state_dict({k: state[k] for k in own})
    return model.to(device).eval(), cfg


def clip_pipeline(cfg, seed: int = 0) -> List[dict]:
    """A deterministic version of the config's training pipeline: the same
    frame sampling and masks, a centre crop instead of random crops, one
    view."""
    train = cfg.train_dataloader.dataset.pipeline
    student = cfg.model.student
    size = int(student.img_size)
    sample = copy.deepcopy(_find(train, 'SampleFrames')
                           or dict(type='SampleFrames', clip_len=student.num_frames,
                                   frame_interval=2, num_clips=1))
    sample.update(test_mode=True, num_clips=1)
    mask = copy.deepcopy(_find(train, 'AsymmetricTubeMask'))
    if mask is None:
        raise ValueError('the config pipeline has no AsymmetricTubeMask to take the masks from')
    mask['seed'] = seed
    return [dict(type='DecordInit'), sample, dict(type='DecordDecode'),
            dict(type='Resize', scale=(-1, size)), dict(type='CenterCrop', crop_size=size),
            dict(type='FormatShape', input_format='NCTHW'), mask,
            dict(type='PackActionInputs', algorithm_keys=('mask_stu', 'mask_tea'),
                 meta_keys=('img_shape', 'filename'))]


@torch.no_grad()
def reconstruct_clip(model, sample: dict) -> Dict[str, np.ndarray]:
    """Run the student and decoder on one packed sample; return 0-1 frame
    arrays (T, H, W, 3) for each row of the grid."""
    data = model.data_preprocessor(dict(inputs=[sample['inputs']],
                                        data_samples=[sample['data_samples']]), False)
    x = data['inputs'].flatten(0, 1) if data['inputs'].ndim == 6 else data['inputs']
    out = model(data['inputs'], data['data_samples'], mode='tensor')
    ds = data['data_samples'][0]
    head = model.head
    pixels = model.pixels(x)[:1].float().clamp(0, 1)  # (1, C, T, H, W)
    tok = head.patchify(pixels)[0]  # (N, P, C)
    mask_stu = torch.as_tensor(np.asarray(ds.mask_stu)).reshape(-1).bool()
    mask_tea = torch.as_tensor(np.asarray(ds.mask_tea)).reshape(-1).bool()
    if mask_stu.numel() != tok.shape[0]:  # several views: the first one
        mask_stu, mask_tea = mask_stu[:tok.shape[0]], mask_tea[:tok.shape[0]]
    recon = tok.clone()
    idx = out['mask_idx'][0]
    recon[idx] = head.unnormalise(out['pred'][0].float(), tok[idx]).clamp(0, 1)

    def only(keep):
        t = torch.full_like(tok, GREY)
        t[keep] = tok[keep]
        return t
    rows = {'input': tok, 'student visible': only(~mask_stu),
            'teacher only (diff)': only(mask_stu & ~mask_tea),
            'masked from student': only(mask_stu), 'reconstruction': recon}
    return {k: head.unpatchify(v[None], pixels.shape[1:])[0].permute(1, 2, 3, 0).numpy()
            for k, v in rows.items()}


# -- drawing --------------------------------------------------------------------
def grid_image(rows: Dict[str, np.ndarray], scale: int = 3, gap: int = 2,
               label_width: int = 170) -> np.ndarray:
    """Compose rows of frames (each (T, H, W, 3), 0-1) into one uint8 RGB
    image with a label column. Size: (len(rows) * (H*scale + gap) + gap,
    label_width + T * (W*scale + gap) + gap)."""
    import cv2
    names = list(rows)
    T, H, W, _ = rows[names[0]].shape
    h, w = H * scale, W * scale
    out = np.full((len(names) * (h + gap) + gap, label_width + T * (w + gap) + gap, 3),
                  255, np.uint8)
    for r, name in enumerate(names):
        y = gap + r * (h + gap)
        for t in range(T):
            frame = (np.clip(rows[name][t], 0, 1) * 255).round().astype(np.uint8)
            x = label_width + gap + t * (w + gap)
            out[y:y + h, x:x + w] = cv2.resize(frame, (w, h), interpolation=cv2.INTER_NEAREST)
        for i, part in enumerate(_wrap(name, 16)):
            cv2.putText(out, part, (6, y + h // 2 - 8 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX,
                        0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def _wrap(text: str, width: int) -> List[str]:
    lines, cur = [], ''
    for word in text.split():
        if cur and len(cur) + 1 + len(word) > width:
            lines.append(cur)
            cur = word
        else:
            cur = f'{cur} {word}'.strip()
    return lines + [cur]


def save_png(image: np.ndarray, path: str) -> str:
    import cv2
    if not cv2.imwrite(path, image[..., ::-1]):
        raise OSError(f'could not write {path!r}')
    return path


def reconstruction_png(config, checkpoint: Optional[str], video: str, out: str,
                       seed: int = 0, scale: int = 3) -> np.ndarray:
    """The whole tool: model + clip -> PNG grid at ``out``; returns the image."""
    from mmaction.registry import TRANSFORMS
    from mmcv.transforms import Compose
    if not osp.isfile(video):
        raise FileNotFoundError(f'video {video!r} does not exist')
    model, cfg = load_pretrainer(config, checkpoint)
    pipeline = Compose([TRANSFORMS.build(t) for t in clip_pipeline(cfg, seed)])
    sample = pipeline(dict(filename=video, start_index=0, modality='RGB'))
    image = grid_image(reconstruct_clip(model, sample), scale=scale)
    save_png(image, out)
    return image


# -- loss curves ------------------------------------------------------------------
def read_scalars(paths: Iterable[str]) -> Dict[str, Dict[int, float]]:
    """{key: {iteration: value}} from mmengine ``scalars.json`` files, work
    dirs or run folders. Runs are read in time order (folder names are
    timestamps), so a resumed run's values replace the killed run's."""
    files = []
    for p in paths:
        if osp.isdir(p):
            found = sorted(glob.glob(osp.join(p, 'vis_data', 'scalars.json'))
                           + glob.glob(osp.join(p, '*', 'vis_data', 'scalars.json')))
            if not found:
                raise FileNotFoundError(f'no vis_data/scalars.json under {p!r}')
            files += found
        elif osp.isfile(p):
            files.append(p)
        else:
            raise FileNotFoundError(f'log {p!r} does not exist')
    series: Dict[str, Dict[int, float]] = {}
    for f in files:
        for n, line in enumerate(open(f), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:  # a run killed mid-line
                if n == sum(1 for _ in open(f)):
                    continue
                raise ValueError(f'{f}:{n} is not JSON: {err}') from None
            step = rec.get('step', rec.get('iter'))
            if step is None:
                continue
            for k, v in rec.items():
                if isinstance(v, (int, float)) and k not in ('step', 'iter', 'epoch'):
                    series.setdefault(k, {})[int(step)] = float(v)
    return series


def plot_loss_curves(paths: Sequence[str], out: str, keys: Optional[Sequence[str]] = None,
                     size=(8.0, 4.5), dpi: int = 100, title: Optional[str] = None) -> str:
    """Plot ``keys`` (default: every ``loss_*`` term, and ``loss``, their
    sum, when there are several) against the iteration,
    with the learning rate on a second axis; writes a ``size * dpi`` PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    series = read_scalars(paths)
    if not keys:  # the terms, and their total only when there are several
        keys = sorted(k for k in series if k.startswith('loss_'))
        keys = (['loss'] if len(keys) > 1 and 'loss' in series else []) + keys \
            or [k for k in series if k == 'loss']
    absent = [k for k in keys if k not in series]
    if absent or not keys:
        raise KeyError(f'logs {list(paths)} have no {absent or "loss"} values; '
                       f'they have {sorted(series)}')
    fig, ax = plt.subplots(figsize=size, dpi=dpi)
    for k in keys:
        it = sorted(series[k])
        ax.plot(it, [series[k][i] for i in it], label=k, linewidth=1)
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ax.grid(alpha=0.3)
    if 'lr' in series:
        ax2 = ax.twinx()
        it = sorted(series['lr'])
        ax2.plot(it, [series['lr'][i] for i in it], color='grey', linestyle='--',
                 linewidth=1, label='lr')
        ax2.set_ylabel('learning rate')
        ax2.ticklabel_format(axis='y', style='sci', scilimits=(0, 0))
        lines, labels = ax.get_legend_handles_labels()
        l2, lb2 = ax2.get_legend_handles_labels()
        ax.legend(lines + l2, labels + lb2, loc='upper right', fontsize=8)
    else:
        ax.legend(loc='upper right', fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
