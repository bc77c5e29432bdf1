"""Shims that make the pinned OpenMMLab stack usable on the pinned torch.

Each patch is idempotent, applied once at ``import amd_mmaction`` and
explains which upstream defect it absorbs (see docs in README, "Compatibility").
"""
import glob
import importlib
import importlib.util
import os
import os.path as osp
import socket
import sys
import tempfile
import types

_APPLIED = False
# Was decord loaded before PyAV in this process (set by apply())?
DECORD_BEFORE_AV = False


def _stub_missing_drn():
    """mmaction2 1.2.0 wheels/sdists lack ``mmaction/models/localizers/drn``
    although ``localizers/__init__.py`` imports it, so ``import
    mmaction.models`` fails.  Provide the module with a ``DRN`` that explains
    itself when someone tries to use it (it is not registered)."""
    name = 'mmaction.models.localizers.drn'
    spec = importlib.util.find_spec('mmaction')
    if spec is None or name in sys.modules:
        return
    # Look at the files: importing the package to ask would hit the error.
    root = list(spec.submodule_search_locations)[0]
    if osp.isdir(osp.join(root, 'models', 'localizers', 'drn')):
        return

    class DRN:  # noqa: D401 - placeholder for a module the release lacks
        def __init__(self, *args, **kwargs):
            raise ImportError(
                'mmaction2 1.2.0 was released without '
                'mmaction/models/localizers/drn; DRN is unavailable. '
                'Install mmaction2 from source if you need it.')

    pkg = types.ModuleType(name)
    pkg.__path__ = []
    mod = types.ModuleType(name + '.drn')
    mod.DRN = DRN
    pkg.drn = mod
    sys.modules[name] = pkg
    sys.modules[name + '.drn'] = mod


def _load_local_checkpoint(filename, map_location=None):
    """mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch
    >= 2.6 then refuses mmengine's own checkpoints (message hub, numpy
    scalars). Every local file (``load_from``, ``resume``, mmengine's
    ``load_checkpoint``) is read by ``checkpoint_io``: the weights_only
    unpickler with the globals mmengine checkpoints need, never a full
    unpickle unless the file is trusted by name."""
    from amd_mmaction.weights.io import UntrustedCheckpointError, load_checkpoint_file
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename!r} does not exist')
    try:
        return load_checkpoint_file(filename, map_location=map_location)
    except UntrustedCheckpointError:
        raise
    except Exception as err:  # unpickling garbage raises anything (IndexError, ...)
        raise RuntimeError(
            f'checkpoint {filename!r} cannot be read ({err}); it is truncated '
            'or not a torch checkpoint. Resume from an earlier checkpoint or '
            'delete it.') from err


def _patch_checkpoint_loader():
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', force=True)(
        _load_local_checkpoint)


def _atomic_write(filepath, data, mode, encoding=None):
    filepath = str(filepath)
    dirname = osp.dirname(osp.abspath(filepath))
    os.makedirs(dirname, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dirname, suffix='.tmp',
                               prefix=f'.{osp.basename(filepath)}.{_writer()}.')
    try:
        # mkstemp makes 0600 files; give the checkpoint the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, mode, encoding=encoding) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    # A process killed mid-write (SIGKILL, OOM) leaves its temporary file;
    # drop such leftovers of this file once a complete copy is in place, but
    # not the file of a live writer: DDP ranks write the same logs at once.
    prefix = f'.{osp.basename(filepath)}.'
    for stale in glob.glob(osp.join(glob.escape(dirname), glob.escape(prefix) + '*.tmp')):
        if _writer_alive(osp.basename(stale)[len(prefix):]):
            continue
        try:
            os.remove(stale)
        except OSError:
            pass


def _writer():
    return f'{os.getpid()}@{socket.gethostname()}'


def _writer_alive(tag):
    """Is the writer named at the start of a temporary file's ``tag``
    (``pid@host.``) running? Writers on other hosts count as running."""
    pid, at, rest = tag.partition('@')
    if not at or not pid.isdigit():
        return False  # not ours, or an older name: a leftover
    if not rest.startswith(socket.gethostname() + '.'):
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # exists, owned by someone else
    return True


def _patch_atomic_local_writes():
    """mmengine writes checkpoints and ``last_checkpoint`` with a plain
    ``open(..., 'wb')``: a crash mid-write leaves a truncated file that
    ``resume=True`` then picks.  Write to a temporary file and rename."""
    from mmengine.fileio.backends import LocalBackend

    def put(self, obj, filepath):
        _atomic_write(filepath, obj, 'wb')

    def put_text(self, obj, filepath, encoding='utf-8'):
        _atomic_write(filepath, obj, 'w', encoding=encoding)

    LocalBackend.put = put
    LocalBackend.put_text = put_text


