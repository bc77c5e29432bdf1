"""Timing pieces of the step benchmark: matmul peak, synthetic batches,
whole-step and per-component forward+backward times, memory."""
import time
from collections import OrderedDict
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from amd_mmaction.masks.tube import check_mask_config, sample_tube_masks
from amd_mmaction.pretrain.amd import mask_indices


def _sync(device):
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


CLOCKS = {'wall': time.perf_counter, 'cpu': time.process_time}


def best_time(fn: Callable, warmup: int = 1, iters: int = 3, device='cpu',
              probe: Optional[Callable] = None, clock: str = 'wall') -> Dict[str, float]:
    """Run ``fn`` ``warmup`` + ``iters`` times; seconds per call, best and
    median (the machine may be shared: the best is the least disturbed).

    With ``probe`` (a callable returning FLOP/s, e.g. :func:`peak_probe`)
    the peak is re-measured right before each timed call; ``peaks`` lists
    those, so that a call and its peak see the same machine load.
    ``clock='cpu'`` counts this process's CPU seconds instead of wall
    seconds: with one thread on a shared CPU that is the time the work
    itself took, whatever else runs beside it."""
    now = CLOCKS[clock]
    for _ in range(warmup):
        fn()
    _sync(device)
    times, peaks = [], []
    for _ in range(iters):
        if probe is not None:
            peaks.append(probe())
        t0 = now()
        fn()
        _sync(device)
        times.append(now() - t0)
    return dict(best=min(times), median=float(np.median(times)), times=times, peaks=peaks)


def peak_probe(device='cpu', dtype=torch.float32, size: Optional[int] = None,
               iters: int = 3, clock: str = 'wall') -> Callable[[], float]:
    """A callable measuring the FLOP/s of ``iters`` large square matmuls
    (fp32 2048^3 on CPU, 8192^3 on GPU): this machine's attainable matmul
    peak at the current thread count and load."""
    size = size or (8192 if torch.device(device).type == 'cuda' else 2048)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)

    now = CLOCKS[clock]

    def probe():
        _sync(device)
        t0 = now()
        for _ in range(iters):
            torch.mm(a, b)
        _sync(device)
        return 2 * size ** 3 * iters / (now() - t0)
    probe()  # warm-up
    return probe


def matmul_peak(device='cpu', dtype=torch.float32, size: Optional[int] = None,
                iters: int = 5, repeats: int = 3) -> float:
    """Best of ``repeats`` peak probes."""
    probe = peak_probe(device, dtype, size, iters)
    return max(probe() for _ in range(repeats))


def synthetic_batch(model, clips: int, student_ratio: float, teacher_ratio: float,
                    mode: str = 'asymmetric', device='cpu', seed: int = 0):
    """Random normalised clips (clips, C, T, H, W) and data samples
    carrying tube masks drawn as the data pipeline draws them."""
    from mmaction.structures import ActionDataSample
    vit = model.student
    grid = vit.grid
    _, n_stu, n_tea = check_mask_config(grid, mode, student_ratio,
                                        teacher_ratio if mode == 'asymmetric' else None)
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    c = vit.patch_embed.proj.in_channels
    shape = (clips, c, grid[0] * vit.tubelet_size, grid[1] * vit.patch_size,
             grid[2] * vit.patch_size)
    x = torch.randn(shape, generator=g).to(device)
    samples = []
    for _ in range(clips):
        stu, tea = sample_tube_masks(grid, n_stu, n_tea, rng)
        ds = ActionDataSample()
        ds.set_field(stu, 'mask_stu')
        ds.set_field(tea, 'mask_tea')
        samples.append(ds)
    return x, samples


def _zero_grad(model):
    for p in model.parameters():
        p.grad = None


def step_fn(model, x, samples) -> Callable:
    """One training forward+backward of ``model`` (no optimizer update)."""
    def run():
        _zero_grad(model)
        loss = sum(model.loss(x, samples).values())
        loss.backward()
        run.loss = loss.detach()
    return run


def _fwd_bwd(forward: Callable, inputs: List[torch.Tensor], input_grad: bool = True) -> Callable:
    """Forward on fresh leaves cut from ``inputs`` (needing gradients
    when ``input_grad``, as features inside the step do; the clip does not)
    and backward from fixed random output gradients (the loss is not part
    of the component)."""
    leaves = [t.detach().requires_grad_(input_grad) for t in inputs]
    outs = forward(*leaves)
    grads = [torch.randn_like(o) for o in outs]

    def run():
        outs = forward(*leaves)
        torch.autograd.backward(outs, grads)
    return run


def component_fns(model, x, samples) -> 'OrderedDict[str, Callable]':
    """Callables that run each component as it runs inside the step, on the
    step's own tensors: the teacher forward; encoder, decoder, generators
    and projections forward+backward."""
    x, mask_stu = model.unpack(x, samples)
    vis_idx, mask_idx = mask_indices(~mask_stu), mask_indices(mask_stu)
    aligner, teacher = model.aligner, model.teacher
    taps = aligner.student_taps if aligner is not None else ()
    fns = OrderedDict()
    if teacher is not None:
        mask_tea = model.stack_masks(samples, 'mask_tea', len(x), x.device)
        diff_idx = mask_indices(mask_stu & ~mask_tea)
        tea_idx = torch.cat([vis_idx, diff_idx], 1)
        fns['teacher'] = lambda: teacher(x, tea_idx)

    def encoder(xx):
        latent, feats = model.student(xx, vis_idx, taps=taps)
        return [latent] + [feats[t] for t in taps]

    fns['encoder'] = _fwd_bwd(encoder, [x], input_grad=False)
    with torch.no_grad():
        latent, feats = model.student(x, vis_idx, taps=taps)
    fns['decoder'] = _fwd_bwd(lambda z: [model.decoder(z, vis_idx, mask_idx)], [latent])
    if aligner is not None:
        direct, gen = aligner.projection_uses()
        with torch.no_grad():
            gen_in = [mod(feats[ls]) for mod, ls in gen]
        if aligner.use_generation:
            fns['generators'] = _fwd_bwd(
                lambda *ps: [g(p, vis_idx, diff_idx) for g, p in zip(aligner.generators, ps)],
                gen_in)
        runs = list(dict.fromkeys(direct + gen))  # each (projection, layer) once, as forward
        fns['projections'] = _fwd_bwd(
            lambda *zs: [mod(z) for (mod, _), z in zip(runs, zs)], [feats[ls] for _, ls in runs])
    return fns


def saved_tensor_bytes(fn: Callable) -> int:
    """Bytes of distinct storages autograd saves for backward while ``fn``
    runs: the activation memory of a step, independent of the allocator."""
    seen = {}

    def pack(t):
        s = t.untyped_storage()
        seen[(s.data_ptr(), t.device)] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def step_memory(model, x, samples) -> Dict[str, int]:
    """Peak memory of one step: on CUDA the allocator's high-water mark;
    everywhere the saved activations plus parameters and gradients."""
    device = x.device
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    trained = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    teacher = model.teacher
    if teacher is not None:
        params += sum(p.numel() * p.element_size() for p in teacher.parameters())

    def forward():
        _zero_grad(model)
        return model.loss(x, samples)

    out = dict(activations=saved_tensor_bytes(forward), params=params, grads=trained)
    if device.type == 'cuda':
        _zero_grad(model)
        torch.cuda.reset_peak_memory_stats(device)
        step_fn(model, x, samples)()
        torch.cuda.synchronize(device)
        out['cuda_peak'] = torch.cuda.max_memory_allocated(device)
    return out
