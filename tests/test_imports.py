"The package's import graph: no cycle, and every module imports only modules before it in the pipeline (function-local imports included)."
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1]/'srwork'
PIPELINE = ['core', 'degradations', 'crappify', 'data', 'metrics', 'perceptual', 'losses', 'learner', 'distributed', 'callbacks', 'models', 'upscaler',
            'modelfiles', 'edsr', 'esrgan', 'unet', 'archs', 'schedules', 'rundir', 'tracking', 'config', 'training', 'inference', 'benchmark', 'web',
            '_browser', 'commands', 'cli', '__main__']
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


def _srwork_flags() -> set:
    "Every option string of every srwork subcommand (and the program's own), read from the parser the CLI builds."
    from srwork.cli import COMMANDS, build_parser
    flags = {'--version'}
    for name in COMMANDS.names:
        sub = next(a for a in build_parser(name)._actions if a.dest == 'command').choices[name]
        flags |= {o for a in sub._actions for o in a.option_strings if o.startswith('--') and o != '--help'}
    return flags


def _texts(path:Path):
    "The string literals and comments of a module's source."
    import io, tokenize
    kinds = {tokenize.STRING, tokenize.COMMENT, getattr(tokenize, 'FSTRING_MIDDLE', tokenize.STRING)}   # (f-strings: one STRING up to 3.11)
    for t in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if t.type in kinds: yield t.start[0], t.string


def test_the_library_speaks_python_not_flags():
    "No module but `cli` names a flag of the `srwork` command in its messages, docs or comments: the library names parameters, the CLI maps them to flags."
    import re
    flags = _srwork_flags()
    assert {'--bs', '--tile-pad', '--no-pretrained', '--trust-pickle', '--overwrite'} <= flags      # (the check sees the flags)
    found = []
    for module in PIPELINE:
        if module in ('cli', '__main__'): continue
        for line, text in _texts(PKG/f'{module}.py'):
            for flag in re.findall(r'(?<![\w-])--[a-z][a-z0-9-]*', text):
                if flag in flags: found.append(f"srwork/{module}.py:{line}: {flag}")
    assert not found, '\n'.join(found)


def test_the_check_sees_a_flag_in_a_message(tmp_path):
    f = tmp_path/'m.py'
    f.write_text('def f(bs):\n    raise ValueError(f"--bs {bs} is too big")  # see --resume\n')
    texts = ' '.join(t for _, t in _texts(f))
    assert '--bs' in texts and '--resume' in texts


def _function_lengths() -> dict:
    "Lines of every function and method of the package, by 'module.qualified_name' (decorators and docstring included)."
    out = {}
    for module in PIPELINE + ['__init__']:
        tree = ast.parse((PKG/f'{module}.py').read_text())
        def walk(node, prefix):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                    out[f'{module}.{prefix}{child.name}'] = child.end_lineno - first + 1
                    walk(child, f'{prefix}{child.name}.')
                elif isinstance(child, ast.ClassDef): walk(child, f'{prefix}{child.name}.')
        walk(tree, '')
    return out


def test_functions_are_short():
    "No function of the package is over 60 lines, and `train` reads as a few steps (at most 40 lines)."
    lengths = _function_lengths()
    assert lengths['training.train'] <= 40, lengths['training.train']
    long = {k: v for k, v in lengths.items() if v > 60}
    assert not long, long
