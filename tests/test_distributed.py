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
        open(f'rank{{rank_distrib()}}.txt', 'w').write(f"rank {{rank_distrib()}} {{digest}} {{float((after - before).abs().max())}}")
    '''))
    r = torchrun(script, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [(tmp_path/f'rank{i}.txt').read_text().split() for i in (0, 1)]       # (one file each: their prints interleave)
    assert [l[1] for l in lines] == ['0', '1']
    assert lines[0][2] == lines[1][2]                                   # identical weights
    assert float(lines[0][3]) > 1e-4                                     # and they trained


def test_gan_phase_keeps_generator_discriminator_and_ema_identical(data, tmp_path):
    "ESRGAN's GAN phase under `ddp`: G (DDP), D (rank 0's start, averaged gradients) and the EMA agree after several steps."
    script = tmp_path/'gan.py'
    script.write_text(textwrap.dedent(f'''
        import hashlib, torch
        from srwork.core import set_seed
        from srwork.data import sr_dataloaders
        from srwork.esrgan import esrgan_learner
        from srwork.training import ddp, setup_distributed, rank_distrib
        def digest(ts): return hashlib.sha256(torch.cat([t.detach().float().flatten() for t in ts]).numpy().tobytes()).hexdigest()[:16]
        setup_distributed()
        set_seed(rank_distrib())                   # different initial G and D in each process
        dls = sr_dataloaders({str(data)!r}, scale=2, patch_size=32, bs=2, num_workers=0, valid_pct=0.2)
        learn = esrgan_learner(dls, 2, 'gan', num_feat=8, num_block=1, num_grow_ch=4, pretrained=False, ema=0.9)
        D = learn.gan_trainer.D
        d0 = digest(D.parameters())
        with learn.no_bar(), learn.no_logging(), ddp(learn): learn.fit(2, 1e-4)
        ema = [cb for cb in learn.cbs if type(cb).__name__ == 'GeneratorEMA'][0]
        open(f'rank{{rank_distrib()}}.txt', 'w').write(' '.join(map(str, ['rank', rank_distrib(), digest(learn.model.parameters()),
            digest(D.parameters()), digest(D.buffers()), digest(ema.ema.values()), d0, len(learn.gan_trainer.history)])))
    '''))
    r = torchrun(script, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    r0, r1 = [(tmp_path/f'rank{i}.txt').read_text().split() for i in (0, 1)]
    assert (r0[1], r1[1]) == ('0', '1') and r0[2:6] == r1[2:6], (r0, r1)   # G, D, D's BN statistics, EMA: identical
    assert r0[6] != r1[6] and r0[3] != r0[6]                 # D started different in each process, and it trained
    assert r0[7] == r1[7] and int(r0[7]) > 0                 # the same number of D steps


def test_ctrl_c_then_resume(data, tmp_path):
    "Ctrl-C reaches torchrun and both processes (one process group, as from a terminal): rank 0 saves, says so once; --resume finishes every epoch once."
    import signal, time, torch
    out = tmp_path/'run'
    args = TORCHRUN + ['-m', 'srwork', 'train', '--arch', 'edsr', '--data', str(data), '--scale', '2', '--patch', '48', '--bs', '2',
                       '--epochs', '12', '--size', 'small', '-o', str(out)]
    def terminal(): os.setsid(); signal.signal(signal.SIGINT, signal.SIG_DFL)
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=terminal,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    t0 = time.time()
    while not (out/'checkpoint_train.pth').exists():
        assert p.poll() is None, p.communicate()[1][-2000:]
        assert time.time() - t0 < 240
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode != 0 and err.count('srwork: interrupted: checkpoint saved') == 1, err[-2000:]
    assert not (out/'model.safetensors').exists()
    assert 0 <= torch.load(out/'checkpoint_train.pth', weights_only=False)['epoch'] < 11
    r = torchrun(*args[len(TORCHRUN):], '--resume', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = (out/'history_train.csv').read_text().splitlines()[1:]
    assert [l.split(',')[0] for l in rows] == [str(i) for i in range(12)], rows
    assert (out/'model.safetensors').is_file()


def test_srwork_works_without_accelerate_and_names_the_extra_when_needed(tmp_path):
    "fastai.distributed fails to import without accelerate: srwork loads it only for several processes."
    code = ("import sys; sys.modules['accelerate'] = None\n"
            "import srwork.cli, srwork.training as t\n"
            "t.num_distrib = lambda: 2\n"                      # as in a torchrun process
            "try: t.setup_distributed()\n"
            "except t.SRWorkError as e: print(e)\n")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "needs accelerate: pip install 'srwork[distributed]'" in r.stdout
