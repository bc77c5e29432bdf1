"""amd_mmaction.compat against packages that are really installed.

The transformers case needs a recent transformers, which the project does
not depend on. ``.ci/run`` installs one into a separate folder and names it
in ``AMD_TEST_TRANSFORMERS_SITE``; the test appends that folder to the end
of ``sys.path`` of a fresh interpreter, so only what the environment lacks
(transformers and its own dependencies) comes from there.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = r'''
import json, sys, warnings
sys.path.append(sys.argv[1])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    import amd_mmaction
    import mmaction.models  # VindLU's import would fail here without the shim
import transformers
from mmaction.registry import MODELS
from mmaction.utils import dependency
print(json.dumps(dict(
    version=transformers.__version__, multimodal=dependency.WITH_MULTIMODAL,
    ours='AMDPretrainer' in MODELS.module_dict, recognizer='Recognizer3D' in MODELS.module_dict,
    warned=[str(w.message) for w in caught if 'transformers' in str(w.message)])))
'''


def test_new_transformers_disables_vindlu_and_everything_else_imports():
    site = os.environ.get('AMD_TEST_TRANSFORMERS_SITE')
    if not site:
        pytest.skip('set AMD_TEST_TRANSFORMERS_SITE to a folder holding transformers>=5 '
                    '(pip install --target DIR "transformers>=5"; .ci/run does this)')
    out = subprocess.run([sys.executable, '-c', PROBE, site], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert int(r['version'].split('.')[0]) >= 5
    assert r['multimodal'] is False and r['ours'] and r['recognizer']
    assert any('too new' in w and 'VindLU' in w for w in r['warned']), r['warned']


ENCODE_AFTER_DECORD = r'''
import sys
first = sys.argv[1]
if first == 'decord':
    import decord  # before anything of ours: too late for the fix
import numpy as np
from amd_mmaction.data.synthetic import render_clip, write_video
import decord
path = sys.argv[2]
write_video(path, render_clip(0, 8, 32, np.random.default_rng(0)))
reader = decord.VideoReader(path)
reader.get_batch([0])  # decord reads what PyAV wrote...
write_video(path, render_clip(1, 8, 32, np.random.default_rng(1)))  # ...and PyAV still writes
print(len(reader))
'''


@pytest.mark.parametrize('first', ['amd_mmaction', 'decord'])
def test_vp9_writing_beside_decord(tmp_path, first):
    """decord's bundled FFmpeg breaks PyAV's VP9 encoder when decord is loaded
    first. ``import amd_mmaction`` loads PyAV first, so writing and reading
    can alternate; where decord came before us, the error says why."""
    out = subprocess.run([sys.executable, '-c', ENCODE_AFTER_DECORD, first,
                          str(tmp_path / 'clip.webm')], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    if first == 'amd_mmaction':
        assert out.returncode == 0, out.stderr[-3000:]
        assert out.stdout.strip().splitlines()[-1] == '8'
    else:
        assert out.returncode != 0
        assert 'decord was imported before PyAV' in out.stderr, out.stderr[-3000:]


def test_every_patch_is_in_the_table_documented_and_applied():
    """compat.PATCHES is the one list of upstream patches: each entry names
    its function, the upstream package and versions, the symptom, the fix
    and when to drop it; apply() applied each one, in order, and the
    module's docstring shows them."""
    import amd_mmaction  # noqa: F401  (applies the patches)
    from amd_mmaction import compat
    names = [p.name for p in compat.PATCHES]
    assert len(set(names)) == len(names), names
    for patch in compat.PATCHES:
        for field, value in patch._asdict().items():
            assert isinstance(value, str) and value.strip(), (patch.name, field)
        assert callable(getattr(compat, patch.function, None)), patch
        assert f'{patch.name} ({patch.package} {patch.versions})' in compat.__doc__
        assert patch.drop_when in compat.__doc__
    # a patch function outside the table would be applied by no one
    patchers = {n for n, f in vars(compat).items() if callable(f) and n.startswith(
        ('_patch_', '_stub_', '_load_', '_disable_'))}
    assert patchers == {p.function for p in compat.PATCHES}
    assert compat.APPLIED == tuple(names)
    compat.apply()  # idempotent
    assert compat.APPLIED == tuple(names)


def test_patches_are_in_effect(tmp_path):
    """What the patches install is what mmengine and numpy now do."""
    import amd_mmaction  # noqa: F401
    import numpy as np
    from mmengine.fileio.backends import LocalBackend
    from mmengine.runner.checkpoint import CheckpointLoader
    import mmaction.models  # noqa: F401  (drn stub, multimodal switch)
    assert np.NAN != np.NAN  # numpy2_ava: the alias is nan
    # atomic_local_writes: a complete file and no temporary left behind
    LocalBackend().put(b'\x00weights', tmp_path / 'ckpt.pth')
    LocalBackend().put_text('epoch_1.pth', tmp_path / 'last_checkpoint')
    assert (tmp_path / 'ckpt.pth').read_bytes() == b'\x00weights'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ckpt.pth', 'last_checkpoint']
    # checkpoint_loader: local files go through weights.io (its messages)
    with pytest.raises(FileNotFoundError, match=r"checkpoint file '.*nothere.pth' does not exist"):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'nothere.pth'))
    with pytest.raises(RuntimeError, match=r'(?s)ckpt.pth.* cannot be read .*truncated'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'ckpt.pth'))
