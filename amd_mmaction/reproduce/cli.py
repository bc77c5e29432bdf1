"""Command-line pieces of tools/reproduce.py: ``--set`` overrides and the
machine line recorded with every run."""
import ast
import json
import os
import platform
from typing import List, Optional


def parse_overrides(items: Optional[List[str]]) -> dict:
    """``key.sub=value`` items (value parsed as JSON, else as a Python
    literal, else kept as a string) -> nested dict."""
    out: dict = {}
    for item in items or []:
        if '=' not in item:
            raise SystemExit(f'--set expects key=value, got {item!r}')
        key, value = item.split('=', 1)
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(value)  # ['a', 'b'], True, (1, 2)
            except (ValueError, SyntaxError):
                pass
        node = out
        *parents, leaf = key.split('.')
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = value
    return out


def machine(threads: Optional[int] = None) -> str:
    """CPU model, cores, torch and Python versions, torch threads per stage."""
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if 'model name' in line)
    except (OSError, StopIteration):
        pass
    return (f'{cpu}, {os.cpu_count()} cores, torch {torch.__version__} '
            f'({threads or torch.get_num_threads()} thread(s) per stage), '
            f'Python {platform.python_version()}')
