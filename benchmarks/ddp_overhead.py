#!/usr/bin/env python
"""Time of one training iteration on 2 processes (torchrun, DDP) vs 1, at the same global batch, side by side in one run.

    python benchmarks/ddp_overhead.py [--arch edsr --size baseline --bs 16 --patch 96 --iters 20]

Each configuration is a fresh `torchrun` launch of the same script: `setup_distributed`, the learner of `--arch`
on the offline sample photographs, `ddp(learn)`, a few warm-up iterations, then the median wall time of `--iters`
training iterations (rank 0's clock). One process trains on batches of `--bs`; two processes on `--bs / 2` each, so
the global batch is the same. On a 2-core CPU machine the two processes share the cores that one process used:
the ratio measures DDP's overhead (gradient all-reduce over gloo, duplicated data work), not a speed-up. On a
machine with one GPU per process the same command measures the speed-up (not measured yet: no GPU box so far).

Measured on the 2-core reference machine (2026-12-01), `--iters 10`: EDSR-baseline x2, HR patch 96, global batch 16:
1 process 1941 ms / iteration, 2 processes 1719 ms: 0.89x (two one-thread processes use the two cores a little better
than one two-thread process; the all-reduce of 1.37 M parameters over gloo costs less than that gain).
"""
import argparse, json, os, subprocess, sys, textwrap
from pathlib import Path

from srwork.core import sample_images, scratch_dir

WORKER = textwrap.dedent('''
    import json, statistics, sys, time, warnings, torch
    warnings.simplefilter('ignore')
    from fastai.callback.core import Callback
    from srwork.core import set_seed
    from srwork.data import sr_dataloaders
    from srwork.models import create_model
    from srwork.distributed import ddp, setup_distributed, teardown_distributed
    from fastai.torch_core import rank_distrib, num_distrib
    from srwork.models import ARCHS, make_learner
    import srwork.edsr, srwork.esrgan, srwork.unet          # (they register their architectures)
    a = json.loads(sys.argv[1])
    device = setup_distributed()
    set_seed(0)
    spec = ARCHS[a['arch']]
    from srwork.data import image_files
    items = image_files(a['data']) * 50            # a few photos, many random patches: every process gets full batches
    dls = sr_dataloaders(items, scale=a['scale'], patch_size=a['patch'], bs=a['bs'], num_workers=0, valid_pct=0.1,
                         upsample_input=spec.upsample_input, normalize=spec.normalize, cache=100,
                         **({'device': device} if device is not None else {}))
    assert len(dls.train) > a['warmup'] + a['iters'], 'too few training batches'
    learn = make_learner(spec, dls, create_model(a['arch'], a['size'], a['scale']), a['scale'], spec.phases[0], False, path=a['out'])
    class Clock(Callback):
        order = 99
        def before_fit(self): self.times = []
        def before_batch(self): self.t = time.perf_counter()
        def after_batch(self):
            if self.training: self.times.append(time.perf_counter() - self.t)
            if len(self.times) >= a['warmup'] + a['iters']: raise __import__('fastai').callback.core.CancelFitException()
    clock = Clock()
    with learn.no_bar(), learn.no_logging(), ddp(learn): learn.fit(10**6, 1e-4, cbs=clock)
    if rank_distrib() == 0:
        t = statistics.median(clock.times[a['warmup']:])
        print('RESULT', json.dumps(dict(processes=max(num_distrib(), 1), bs=a['bs'], seconds=t)), flush=True)
    teardown_distributed()
''')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--arch', default='edsr')
    ap.add_argument('--size', default='baseline')
    ap.add_argument('--scale', type=int, default=2)
    ap.add_argument('--patch', type=int, default=96, help='HR patch')
    ap.add_argument('--bs', type=int, default=16, help='global batch')
    ap.add_argument('--iters', type=int, default=20)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--threads', type=int, default=len(os.sched_getaffinity(0)), help='CPU threads in all, shared by the processes')
    a = ap.parse_args()
    work = scratch_dir('srwork-ddp-')
    data = sample_images(work/'samples')
    script = work/'worker.py'; script.write_text(WORKER)
    results = {}
    for n in (1, 2):
        cfg = dict(arch=a.arch, size=a.size, scale=a.scale, patch=a.patch, bs=a.bs // n, iters=a.iters, warmup=a.warmup,
                   data=str(data), out=str(work/f'out{n}'))
        env = dict(os.environ, OMP_NUM_THREADS=str(max(a.threads // n, 1)), TMPDIR=str(work))   # (torchrun's log folder too)
        r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(n),
                            str(script), json.dumps(cfg)], capture_output=True, text=True, env=env, timeout=1800)
        line = next((l for l in r.stdout.splitlines() if l.startswith('RESULT')), None)
        if r.returncode or line is None: raise SystemExit(f"{n} process(es) failed:\n{r.stderr[-3000:]}")
        results[n] = json.loads(line.split(' ', 1)[1])
    one, two = results[1]['seconds'], results[2]['seconds']
    print(f"{a.arch} ({a.size}) x{a.scale}, HR patch {a.patch}, global batch {a.bs}, {a.threads} CPU threads in all; "
          f"median of {a.iters} iterations after {a.warmup} warm-up")
    print(f"  1 process,  batch {a.bs}:            {one * 1000:8.1f} ms / iteration")
    print(f"  2 processes, batch {a.bs // 2} each (DDP): {two * 1000:8.1f} ms / iteration")
    print(f"  2 processes / 1 process: {two / one:.2f}x the time per iteration at the same global batch")


if __name__ == '__main__':
    main()
