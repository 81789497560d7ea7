"""Test-session settings. Under pytest-xdist each worker, and every srwork process it starts, computes on one thread:
the workers then share the cores instead of each asking PyTorch for all of them."""
import os

if os.environ.get('PYTEST_XDIST_WORKER'):
    for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'): os.environ.setdefault(var, '1')
    import torch
    torch.set_num_threads(1)
