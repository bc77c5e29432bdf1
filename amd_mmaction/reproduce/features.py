"""Frozen clip features of a pre-trained (or freshly initialised) encoder.

Every clip of an mmaction2 ``VideoDataset`` list is decoded with decord
through the *test* pipeline of a fine-tuning config (by default the installed
``configs/tiny/finetune_tiny_motion.py``: 2 clips x 3 crops), so the frame
sampling and crops of the evaluations live in that one config. Each view is
encoded with all its tokens visible; its feature is the **mean over all
tokens of the encoder's final output, after the encoder's final LayerNorm**
(the tokens mmaction2's ``VisionTransformer`` mean-pools before its
``fc_norm`` in fine-tuning).
"""
import copy
import os.path as osp
from typing import Iterator, Optional, Tuple

import torch

from amd_mmaction.config_files import config_file

VIEWS_CONFIG = config_file('tiny/finetune_tiny_motion.py')


def views_pipeline(views_config: str = VIEWS_CONFIG) -> list:
    """The ``test_pipeline`` of ``views_config`` (sampling, resize, crops)."""
    from mmengine.config import Config
    cfg = Config.fromfile(views_config)
    if 'test_pipeline' not in cfg:
        raise KeyError(f'{views_config} defines no test_pipeline (the multi-view '
                       'sampling and crops the evaluations use)')
    return [dict(t) for t in cfg.test_pipeline]


