"""Patches that make the pinned OpenMMLab stack usable on the pinned torch,
numpy, setuptools and transformers, without editing site-packages.

``import amd_mmaction`` calls :func:`apply`, which applies every entry of
:data:`PATCHES` once, in order; each is idempotent. :data:`PATCHES` is the
one table of them: the upstream package and the versions that need the
patch, the symptom without it, what the patch does, and how to tell when it
can be dropped. It is rendered below (``help(amd_mmaction.compat)``), and
``tests/test_compat.py`` checks that every entry is applied and filled in.
docs/install.md ("Compatibility with the pinned stack") tells users.

"""
import importlib
import importlib.util
import os.path as osp
import sys
import types
from typing import NamedTuple


class Patch(NamedTuple):
    name: str       # what it is called here and in test output
    function: str   # the function of this module that applies it
    package: str    # the upstream distribution with the defect
    versions: str   # the versions (and companions) that need the patch
    symptom: str    # what goes wrong without it
    fix: str        # what the patch does
    drop_when: str  # how to tell that it is no longer needed


PATCHES = (
    Patch('pyav_before_decord', '_load_pyav_before_decord', 'decord',
          '0.6.0 wheels (bundle their own, older FFmpeg), beside PyAV (av 18.1.0)',
          'decord imported before PyAV stops PyAV\'s VP9 encoder from opening '
          '(avcodec_open2("libvpx-vp9", ...) returned 22): synthetic clips cannot be written',
          'PyAV is imported first at import amd_mmaction; where decord came earlier, '
          'write_video says so (DECORD_BEFORE_AV)',
          'a decord release links a current FFmpeg: '
          'tests/test_compat.py::test_vp9_writing_beside_decord[decord] then writes '
          'without error'),
    Patch('stub_missing_drn', '_stub_missing_drn', 'mmaction2',
          '1.2.0 (wheel and sdist)',
          'import mmaction.models fails: localizers/__init__.py imports '
          'localizers/drn, which the release does not contain',
          'a placeholder mmaction.models.localizers.drn whose DRN raises an ImportError '
          'that explains itself (DRN stays unregistered)',
          'a mmaction2 release ships mmaction/models/localizers/drn (the patch already '
          'does nothing where that folder exists)'),
    Patch('pkg_resources_lookups', '_patch_pkg_resources_lookups', 'mmengine',
          '0.10.7, with setuptools >= 81 or an editable install',
          'configs with mmaction:: bases fail to load: mmengine finds installed packages '
          'with pkg_resources, which setuptools >= 81 no longer ships and which sends an '
          'editable install to site-packages; amd_mmaction:: configs would get the '
          'registry scope amd_mmaction, which has no registries',
          "mmengine's is_installed / get_installed_path answered by importlib.metadata "
          'and the import system; amd_mmaction known to MODULE2PACKAGE, its configs '
          'given the mmaction scope',
          'mmengine > 0.10.7 resolves packages with importlib.metadata and lets a package '
          'name the registry scope of its configs (amd_mmaction::tiny/x.py then builds '
          'without the patch)'),
    Patch('checkpoint_loader', '_patch_checkpoint_loader', 'mmengine',
          '0.10.7, with torch >= 2.6',
          'mmengine torch.loads local checkpoints without weights_only: torch >= 2.6 '
          'refuses its own checkpoints (message hub, numpy scalars), and a full unpickle '
          'runs whatever code the file asks for',
          'the local scheme of CheckpointLoader (load_from, resume, load_checkpoint) '
          're-registered to amd_mmaction.weights.io.load_local_checkpoint: weights_only '
          'with an allow-list, per-file trust, clear errors for missing, damaged and '
          'refused files',
          'mmengine > 0.10.7 passes weights_only=True and lets callers extend the allowed '
          'globals; until then keep it (it also carries the trust policy, '
          'docs/reliability.md)'),
    Patch('atomic_local_writes', '_patch_atomic_local_writes', 'mmengine',
          '0.10.7',
          'LocalBackend.put / put_text write checkpoints and last_checkpoint in place: a '
          'crash mid-write leaves a truncated file that resume=True then picks',
          'LocalBackend.put / put_text write through amd_mmaction.weights.io.atomic_write '
          '(temporary file, fsync, rename; dead writers\' leftovers removed)',
          "mmengine's LocalBackend writes through a temporary file and a rename"),
    Patch('numpy2_ava', '_patch_numpy2_ava', 'mmaction2',
          '1.2.0, with numpy >= 2',
          'AVA evaluation uses np.NAN, which numpy 2 removed: AttributeError',
          'np.NAN = np.nan',
          'a mmaction2 release uses np.nan (no np.NAN under mmaction/evaluation)'),
    Patch('cpu_dist_init', '_patch_cpu_dist_init', 'mmengine',
          '0.10.7, with a CPU-only torch',
          'the pytorch and slurm launchers call torch.cuda.set_device unconditionally: '
          'distributed runs fail on a CPU-only torch',
          'without CUDA, the process group is initialised (gloo) without touching CUDA',
          "mmengine's _init_dist_pytorch / _init_dist_slurm skip set_device when CUDA "
          'is unavailable'),
    Patch('disable_broken_multimodal', '_disable_broken_multimodal', 'mmaction2',
          '1.2.0, with transformers >= 4.57 (5.x)',
          'import mmaction.models fails where transformers is installed: VindLU imports '
          'apply_chunking_to_forward & co. from transformers.modeling_utils, which 4.57 '
          'and 5.x no longer have',
          'WITH_MULTIMODAL = False (with a warning) when that import fails: the '
          'multimodal models are treated as absent',
          'a mmaction2 release imports no removed transformers names '
          '(tests/test_compat.py::test_new_transformers_disables_vindlu_and_everything_else_'
          'imports passes without the patch)'),
)

