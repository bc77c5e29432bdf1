from amd_mmaction.benchmark.flops import amd_flops, block_flops, param_counts, token_counts
from amd_mmaction.benchmark.step import benchmark_config, format_report, mask_setting

__all__ = ['amd_flops', 'block_flops', 'param_counts', 'token_counts',
           'benchmark_config', 'format_report', 'mask_setting']
