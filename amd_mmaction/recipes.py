"""The published training recipes, in one table, and the numbers a config
resolves to at the authors' scale (tests/test_published_recipes.py checks
every shipped config against it; docs/transfer.md has the side-by-side).

Sources (read for facts): the AMD authors' scripts (MCG-NJU/AMD
``scripts/{pretrain,finetune}/slurm_train/*.sh``, ``run_amd_pretrain.py``,
``run_class_finetuning.py``, ``models/modeling_finetune.py``); MAE
(facebookresearch/mae ``FINETUNE.md``, ``PRETRAIN.md``, ``main_finetune.py``)
for the image setting, which the AMD repository does not script.

lr rule everywhere: ``lr = base_lr x gpus x per_gpu / 256`` where ``per_gpu``
counts decoded videos (or images), never their augmented views; the min lr
scales the same way unless ``min_lr_scaled`` is False (MAE).
"""
from dataclasses import dataclass
from typing import Optional, Tuple

AMD = 'MCG-NJU/AMD '
MAE = 'facebookresearch/mae '


@dataclass(frozen=True)
class Recipe:
    source: str              # the script followed, or 'ours: why'
    published: bool          # the authors' own setting (not a variant of ours)
    base_lr: float           # per 256 decoded videos / images
    min_lr: float            # per 256 as well when min_lr_scaled
    gpus: int                # authors' GPU count (lr checked there)
    per_gpu: int             # decoded videos / images per GPU
    views: int               # augmented views per decoded video
    epochs: int
    warmup: int
    min_lr_scaled: bool = True
    # (width, depth, teacher taps), student taps; None for no teacher
    teacher: Optional[Tuple[int, int, Tuple[int, int]]] = None
    student_taps: Optional[Tuple[int, int]] = None
    teacher_checkpoint: Optional[str] = None
    head_init_std: Optional[float] = None   # fine-tuning head weight std
    layer_decay: Optional[float] = None
    drop_path: Optional[float] = None
    test_views: Optional[Tuple[int, int]] = None  # clips x crops

    def lr_at_scale(self) -> float:
        return self.base_lr * self.gpus * self.per_gpu / 256

    def min_lr_at_scale(self) -> float:
        scale = self.gpus * self.per_gpu / 256 if self.min_lr_scaled else 1
        return self.min_lr * scale


VIT_L = (1024, 24, (12, 24))
VIT_B = (768, 12, (6, 12))


def _pretrain(script, published=True, **kw):
    return Recipe(source=script, published=published, base_lr=1.2e-3,
                  min_lr=1e-5, gpus=32, per_gpu=16, views=4, epochs=200,
                  warmup=10, **kw)


def _finetune(script, gpus, lr, epochs, test_views, published=True):
    return Recipe(source=script, published=published, base_lr=lr, min_lr=1e-6,
                  gpus=gpus, per_gpu=16, views=2, epochs=epochs, warmup=5,
                  head_init_std=0.02 * 0.001, layer_decay=0.75, drop_path=0.1,
                  test_views=test_views)


_PT = AMD + 'scripts/pretrain/slurm_train/'
_FT = AMD + 'scripts/finetune/slurm_train/'
_L = 'checkpoints/videomae_vit-l_{}_pretrain.pth'
_B = 'checkpoints/videomae_vit-b_{}_pretrain.pth'

