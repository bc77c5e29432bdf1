"""The package's layout rules, read from the source with ``ast``:

1. no import cycle among amd_mmaction's modules at import time (imports at
   module level, class bodies included; imports inside functions run later
   and do not count);
2. no module takes another module's private name: neither
   ``from amd_mmaction.x import _name`` nor ``x._name`` on an imported
   amd_mmaction module (a private *module* may be imported inside its own
   package);
3. no path into the checkout: ``__file__`` (or a name built from it) never
   meets ``'configs'``; configs come from :func:`amd_mmaction.config_files.config_file`;
4. no ``*_v2.py`` file names (a module or config says what it is, not which
   revision it is).
"""
import ast
import os
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = 'amd_mmaction'


def _py_files(top):
    for folder, dirs, files in os.walk(osp.join(ROOT, top)):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.') and d != '__pycache__')
        for name in sorted(files):
            if name.endswith('.py'):
                yield osp.join(folder, name)


def _module_name(path):
    rel = osp.splitext(osp.relpath(path, ROOT))[0].split(os.sep)
    return '.'.join(rel[:-1] if rel[-1] == '__init__' else rel)


MODULES = {_module_name(p): p for p in _py_files(PACKAGE)}
TREES = {}


def _tree(module):
    if module not in TREES:
        with open(MODULES[module], encoding='utf-8') as f:
            TREES[module] = ast.parse(f.read(), MODULES[module])
    return TREES[module]


def _is_package(module):
    return MODULES[module].endswith('__init__.py')


def _private(name):
    return name.startswith('_') and not (name.startswith('__') and name.endswith('__'))


def _absolute(module, node):
    """The module a ``from ... import`` names, relative levels resolved."""
    if not node.level:
        return node.module
    base = module.split('.')
    base = base[:len(base) - node.level + (1 if _is_package(module) else 0)]
    return '.'.join(base + ([node.module] if node.module else []))


def _import_time_nodes(tree):
    """Import statements that run when the module is imported: not inside a
    function, not under ``if TYPE_CHECKING:``."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and 'TYPE_CHECKING' in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        todo.extend(ast.iter_child_nodes(node))


def _imported_modules(module, node):
    """(the amd_mmaction module each imported name comes from, the name)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split('.')[0] == PACKAGE:
                yield alias.name, None
        return
    source = _absolute(module, node)
    if not source or source.split('.')[0] != PACKAGE:
        return
    for alias in node.names:
        sub = f'{source}.{alias.name}'
        yield (sub, None) if sub in MODULES else (source, alias.name)


def _import_graph():
    graph = {}
    for module in MODULES:
        graph[module] = sorted({target for node in _import_time_nodes(_tree(module))
                                for target, _ in _imported_modules(module, node)
                                if target in MODULES and target != module})
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    graph = _import_graph()
    assert graph['amd_mmaction'], 'the import graph was not read'
    cycles = _cycles(graph)
    detail = [' <-> '.join(c) + '\n    ' + '\n    '.join(
        f'{m} imports {", ".join(t for t in graph[m] if t in c)}' for m in c) for c in cycles]
    assert not cycles, 'import cycles at import time:\n' + '\n'.join(detail)


def _private_uses(module):
    tree = _tree(module)
    found = []
    bound = {}  # local name -> amd_mmaction module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split('.')[0] == PACKAGE:
                    if alias.asname:
                        bound[alias.asname] = alias.name
                    else:
                        bound[PACKAGE] = PACKAGE
        elif isinstance(node, ast.ImportFrom):
            for source, name in _imported_modules(module, node):
                if name is None:  # a module
                    alias = next(a for a in node.names if f'{_absolute(module, node)}.{a.name}' == source)
                    bound[alias.asname or alias.name] = source
                    parent = source.rsplit('.', 1)[0]
                    if _private(source.rsplit('.', 1)[1]) and not (
                            module == parent or module.startswith(parent + '.')):
                        found.append(f'line {node.lineno}: imports the private module {source}')
                elif _private(name):
                    found.append(f'line {node.lineno}: from {source} import {name}')
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            chain, base = [node.attr], node.value
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in bound and bound[base.id] != module:
                dotted = '.'.join([bound[base.id]] + chain[::-1])
                found.append(f'line {node.lineno}: uses {dotted}')
    return found


