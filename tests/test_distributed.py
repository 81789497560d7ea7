"Training on several processes: two gloo processes on the CPU, started by torchrun as a user would."
import hashlib, os, subprocess, sys, textwrap
from pathlib import Path

import pytest
from PIL import Image

from srwork.core import sample_images

TORCHRUN = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2']


def torchrun(*args, cwd, timeout=300):
    "Run `args` in two processes; a process stuck in a collective (processes that disagree) fails by the timeout."
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run(TORCHRUN + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return sample_images(tmp_path_factory.mktemp('samples'))


def test_torchrun_trains_one_model_written_once(data, tmp_path):
    "`torchrun -m srwork train` with a relative -o: exit 0, one log row per epoch (one writer), a model `srwork upscale` uses."
    r = torchrun('-m', 'srwork', 'train', '--arch', 'edsr', '--size', 'small', '--data', data, '--scale', 2, '--patch', 32,
                 '--bs', 2, '--epochs', 2, '-o', 'runs/ddp', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path/'runs'/'ddp'
    assert r.stdout.count('edsr train: x2') == 1                        # one process prints
    rows = (out/'history_train.csv').read_text().splitlines()
    assert rows[0].startswith('epoch,') and [l.split(',')[0] for l in rows[1:]] == ['0', '1'], rows
    assert sorted(f.name for f in out.iterdir()) == ['checkpoint_train.pth', 'curves.png', 'history_train.csv', 'model.pkl',
                                                     'model.safetensors', 'results.csv', 'train_state.json']
    Image.new('RGB', (20, 14), (90, 120, 200)).save(tmp_path/'small.png')
    up = subprocess.run([sys.executable, '-m', 'srwork', 'upscale', tmp_path/'small.png', '-m', out/'model.safetensors',
                         '-o', tmp_path/'up'], capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr
    assert Image.open(tmp_path/'up'/'small.png').size == (40, 28)


def test_a_time_budget_stops_both_processes_at_the_same_step(data, tmp_path):
    "Each process's own clock would stop them at different steps, leaving one waiting in DDP's all-reduce: rank 0's clock decides."
    r = torchrun('-m', 'srwork', 'train', '--arch', 'edsr', '--size', 'small', '--data', data, '--scale', 2, '--patch', 32,
                 '--bs', 2, '--minutes', 0.1, '-q', '-o', tmp_path/'run', cwd=tmp_path, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path/'run'/'model.safetensors').is_file()


def test_ddp_keeps_the_processes_weights_identical(data, tmp_path):
    "Under `ddp`, after several steps from different data shards, both processes hold the same weights, and they moved."
    script = tmp_path/'fit.py'
    script.write_text(textwrap.dedent(f'''
        import hashlib, sys, torch
        from srwork.core import set_seed
        from srwork.data import sr_dataloaders
        from srwork.edsr import edsr_learner
        from srwork.training import ddp, setup_distributed, rank_distrib
        setup_distributed()
        set_seed(rank_distrib())                   # different initial weights: DDP starts every process from rank 0's
        dls = sr_dataloaders({str(data)!r}, scale=2, patch_size=32, bs=2, num_workers=0, valid_pct=0.2)
        learn = edsr_learner(dls, 2, num_feat=8, num_block=1)
        before = torch.cat([p.detach().flatten() for p in learn.model.parameters()]).clone()
        with learn.no_bar(), learn.no_logging(), ddp(learn): learn.fit(2, 1e-3)
        after = torch.cat([p.detach().flatten() for p in learn.model.parameters()])
        digest = hashlib.sha256(after.numpy().tobytes()).hexdigest()
        print(f"rank {{rank_distrib()}} {{digest}} {{float((after - before).abs().max())}}", flush=True)
    '''))
    r = torchrun(script, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = sorted(l.split() for l in r.stdout.splitlines() if l.startswith('rank '))
    assert [l[1] for l in lines] == ['0', '1'], r.stdout
    assert lines[0][2] == lines[1][2]                                   # identical weights
    assert float(lines[0][3]) > 1e-4                                     # and they trained