# config path under configs/ -> recipe
RECIPES = {
    'pretrain/amd_vit-s_vit-l-teacher_16x224_ssv2.py': _pretrain(
        _PT + 'vits_ssv2_pt.sh', teacher=VIT_L, student_taps=(6, 12),
        teacher_checkpoint=_L.format('ssv2')),
    'pretrain/amd_vit-s_vit-l-teacher_16x224_k400.py': _pretrain(
        _PT + 'vits_k400_pt.sh', teacher=VIT_L, student_taps=(6, 12),
        teacher_checkpoint=_L.format('k400')),
    'pretrain/amd_vit-b_vit-l-teacher_16x224_ssv2.py': _pretrain(
        _PT + 'vitb_ssv2_pt.sh', teacher=VIT_L, student_taps=(6, 12),
        teacher_checkpoint=_L.format('ssv2')),
    'pretrain/amd_vit-b_vit-l-teacher_16x224_k400.py': _pretrain(
        _PT + 'vitb_k400_pt.sh', teacher=VIT_L, student_taps=(6, 12),
        teacher_checkpoint=_L.format('k400')),
    'pretrain/amd_vit-s_vit-b-teacher_16x224_ssv2.py': _pretrain(
        'ours: cheaper ViT-B teacher, else vits_ssv2_pt.sh', False,
        teacher=VIT_B, student_taps=(6, 12), teacher_checkpoint=_B.format('ssv2')),
    'pretrain/amd_vit-s_vit-b-teacher_16x224_k400.py': _pretrain(
        'ours: cheaper ViT-B teacher, else vits_k400_pt.sh', False,
        teacher=VIT_B, student_taps=(6, 12), teacher_checkpoint=_B.format('k400')),
    'pretrain/videomae_vit-b_16x224_ssv2.py': _pretrain(
        "ours: the paper's equal-epoch VideoMAE baseline on AMD's schedule", False),
    'pretrain/videomae_vit-b_16x224_k400.py': _pretrain(
        "ours: the paper's equal-epoch VideoMAE baseline on AMD's schedule", False),
    'finetune/vit-b_amd-pre_16x224_ssv2.py': _finetune(
        _FT + 'vitb_ssv2_ft.sh', 16, 5e-4, 30, (2, 3)),
    'finetune/vit-b_amd-pre_16x224_k400.py': _finetune(
        _FT + 'vitb_k400_ft.sh', 32, 7e-4, 90, (5, 3)),
    'finetune/vit-s_amd-pre_16x224_ssv2.py': _finetune(
        _FT + 'vits_ssv2_ft.sh', 16, 1e-3, 40, (2, 3)),
    'finetune/vit-s_amd-pre_16x224_k400.py': _finetune(
        _FT + 'vits_k400_ft.sh', 16, 1e-3, 150, (5, 3)),
    'finetune/vit-b_amd-k400-pre_16x224_ucf101.py': _finetune(
        'ours: no published schedule (VideoMAE-style UCF101)', 8, 5e-4, 100,
        (5, 3), published=False),
    'finetune/vit-b_amd-k400-pre_16x224_hmdb51.py': _finetune(
        'ours: no published schedule (VideoMAE-style HMDB51)', 8, 1e-3, 50,
        (5, 3), published=False),
    'finetune/vit-b_amd-pre_16x224_ssv2_linear-probe.py': Recipe(
        'ours: the paper reports no video linear probe', False, base_lr=1e-3,
        min_lr=1e-6, gpus=8, per_gpu=32, views=1, epochs=50, warmup=5,
        head_init_std=0.02, drop_path=0.0, test_views=(2, 3)),
    # Images: MAE's recipes (AMD's repository has no image scripts).
    'image/amd_vit-s_mae-b-teacher_224_in1k.py': Recipe(
        'ours: MAE PRETRAIN.md defaults (4096 images per step), MAE-B '
        'teacher as the paper', False,
        base_lr=1.5e-4, min_lr=0.0, gpus=32, per_gpu=128, views=1,
        epochs=800, warmup=40, teacher=VIT_B, student_taps=(6, 12),
        teacher_checkpoint='checkpoints/mae_pretrain_vit_base.pth'),
    'image/amd_vit-b_mae-l-teacher_224_in1k.py': Recipe(
        'ours: MAE PRETRAIN.md defaults (4096 images per step), MAE-L '
        'teacher as the paper', False,
        base_lr=1.5e-4, min_lr=0.0, gpus=32, per_gpu=128, views=1,
        epochs=800, warmup=40, teacher=VIT_L, student_taps=(6, 12),
        teacher_checkpoint='checkpoints/mae_pretrain_vit_large.pth'),
    'image/finetune_vit-b_224_in1k.py': Recipe(
        MAE + 'FINETUNE.md ViT-B (32 GPUs x 32 = 1024)', True, base_lr=5e-4,
        min_lr=1e-6, min_lr_scaled=False, gpus=8, per_gpu=128, views=1,
        epochs=100, warmup=5, head_init_std=2e-5, layer_decay=0.65,
        drop_path=0.1),
    'image/finetune_vit-s_224_in1k.py': Recipe(
        'ours: MAE ViT-B recipe, layer decay 0.75', False, base_lr=5e-4,
        min_lr=1e-6, min_lr_scaled=False, gpus=8, per_gpu=128, views=1,
        epochs=100, warmup=5, head_init_std=2e-5, layer_decay=0.75,
        drop_path=0.1),
    'image/linear_probe_vit-b_224_in1k.py': Recipe(
        'ours: MAE linear probe with SGD for LARS', False, base_lr=0.1,
        min_lr=0.0, gpus=32, per_gpu=512, views=1, epochs=90, warmup=10,
        head_init_std=0.02, drop_path=0.0),
    'image/linear_probe_vit-s_224_in1k.py': Recipe(
        'ours: MAE linear probe with SGD for LARS', False, base_lr=0.1,
        min_lr=0.0, gpus=32, per_gpu=512, views=1, epochs=90, warmup=10,
        head_init_std=0.02, drop_path=0.0),
}


def config_lr(cfg, gpus: int) -> Tuple[float, float]:
    """(peak lr, final min lr) that mmengine's Runner gives ``cfg`` on
    ``gpus`` GPUs: auto_scale_lr's ``lr x gpus x batch_size / base``, then the
    cosine scheduler's ``eta_min`` or ``eta_min_ratio x`` that lr."""
    lr = cfg.optim_wrapper.optimizer.lr
    auto = cfg.get('auto_scale_lr') or {}
    if auto.get('enable', False):
        lr = lr * gpus * cfg.train_dataloader.batch_size / auto['base_batch_size']
    cosine = [s for s in cfg.param_scheduler if s['type'] == 'CosineAnnealingLR']
    if len(cosine) != 1:
        raise ValueError(f'expected one CosineAnnealingLR in param_scheduler, '
                         f'got {[s["type"] for s in cfg.param_scheduler]}')
    eta = cosine[0]
    min_lr = eta['eta_min'] if eta.get('eta_min') is not None else lr * eta['eta_min_ratio']
    return lr, min_lr