def test_no_private_names_across_modules():
    found = {m: _private_uses(m) for m in MODULES}
    found = {m: v for m, v in found.items() if v}
    assert not found, 'private names taken from other modules:\n' + '\n'.join(
        f'{MODULES[m]}: {"; ".join(v)}' for m, v in sorted(found.items()))


def _names(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _mentions_configs(node):
    return any(isinstance(n, ast.Constant) and isinstance(n.value, str)
               and 'configs' in n.value.replace('\\', '/').split('/')
               for n in ast.walk(node))


def _checkout_paths(module):
    """Expressions that join ``__file__`` (or a name computed from it) with
    'configs'."""
    tree = _tree(module)
    from_file = {'__file__'}
    changed = True
    while changed:  # names assigned from __file__, directly or through others
        changed = False
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None \
                    and _names(node.value) & from_file:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                new = set().union(*(_names(t) for t in targets)) - from_file
                if new:
                    from_file |= new
                    changed = True
    return sorted({f'line {node.lineno}: {ast.unparse(node)}' for node in ast.walk(tree)
                   if isinstance(node, (ast.Call, ast.BinOp, ast.JoinedStr))
                   and _names(node) & from_file and _mentions_configs(node)})


def test_no_path_into_the_checkout():
    found = {m: _checkout_paths(m) for m in MODULES if m != 'amd_mmaction.config_files'}
    found = {m: v for m, v in found.items() if v}
    assert not found, ('paths into the checkout (ask amd_mmaction.config_files.config_file '
                       'for a config):\n' + '\n'.join(
                           f'{MODULES[m]}: {"; ".join(v)}' for m, v in sorted(found.items())))


def test_the_checks_see_what_they_guard():
    """Each check flags a made-up offender (so a passing run means something)."""
    def parse(module, text, package=False):
        MODULES[module] = f'{module}/__init__.py' if package else f'{module}.py'
        TREES[module] = ast.parse(text)
    try:
        parse('amd_mmaction.zz_a', 'from amd_mmaction.zz_b import thing\n'
              'from amd_mmaction.compat import _helper\n'
              'from amd_mmaction import compat\nx = compat._APPLIED\n')
        parse('amd_mmaction.zz_b', 'import os.path as osp\n'
              'def f():\n    from amd_mmaction.zz_c import y\n'
              'if True:\n    from amd_mmaction.zz_a import z\n'
              "HERE = osp.dirname(__file__)\nROOT = osp.dirname(HERE)\n"
              "def g():\n    return osp.join(ROOT, 'configs', 'tiny')\n")
        parse('amd_mmaction.zz_c', 'from amd_mmaction.zz_b import y\n')
        assert ['amd_mmaction.zz_a', 'amd_mmaction.zz_b'] in _cycles(_import_graph())
        assert len(_private_uses('amd_mmaction.zz_a')) == 2
        assert _checkout_paths('amd_mmaction.zz_b')
    finally:
        for module in ('amd_mmaction.zz_a', 'amd_mmaction.zz_b', 'amd_mmaction.zz_c'):
            MODULES.pop(module, None)
            TREES.pop(module, None)


def test_no_revision_suffixes_in_file_names():
    found = [osp.relpath(osp.join(folder, name), ROOT)
             for top in ('amd_mmaction', 'tools', 'tests', 'configs')
             for folder, dirs, files in os.walk(osp.join(ROOT, top))
             for name in files if name.endswith('_v2.py')]
    assert not found, f'file names with a revision suffix: {sorted(found)}'
