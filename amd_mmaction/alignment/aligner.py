"""Feature alignment between student and teacher layers (method.md §4)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mmaction.registry import MODELS
from amd_mmaction.alignment.generator import FeatureGenerator

MANNERS = ('serial', 'parallel', 'direct', 'generation')


def _pairs(kind: str, stu: Sequence[int], tea: Sequence[int],
           stu_key: str, tea_key: str) -> Tuple[Tuple[int, int], ...]:
    """Pair student and teacher layers one to one, in depth order (the
    authors collect features in block order, whatever the list order)."""
    stu, tea = tuple(int(s) for s in stu), tuple(int(t) for t in tea)
    if not stu or len(stu) != len(tea):
        raise ValueError(f'{kind} alignment: {stu_key}={stu} and {tea_key}={tea} must be '
                         'non-empty and pair up one to one (same length)')
    for key, taps in ((stu_key, stu), (tea_key, tea)):
        if any(b <= a for a, b in zip(taps, taps[1:])) or taps[0] < 1:
            raise ValueError(f'{kind} alignment: {key}={taps} must be 1-based layers in '
                             'strictly increasing order (pairs are matched in depth order)')
    return tuple(zip(stu, tea))


@MODELS.register_module()
class FeatureAligner(nn.Module):
    """Projections phi (Linear, no bias) and generators G per aligned layer
    pair, and the two alignment losses.

    ``serial`` (paper default): the generator consumes a direct projection's
    output. ``parallel``: generators have their own projections.
    ``direct`` / ``generation``: only one of the two losses.

    Layers: ``student_taps``/``teacher_taps`` serve both losses unless
    ``{student,teacher}_{direct,gen}_taps`` give separate lists (the
    authors' ``--*_layer_direct_align`` / ``--*_layer_gen_align``). In
    ``serial`` the i-th generation layer uses the i-th *direct* projection,
    as the authors' code indexes one list of projection heads for both, even
    when the two layers differ. ``dirfac``/``genfac`` scale the losses.
    ``generator_heads=None``: teacher width // 64 (the authors' choice).
    """

    def __init__(self, student_dims: int, teacher_dims: int,
                 student_taps=(6, 12), teacher_taps=(12, 24), manner: str = 'serial',
                 student_direct_taps=None, teacher_direct_taps=None,
                 student_gen_taps=None, teacher_gen_taps=None,
                 dirfac: float = 1.0, genfac: float = 1.0,
                 generator_depth: int = 2, generator_heads: Optional[int] = None,
                 num_tokens: int = 1568, loss=dict(type='FeatureAlignmentLoss')):
        super().__init__()
        if manner not in MANNERS:
            raise ValueError(f'alignment manner {manner!r} is not one of {MANNERS}')
        self.manner = manner
        self.use_direct = manner in ('serial', 'parallel', 'direct')
        self.use_generation = manner in ('serial', 'parallel', 'generation')
        for kind, used, keys, vals in (
                ('direct', self.use_direct, ('student_direct_taps', 'teacher_direct_taps'),
                 (student_direct_taps, teacher_direct_taps)),
                ('generation', self.use_generation, ('student_gen_taps', 'teacher_gen_taps'),
                 (student_gen_taps, teacher_gen_taps))):
            given = [k for k, v in zip(keys, vals) if v is not None]
            if given and not used:
                raise ValueError(f'alignment {given[0]} is set but manner={manner!r} computes '
                                 f'no {kind} loss: drop it or pick a manner with both losses')
        def pairs(kind, suffix, stu, tea):
            # a loss's own layer lists, else the shared student_taps / teacher_taps
            return _pairs(kind, student_taps if stu is None else stu,
                          teacher_taps if tea is None else tea,
                          'student_taps' if stu is None else f'student_{suffix}_taps',
                          'teacher_taps' if tea is None else f'teacher_{suffix}_taps')
        self.direct_pairs = self.gen_pairs = ()
        if self.use_direct:
            self.direct_pairs = pairs('direct', 'direct', student_direct_taps, teacher_direct_taps)
        if self.use_generation:
            self.gen_pairs = pairs('generation', 'gen', student_gen_taps, teacher_gen_taps)
        if manner == 'serial' and len(self.gen_pairs) > len(self.direct_pairs):
            raise ValueError(
                f'serial alignment: generation layer i uses the i-th direct projection '
                f'(the authors\' code), so the {len(self.gen_pairs)} generation layers '
                f'{[s for s, _ in self.gen_pairs]} need at least as many direct layers, got '
                f'{[s for s, _ in self.direct_pairs]}; use manner="parallel" for own projections')
        for key, fac in (('dirfac', dirfac), ('genfac', genfac)):
            if not float(fac) >= 0:
                raise ValueError(f'alignment {key} must be a number >= 0, got {fac!r}')
        self.dirfac, self.genfac = float(dirfac), float(genfac)
        # What the student and teacher must hand over (union, depth order).
        self.student_taps = tuple(sorted({s for s, _ in self.direct_pairs + self.gen_pairs}))
        self.teacher_taps = tuple(sorted({t for _, t in self.direct_pairs + self.gen_pairs}))
        heads = max(1, teacher_dims // 64) if generator_heads is None else generator_heads
        if self.use_generation and (int(heads) != heads or heads < 1 or teacher_dims % heads):
            raise ValueError(f'alignment generator_heads={heads!r} must be a positive integer '
                             f'dividing the teacher width {teacher_dims}')
        self.generator_heads = int(heads)
        # Module creation order is kept as before the separate lists, so a
        # seeded build of an existing config draws the same initial weights.
        n_proj = len(self.direct_pairs) if self.use_direct else len(self.gen_pairs)
        self.projections = nn.ModuleList(
            nn.Linear(student_dims, teacher_dims, bias=False) for _ in range(n_proj))
        if manner == 'parallel':
            self.generator_projections = nn.ModuleList(
                nn.Linear(student_dims, teacher_dims, bias=False) for _ in self.gen_pairs)
        if self.use_generation:
            self.generators = nn.ModuleList(
                FeatureGenerator(teacher_dims, self.generator_heads, generator_depth, num_tokens)
                for _ in self.gen_pairs)
        for m in self.modules():
            if isinstance(m, nn.Linear) and m.bias is None:
                nn.init.xavier_uniform_(m.weight)
        self.loss = MODELS.build(loss)

    def projection_uses(self) -> Tuple[List[tuple], List[tuple]]:
        """``(projection, student layer)`` of each direct prediction and of
        each generator's input, in loss order. A pair listed twice (serial,
        the same layer in both lists) is computed once by :meth:`forward`."""
        gen_mods = self.generator_projections if self.manner == 'parallel' else self.projections
        return ([(self.projections[i], ls) for i, (ls, _) in enumerate(self.direct_pairs)],
                [(gen_mods[i], ls) for i, (ls, _) in enumerate(self.gen_pairs)])

    def forward(self, student_feats: Dict[int, torch.Tensor],
                teacher_feats: Dict[int, torch.Tensor], vis_idx: torch.Tensor,
                diff_idx: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Student features are on V tokens; teacher features on [V, D]."""
        n_vis = vis_idx.shape[1]
        done = {}  # serial: a projection shared by both losses runs once

        def project(mod, layer):
            if (mod, layer) not in done:
                done[mod, layer] = mod(student_feats[layer])
            return done[mod, layer]

        direct, gen = self.projection_uses()
        losses = {}
        if direct:
            pred = [project(mod, ls) for mod, ls in direct]
            tgt = [teacher_feats[lt][:, :n_vis] for _, lt in self.direct_pairs]
            losses['loss_dir'] = self.dirfac * self.loss(pred, tgt)
        if gen:
            pred = [g(project(mod, ls), vis_idx, diff_idx)
                    for g, (mod, ls) in zip(self.generators, gen)]
            tgt = [teacher_feats[lt][:, n_vis:] for _, lt in self.gen_pairs]
            losses['loss_gen'] = self.genfac * self.loss(pred, tgt)
        return losses
