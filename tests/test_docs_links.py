"""README.md and docs/*.md point only at things that exist: every relative
link (and its #anchor), and every repository path named in code (inline
`...` spans and fenced blocks). The raw run outputs under docs/results/ are
not checked (they quote the commands of their time)."""
import glob
import os.path as osp
import re

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAGES = sorted(['README.md'] + [osp.relpath(p, ROOT)
                                for p in glob.glob(osp.join(ROOT, 'docs', '*.md'))])

# Repository paths named in code: they start at one of these top-level folders
# (not inside a longer path such as work_dirs/demo/ or mmaction/.mim/tools).
REPO_PATH = re.compile(r'(?<![\w./-])((?:amd_mmaction|tools|configs|demo|tests|docs|\.ci)/'
                       r'[\w.*{},/-]*)')
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')
FENCE = re.compile(r'^\s*(```|~~~)')
INLINE_CODE = re.compile(r'(`+)((?:(?!\n\s*\n).)+?)\1', re.S)  # may wrap, not across paragraphs

# Paths that are named on purpose although they no longer exist (or never
# were ours), each allowed only on the pages listed, with the reason.
HISTORICAL = {
    'tools/reproduce_v2.py': (
        {'README.md', 'docs/results.md', 'docs/reproduce.md'},
        'the command that produced the recorded protocol v2 results, quoted as run; '
        'now tools/reproduce.py run'),
    'tools/reproduce_v2_lowlabel.py': (
        {'README.md', 'docs/results.md', 'docs/reproduce.md'},
        'the command that produced the recorded low-label results, quoted as run; '
        'now tools/reproduce.py lowlabel'),
    'tools/reproduce_paper.py': (
        {'docs/reproduce.md'},
        'protocol v1 history, quoted as run; v1 is retired'),
    'tools/pilot_teacher.py': (
        {'docs/reproduce.md'},
        'the pilot runs that chose protocol v2, quoted as run; the script was removed'),
    'tools/analysis_tools/analyze_logs.py': (
        {'docs/reliability.md'},
        "mmaction2's own tool (in its wheel), not a path of this repository"),
    'tools/data/ava': (
        {'docs/data.md'},
        "mmaction2's AVA scripts folder (in its repository), not a path of this one"),
    'tools/data/ava/download_annotations.sh': (
        {'docs/data.md'},
        "mmaction2's AVA download script (in its repository), not a path of this one"),
}


def split_fences(text):
    """(prose lines, code lines) of a Markdown page."""
    prose, code, inside = [], [], False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
            continue
        (code if inside else prose).append(line)
    return prose, code


def code_texts(text):
    prose, code = split_fences(text)
    spans = [m.group(2) for m in INLINE_CODE.finditer('\n'.join(prose))]
    return spans + code


def expand_braces(path):
    m = re.search(r'\{([^{}]*)\}', path)
    if not m:
        return [path]
    return [x for alt in m.group(1).split(',')
            for x in expand_braces(path[:m.start()] + alt + path[m.end():])]


def exists(path):
    full = osp.join(ROOT, path)
    return bool(glob.glob(full)) if any(c in path for c in '*?[') else osp.lexists(full)


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r'`', '', heading.strip().lower())
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(path):
    prose, _ = split_fences(open(path, encoding='utf-8').read())
    seen, out = {}, set()
    for line in prose:
        m = re.match(r'^(#{1,6})\s+(.*?)\s*#*\s*$', line)
        if m:
            s = slug(m.group(2))
            n = seen.get(s, 0)
            out.add(s if n == 0 else f'{s}-{n}')
            seen[s] = n + 1
    return out


def repo_paths(page):
    text = open(osp.join(ROOT, page), encoding='utf-8').read()
    found = set()
    for chunk in code_texts(text):
        for m in REPO_PATH.finditer(chunk):
            found.add(m.group(1).rstrip('.,:;'))
    return sorted(found)


@pytest.mark.parametrize('page', PAGES)
def test_repo_paths_in_code_exist(page):
    missing = []
    for path in repo_paths(page):
        allowed = HISTORICAL.get(path)
        if allowed and page in allowed[0]:
            continue
        if not all(exists(p) for p in expand_braces(path)):
            missing.append(path)
    assert not missing, (f'{page} names paths that do not exist: {missing}. Fix the path, or, '
                         'for a command quoted as it was run, add it to HISTORICAL in '
                         'tests/test_docs_links.py with the reason')


@pytest.mark.parametrize('page', PAGES)
def test_relative_links_exist(page):
    text = open(osp.join(ROOT, page), encoding='utf-8').read()
    prose, _ = split_fences(text)
    here = osp.dirname(osp.join(ROOT, page))
    broken = []
    for m in LINK.finditer(INLINE_CODE.sub('', '\n'.join(prose))):
        target = m.group(1)
        if re.match(r'^[a-z][a-z0-9+.-]*:', target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition('#')
        full = osp.normpath(osp.join(here, path)) if path else osp.join(ROOT, page)
        if not osp.lexists(full):
            broken.append(target)
        elif anchor and full.endswith('.md') and anchor not in anchors(full):
            broken.append(f'{target} (no heading with that anchor)')
    assert not broken, f'{page} has broken relative links: {broken}'


def test_readme_is_a_front_door():
    """README stays short and opens with the two commands that .ci/run relies on."""
    readme = open(osp.join(ROOT, 'README.md'), encoding='utf-8').read()
    assert len(readme.encode('utf-8')) <= 12_000, 'README.md over 12 KB: move detail to docs/'
    _, code = split_fences(readme)
    assert any(line.strip().startswith('python3 -m venv .venv') and 'pip install torch==2.13.0'
               in line for line in code)
    ci = open(osp.join(ROOT, '.ci', 'run'), encoding='utf-8').read()
    assert 'python -m pytest -q tests' in ci
    assert 'python -m pytest -q tests' in [line.strip() for line in code]


def test_readme_links_every_docs_page():
    readme = open(osp.join(ROOT, 'README.md'), encoding='utf-8').read()
    linked = {m.group(1).partition('#')[0] for m in LINK.finditer(readme)}
    unlinked = [p for p in PAGES if p != 'README.md' and p not in linked]
    assert not unlinked, f'README.md does not link these docs pages: {unlinked}'
