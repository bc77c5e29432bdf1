from amd_mmaction.evaluation.results_json import DumpResultsJSON

__all__ = ['DumpResultsJSON']
