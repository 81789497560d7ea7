"""Test-session settings. Under pytest-xdist each worker, and every srwork process it starts, computes on one thread:
the workers then share the cores instead of each asking PyTorch for all of them."""
import os

import pytest

if os.environ.get('PYTEST_XDIST_WORKER'):
    for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'): os.environ.setdefault(var, '1')
    import torch
    torch.set_num_threads(1)



@pytest.fixture
def srwork_refusals(capsys):
    """Runs `srwork` command lines (`runs`: (argv, out) pairs) in this process, each expected to refuse in one line
    before it writes `out`; returns each one's (exit code, stderr, whether `out` exists). In this process because a
    refusal costs nothing while a fresh process spends seconds importing torch and fastai (`__main__` only passes the
    code of `main` to `sys.exit`; other tests run the real program)."""
    def run(runs):
        from srwork.cli import main
        results = []
        for argv, out in runs:
            capsys.readouterr()
            rc = main([str(a) for a in argv])
            results.append((rc, capsys.readouterr().err, out.exists()))
        return results
    return run