# Names of the patches apply() applied, in order; empty before.
APPLIED = ()
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


def _patch_checkpoint_loader():
    """Local files (``load_from``, ``resume``, ``load_checkpoint``) are read
    by :func:`amd_mmaction.weights.io.load_local_checkpoint`."""
    from mmengine.runner.checkpoint import CheckpointLoader

    def load_local(filename, map_location=None):
        from amd_mmaction.weights.io import load_local_checkpoint
        return load_local_checkpoint(filename, map_location=map_location)

    CheckpointLoader.register_scheme(prefixes='', force=True)(load_local)


def _patch_atomic_local_writes():
    """mmengine's local writes go through
    :func:`amd_mmaction.weights.io.atomic_write`."""
    from mmengine.fileio.backends import LocalBackend

    def put(self, obj, filepath):
        from amd_mmaction.weights.io import atomic_write
        atomic_write(filepath, obj, 'wb')

    def put_text(self, obj, filepath, encoding='utf-8'):
        from amd_mmaction.weights.io import atomic_write
        atomic_write(filepath, obj, 'w', encoding=encoding)

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
    which setuptools >= 81 no longer ships and which sends an editable install
    to site-packages instead of its source folder. Use importlib.metadata and
    the import system. Also let ``amd_mmaction::tiny/x.py`` name this
    package's installed configs (``amd_mmaction/.mim/configs``); mmengine
    would give their modules the registry scope ``amd_mmaction``, which has
    no registries (they live in mmaction's), so they get ``mmaction``."""
    import mmengine.config.utils as config_utils
    from mmengine.config import Config
    config_utils.MODULE2PACKAGE.setdefault('amd_mmaction', 'amd-mmaction')
    get_cfg_path = Config._get_cfg_path
    if not getattr(get_cfg_path, '_amd_scope', False):
        def get_cfg_path_in_mmaction_scope(cfg_path, filename):
            path, scope = get_cfg_path(cfg_path, filename)
            return path, 'mmaction' if scope == 'amd_mmaction' else scope
        get_cfg_path_in_mmaction_scope._amd_scope = True
        Config._get_cfg_path = staticmethod(get_cfg_path_in_mmaction_scope)
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
    """Apply every patch of :data:`PATCHES`, in order, once per process."""
    global APPLIED
    if APPLIED:
        return
    done = []
    for patch in PATCHES:
        globals()[patch.function]()
        done.append(patch.name)
    APPLIED = tuple(done)


def _render(patches) -> str:
    lines = []
    for p in patches:
        lines += [f'{p.name} ({p.package} {p.versions})',
                  f'    symptom:   {p.symptom}',
                  f'    fix:       {p.fix}',
                  f'    drop when: {p.drop_when}', '']
    return '\n'.join(lines)


if __doc__ is not None:  # python -OO strips docstrings
    __doc__ += '\n' + _render(PATCHES)
