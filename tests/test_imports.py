"The package's import graph: no cycle, and every module imports only modules before it in the pipeline (function-local imports included)."
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1]/'srwork'
PIPELINE = ['core', 'crappify', 'data', 'metrics', 'losses', 'models', 'edsr', 'esrgan', 'unet', 'training', 'inference',
            'benchmark', 'web', 'cli', '__main__']
NOT_IN_PIPELINE = {'__init__', '_modidx'}      # the version string and nbdev's index: no srwork imports


def srwork_imports(path:Path) -> set:
    "Every srwork module `path` imports, at any depth of the file (inside functions and classes too)."
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split('.')[1] for a in node.names if a.name.startswith('srwork.')}
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level == 1: mod = 'srwork.' + mod if mod else 'srwork'
            if mod == 'srwork':                          # from srwork import edsr, esrgan / from . import x
                out |= {a.name for a in node.names if (PKG/f'{a.name}.py').is_file()}
            elif mod.startswith('srwork.'): out.add(mod.split('.')[1])
    return out


def test_every_module_is_in_the_pipeline():
    assert {p.stem for p in PKG.glob('*.py')} - NOT_IN_PIPELINE == set(PIPELINE)


@pytest.mark.parametrize('module', PIPELINE)
def test_imports_only_look_back(module):
    earlier = set(PIPELINE[:PIPELINE.index(module)])
    later = srwork_imports(PKG/f'{module}.py') - earlier - {module}
    assert not later, f"srwork.{module} imports {sorted(later)}, which come later in the pipeline"


def test_the_check_sees_function_local_imports(tmp_path):
    f = tmp_path/'m.py'
    f.write_text("def f():\n    from srwork.cli import main\n    import srwork.benchmark\n    from srwork import inference\n")
    assert srwork_imports(f) == {'cli', 'benchmark', 'inference'}


def test_no_cycle():
    graph = {m: srwork_imports(PKG/f'{m}.py') - {m} for m in PIPELINE}
    seen, stack = set(), set()
    def visit(m):
        assert m not in stack, f"import cycle through srwork.{m}"
        if m in seen: return
        stack.add(m)
        for n in graph[m]: visit(n)
        stack.discard(m); seen.add(m)
    for m in PIPELINE: visit(m)