def iter_clips(ann_file: str, data_prefix: str, views_config: str = VIEWS_CONFIG,
               batch_size: int = 8) -> Iterator[Tuple[list, torch.Tensor]]:
    """Yield (list of B uint8 tensors (V, C, T, H, W), labels (B,)) in the
    order of ``ann_file``, decoded by the real mmaction2 pipeline."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmaction.registry import DATASETS
    for path in (ann_file, data_prefix):
        if not osp.exists(path):
            raise FileNotFoundError(f'{path!r} does not exist (ann_file / data_prefix)')
    init_default_scope('mmaction')
    ds = DATASETS.build(dict(type='VideoDataset', ann_file=ann_file,
                             data_prefix=dict(video=data_prefix),
                             pipeline=views_pipeline(views_config), test_mode=True))
    if len(ds) == 0:
        raise ValueError(f'{ann_file} lists no clips')
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False,
                                         num_workers=0, collate_fn=pseudo_collate)
    for batch in loader:
        labels = torch.stack([s.gt_label.reshape(()) for s in batch['data_samples']])
        yield batch['inputs'], labels.long()


def pretrain_config(config=None, checkpoint: Optional[str] = None,
                    cfg_options: Optional[dict] = None):
    """The pre-training config of a model, as an mmengine ``Config``.

    ``config``: a path or a ``Config``; None takes the config the
    checkpoint was trained with (mmengine saves it in ``meta.cfg``), which
    carries the options it was trained with (``target_norm``, mask ratio).
    ``cfg_options``: dotted overrides merged on top.
    """
    from mmengine.config import Config
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    elif config is not None:
        cfg = Config.fromfile(config)
    elif checkpoint is None:
        raise ValueError('give a pre-training config, a checkpoint, or both')
    else:
        from amd_mmaction.weights.io import load_checkpoint_file  # the safe loader (allow-list)
        ckpt = load_checkpoint_file(checkpoint, map_location='cpu')
        meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
        if not isinstance(meta, dict) or 'cfg' not in meta:
            raise ValueError(f'{checkpoint} carries no training config (meta.cfg): '
                             'pass the pre-training config')
        cfg = Config.fromstring(meta['cfg'], '.py')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def config_name(config, checkpoint: Optional[str] = None) -> str:
    """How errors name a config given as a path, a Config or None."""
    if config is None:
        return f'the config saved in {checkpoint}'
    if isinstance(config, str):
        return config
    return getattr(config, 'filename', None) or '<an unnamed Config>'


def _model_cfg(cfg, source) -> dict:
    model = cfg.model.to_dict()
    if model.get('type') != 'AMDPretrainer':
        raise ValueError(f'{source}: model.type is {model.get("type")!r}, expected '
                         "'AMDPretrainer' (a pre-training config of this project)")
    # Only the student encoder and its decoder are evaluated: no teacher
    # checkpoint is needed and alignment weights are not built.
    return dict(model, teacher=None, alignment=None)


def build_pretrainer(config=None, checkpoint: Optional[str] = None,
                     init_seed: int = 0, cfg_options: Optional[dict] = None
                     ) -> torch.nn.Module:
    """The ``AMDPretrainer`` of a pre-training config (see
    :func:`pretrain_config`; student encoder + pixel decoder, teacher and
    alignment left out), in eval mode.

    ``checkpoint``: a pre-training checkpoint of this project (keys
    ``student.*``, ``decoder.*``; ``aligner.*`` is ignored), loaded strictly.
    None: fresh weights drawn under ``torch.manual_seed(init_seed)`` (the
    random-encoder control), without touching the global RNG.
    """
    import amd_mmaction  # noqa: F401  (registers the model)
    from mmengine.registry import init_default_scope
    from mmaction.registry import MODELS
    from amd_mmaction.weights.formats import read_checkpoint
    init_default_scope('mmaction')  # the config's types are mmaction's
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = MODELS.build(_model_cfg(pretrain_config(config, checkpoint, cfg_options),
                                        config_name(config, checkpoint)))
    if checkpoint is not None:
        state = read_checkpoint(checkpoint)
        if not any(k.startswith('student.') for k in state):
            raise ValueError(f'{checkpoint}: no student.* keys (first keys '
                             f'{sorted(state)[:5]}); expected a pre-training '
                             'checkpoint of this project (AMDPretrainer)')
        state = {k: v for k, v in state.items() if not k.startswith('aligner.')}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f'{checkpoint} does not fit the model of '
                             f'{config_name(config, checkpoint)}: '
                             f'{err}') from err
    return model.eval()


@torch.no_grad()
def encode_views(model: torch.nn.Module, clips: list) -> torch.Tensor:
    """B uint8 clips (V, C, T, H, W) -> (B, V, C_enc) features: the model's
    own data preprocessor, every token visible, mean over tokens of the
    final-normed output."""
    data = model.data_preprocessor(dict(inputs=clips, data_samples=None), training=False)
    x = data['inputs']  # (B, V, C, T, H, W), normalised as in pre-training
    tokens, _ = model.student(x.flatten(0, 1))
    return tokens.mean(1).reshape(x.shape[0], x.shape[1], -1).float()


def extract_features(ann_file: str, data_prefix: str, config=None,
                     checkpoint: Optional[str] = None, init_seed: int = 0,
                     views_config: str = VIEWS_CONFIG, batch_size: int = 8,
                     cfg_options: Optional[dict] = None
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Frozen features of every clip in ``ann_file``.

    Args:
        ann_file, data_prefix: an mmaction2 VideoDataset list and its video folder.
        config: the pre-training config that built the encoder (the tiny AMD
            / VideoMAE student config, or the tiny teacher config; a path or
            a ``Config``); None: the one saved in ``checkpoint``.
        checkpoint: its pre-training checkpoint; None = fresh encoder
            (seeded by ``init_seed``), the random-teacher control.
        views_config: config whose ``test_pipeline`` samples the views.
        cfg_options: dotted overrides of ``config``.

    Returns (features (N, V, C) float32, labels (N,) long), N clips in
    ``ann_file`` order, V views (clips x crops) each.
    """
    model = build_pretrainer(config, checkpoint, init_seed, cfg_options)
    feats, labels = [], []
    for clips, y in iter_clips(ann_file, data_prefix, views_config, batch_size):
        feats.append(encode_views(model, clips))
        labels.append(y)
    return torch.cat(feats), torch.cat(labels)