def _patch_numpy2_ava():
    """mmaction2's AVA evaluation uses ``np.NAN`` (removed in numpy 2)."""
    import numpy as np
    if not hasattr(np, 'NAN'):
        np.NAN = np.nan


def _module_of(package):
    """Top-level module of an installed distribution ('mmaction2' ->
    'mmaction'), or the name itself."""
    from importlib import metadata
    try:
        top = metadata.distribution(package).read_text('top_level.txt') or ''
    except metadata.PackageNotFoundError:
        return package
    return top.split()[0] if top.split() else package.replace('-', '_')


def _is_installed(package):
    from importlib import metadata
    try:
        metadata.distribution(package)
        return True
    except metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def _get_installed_path(package):
    spec = importlib.util.find_spec(_module_of(package))
    if spec is None or spec.origin is None:
        raise RuntimeError(f'package {package!r} is not installed (or is a '
                           'namespace package); cannot resolve its path')
    return osp.dirname(spec.origin)


def _patch_pkg_resources_lookups():
    """mmengine resolves ``mmaction::`` config bases with ``pkg_resources``,
    which setuptools >= 81 no longer ships. Use importlib.metadata."""
    try:
        import pkg_resources  # noqa: F401
        return
    except ImportError:
        pass
    import mmengine.config.config as config_mod
    import mmengine.utils as utils_mod
    import mmengine.utils.package_utils as pkg_mod
    for mod in (config_mod, utils_mod, pkg_mod):
        mod.is_installed = _is_installed
        mod.get_installed_path = _get_installed_path


def _patch_cpu_dist_init():
    """mmengine's pytorch and slurm launchers call ``torch.cuda.set_device``
    unconditionally, which a CPU-only torch cannot do: on such a machine
    initialise the process group (gloo) without touching CUDA."""
    import mmengine.dist.utils as dist_utils
    import torch
    original = dist_utils._init_dist_pytorch
    if getattr(original, '_amd_cpu_safe', False):
        return

    def init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if torch.cuda.is_available() or init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        if backend == 'nccl':
            backend = 'gloo'
        torch.distributed.init_process_group(backend=backend, **kwargs)

    original_slurm = dist_utils._init_dist_slurm

    def init_dist_slurm(backend, port=None, init_backend='torch', **kwargs):
        # mmengine's slurm set-up (ranks, master from scontrol), without
        # its torch.cuda.set_device, which a CPU-only torch lacks
        if torch.cuda.is_available() or init_backend != 'torch':
            return original_slurm(backend, port, init_backend=init_backend, **kwargs)
        set_device, torch.cuda.set_device = torch.cuda.set_device, lambda device: None
        try:
            return original_slurm('gloo' if backend == 'nccl' else backend, port, **kwargs)
        finally:
            torch.cuda.set_device = set_device

    init_dist_pytorch._amd_cpu_safe = True
    dist_utils._init_dist_pytorch = init_dist_pytorch
    dist_utils._init_dist_slurm = init_dist_slurm


def _load_pyav_before_decord():
    """decord's wheel bundles its own, older FFmpeg libraries. When decord is
    imported before PyAV, PyAV's VP9 encoder then fails to open in that
    process (``avcodec_open2("libvpx-vp9", ...) returned 22``); with PyAV
    loaded first both work. So PyAV is loaded here, before anything of ours
    imports decord. If decord came first, ``write_video`` says so."""
    global DECORD_BEFORE_AV
    DECORD_BEFORE_AV = 'decord' in sys.modules and 'av' not in sys.modules
    if 'av' in sys.modules or 'decord' in sys.modules:
        return
    if importlib.util.find_spec('av') is not None:
        import av  # noqa: F401


def _disable_broken_multimodal():
    """mmaction2 1.2.0's optional VindLU models import names that
    transformers 5 removed (``apply_chunking_to_forward``), so with a new
    transformers installed ``import mmaction.models`` fails. Treat the
    multimodal extra as absent then (its placeholders explain themselves)."""
    import mmaction.utils.dependency as dep
    if not getattr(dep, 'WITH_MULTIMODAL', False):
        return
    try:
        from transformers.modeling_utils import apply_chunking_to_forward  # noqa: F401
    except ImportError:
        import warnings
        dep.WITH_MULTIMODAL = False
        warnings.warn('the installed transformers is too new for mmaction2 '
                      "1.2.0's VindLU models; they are disabled")


def apply():
    global _APPLIED
    if _APPLIED:
        return
    _load_pyav_before_decord()
    _stub_missing_drn()
    _patch_pkg_resources_lookups()
    _patch_checkpoint_loader()
    _patch_atomic_local_writes()
    _patch_numpy2_ava()
    _patch_cpu_dist_init()
    _disable_broken_multimodal()
    _APPLIED = True
