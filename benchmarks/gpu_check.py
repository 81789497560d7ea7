#!/usr/bin/env python
"""The check every developer who draws a GPU runs first: one script, one table, about 8 minutes on a current GPU.

    python benchmarks/gpu_check.py                 # on the GPU machine, from the repository root
    python benchmarks/gpu_check.py --cpu --quick   # anywhere: the CUDA parts are skipped (CI runs this)

Parts, each in its own process with a share of `--minutes` (a part that runs out of time says so and the rest go on):

1. notebooks: `nbdev_test --flags cuda` over the notebooks (the cells that need a GPU included), on `--workers` cores;
2. tests: the test suite with pytest-xdist, CUDA visible (tests that take the GPU path when one is present);
3. training speed: iterations per second of EDSR-baseline x2 (bs 16, HR 96) for each speed option (fp32, bf16, fp16,
   channels-last, compile) through the learner `srwork train` builds, against a bare PyTorch loop on the same batches;
4. loader: the share of the learner's wall time spent waiting for the default loader (`benchmarks/train_speed.py`'s
   breakdown) on 2040x1356 PNGs, which the default loader prepares as arrays once;
5. upscale: `srwork upscale` of a 12-megapixel image with x4plus-size RRDBNet weights (23 blocks, random): seconds
   and peak GPU memory;
6. DDP: `torchrun --nproc_per_node <GPUs>` of `srwork train` for a few iterations (NCCL).

Every part reports a status (ok, FAILED, timed out, skipped) and its figures in the table at the end; the exit code
is 1 when a part failed. With `--cpu` (or no CUDA device) parts 1, 2, 5 and 6 are skipped and 3-4 run on the CPU;
`--quick` shrinks every size (a check that the script works, not a measurement).
"""
import argparse, json, os, subprocess, sys, tempfile, textwrap, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent

TRAIN_SPEED = '''
import json, statistics, sys, time, copy, warnings
warnings.simplefilter('ignore')
sys.path.insert(0, {bench!r})
import torch
from srwork.core import sample_images, scratch_dir, set_seed
from srwork.config import as_config
from srwork.training import train_model, phase_learner, train_dataloaders, check_train_data
from srwork.schedules import fit_iters
from srwork.callbacks import speed_callbacks
from train_speed import bare_loop, draw_batches, run_config
from train_options import StepTimer, CONFIGS
dev = torch.device('cuda' if torch.cuda.is_available() and not {cpu} else 'cpu')
data = sample_images(scratch_dir() / 'photos')
cfg = as_config('edsr', scale=2, size={size!r}, patch={patch}, bs={bs}, valid_pct=0.1, channels_last=False, precision='fp32').resolve(dev.type)
files = check_train_data(data, cfg.patch)
steps, warm = {steps}, {warm}
set_seed(0); model = train_model(cfg, quiet=True)
batches = draw_batches(cfg, files, steps, dev)
rows = []
for name, opts in CONFIGS:
    if name not in {configs!r}: continue
    c = as_config(cfg, **{{'channels_last': False, **opts}})
    try:
        learn = phase_learner(c, train_dataloaders(run_config(c, steps), files, dev), copy.deepcopy(model), 'train')
        timer = StepTimer(); learn.add_cb(timer)
        with learn.no_bar(), learn.no_logging(): fit_iters(learn, steps, 1e-4)
        t = statistics.median(timer.times[warm:])
        bare = bare_loop(model, batches[warm:], learn.loss_func, c, dev) / (steps - warm) if not opts.get('compile') else None
        rows.append(dict(option=name, it_s=1 / t, bare_it_s=1 / bare if bare else None))
    except Exception as e:
        rows.append(dict(option=name, error=f"{{type(e).__name__}}: {{str(e).splitlines()[0][:120]}}"))
print('RESULT ' + json.dumps(rows))
'''

LOADER = '''
import json, sys, tempfile, warnings
warnings.simplefilter('ignore')
sys.path.insert(0, {bench!r})
from pathlib import Path
import torch, os
from srwork.config import as_config
from srwork.training import train_model, check_train_data
from train_speed import learner_run
from data_throughput import make_images
dev = torch.device('cuda' if torch.cuda.is_available() and not {cpu} else 'cpu')
with tempfile.TemporaryDirectory() as tmp:
    os.environ['SRWORK_DATA'] = str(Path(tmp) / 'data_root')          # (the prepared arrays too: a first run, as a user's)
    make_images(Path(tmp), {images})
    cfg = as_config('edsr', scale=4, size={size!r}, patch={patch}, bs={bs}, valid_pct=0.1, precision='fp32').resolve(dev.type)
    files = check_train_data(Path(tmp) / 'png', cfg.patch)
    wall, parts, _ = learner_run(train_model(cfg, quiet=True), cfg, files, {steps}, Path(tmp) / 'run', dev)
print('RESULT ' + json.dumps(dict(wall=wall, **parts)))
'''

UPSCALE = '''
import json, time, warnings, tempfile
warnings.simplefilter('ignore')
from pathlib import Path
import numpy as np, torch
from PIL import Image
from srwork.esrgan import RRDBNet
from srwork.upscaler import Upscaler
from srwork.modelfiles import save_model
from srwork.inference import upscale_files
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    torch.manual_seed(0)
    save_model(Upscaler.from_any(RRDBNet(scale=4, num_feat=64, num_block={blocks}, num_grow_ch=32)), tmp / 'x4plus.safetensors')
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, ({h} // 8, {w} // 8, 3), dtype=np.uint8)
    Image.fromarray(small).resize(({w}, {h}), Image.Resampling.BICUBIC).save(tmp / 'big.png')
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    upscale_files([tmp / 'big.png'], tmp / 'x4plus.safetensors', tmp / 'out', device='cuda')
    s = time.perf_counter() - t
    print('RESULT ' + json.dumps(dict(seconds=s, mpx={w} * {h} / 1e6, peak_gb=torch.cuda.max_memory_allocated() / 2**30,
                                      out=Image.open(tmp / 'out' / 'big.png').size)))
'''


def run_part(cmd, timeout, env=None, cwd=ROOT) -> tuple[str, str, float]:
    "(status, output tail, seconds) of `cmd`, killed after `timeout` seconds."
    t = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})
        out = r.stdout + r.stderr
        return ('ok' if r.returncode == 0 else f'FAILED (exit {r.returncode})'), out, time.perf_counter() - t
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b'').decode(errors='replace') if isinstance(e.stdout, bytes) else (e.stdout or '')
        return f'timed out ({timeout:.0f} s)', out, time.perf_counter() - t


def result(out: str):
    line = next((l for l in reversed(out.splitlines()) if l.startswith('RESULT ')), None)
    return json.loads(line[7:]) if line else None


def python(code: str) -> list: return [sys.executable, '-c', textwrap.dedent(code)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cpu', action='store_true', help='skip the CUDA parts (also the default without a CUDA device)')
    ap.add_argument('--quick', action='store_true', help='tiny sizes: a check of the script, not a measurement')
    ap.add_argument('--minutes', type=float, default=8, help='time for all the parts together')
    ap.add_argument('--workers', type=int, default=min(8, os.cpu_count() or 1), help='processes for the notebooks and tests')
    ap.add_argument('--parts', nargs='+', default=['notebooks', 'tests', 'train', 'loader', 'upscale', 'ddp'])
    a = ap.parse_args(argv)
    import torch
    cuda = torch.cuda.is_available() and not a.cpu
    gpus = torch.cuda.device_count() if cuda else 0
    budget = a.minutes * 60
    share = dict(notebooks=0.22, tests=0.3, train=0.18, loader=0.08, upscale=0.14, ddp=0.08)
    print(f"gpu_check: {torch.cuda.get_device_name() if cuda else 'CPU only (CUDA parts skipped)'}, {gpus} GPU(s), "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}, {a.minutes:g} min in all{', quick sizes' if a.quick else ''}", flush=True)
    rows = []          # (part, status, figures, seconds)
    def add(part, status, figures, secs):
        rows.append((part, status, figures, secs)); print(f"  {part}: {status} {figures} ({secs:.0f} s)", flush=True)
    q = a.quick
    for part in a.parts:
        limit = budget * share.get(part, 0.1)
        if part in ('notebooks', 'tests', 'upscale', 'ddp') and not cuda:
            add(part, 'skipped (no CUDA)', '', 0); continue
        if part == 'notebooks':
            st, out, s = run_part([Path(sys.executable).parent / 'nbdev_test', '--flags', 'cuda', '--n_workers', str(a.workers)], limit)
            add(part, st, out.strip().splitlines()[-1][:100] if out.strip() else '', s)
        elif part == 'tests':
            st, out, s = run_part([sys.executable, '-m', 'pytest', '-q', '-x', '-n', str(a.workers), '-p', 'no:cacheprovider', 'tests'], limit)
            tail = [l for l in out.splitlines() if ' passed' in l or ' failed' in l]
            add(part, st, tail[-1][:100] if tail else '', s)
        elif part == 'train':
            steps, warm = (4, 1) if q else (40, 10)
            configs = ['fp32', 'channels-last', 'bf16'] if q else [c for c, _ in _configs()]      # (quick: no fp16 emulation, no compiler)
            st, out, s = run_part(python(TRAIN_SPEED.format(bench=str(BENCH), cpu=not cuda, bs=2 if q else 16, steps=steps, warm=warm,
                                                            size='small' if q else 'baseline', patch=48 if q else 96, configs=configs)), limit)
            res = result(out)
            if res is None: add(part, st if st != 'ok' else 'FAILED (no result)', out.strip().splitlines()[-1][:100] if out.strip() else '', s); continue
            for r in res:
                if 'error' in r: add(f"train {r['option']}", 'FAILED', r['error'], 0); continue
                vs = f", bare loop {r['bare_it_s']:.2f} it/s, learner/bare time {r['bare_it_s'] / r['it_s']:.2f}x" if r['bare_it_s'] else ''
                add(f"train {r['option']}", 'ok', f"{r['it_s']:.2f} it/s{vs}", 0)
        elif part == 'loader':
            st, out, s = run_part(python(LOADER.format(bench=str(BENCH), cpu=not cuda, images=2 if q else 8, bs=2 if q else 16, steps=4 if q else 40,
                                                       size='small' if q else 'baseline', patch=96 if q else 192)), limit)
            res = result(out)
            if res is None: add(part, st if st != 'ok' else 'FAILED (no result)', out.strip().splitlines()[-1][:100] if out.strip() else '', s); continue
            add(part, st, f"data wait {res['data'] / res['wall'] * 100:.1f} % of the fit's {res['wall']:.1f} s (steps {res['steps']:.1f} s, "
                          f"setup {res['setup']:.1f} s incl. preparing the PNGs, epoch end {res['epoch_end']:.1f} s)", s)
        elif part == 'upscale':
            w, h, blocks = (800, 600, 2) if q else (4000, 3000, 23)
            st, out, s = run_part(python(UPSCALE.format(w=w, h=h, blocks=blocks)), limit)
            res = result(out)
            add(part, st, f"{res['mpx']:.1f} Mpx x4plus-size: {res['seconds']:.1f} s, peak GPU memory {res['peak_gb']:.1f} GB, output {res['out'][0]}x{res['out'][1]}"
                if res else (out.strip().splitlines()[-1][:100] if out.strip() else ''), s)
        elif part == 'ddp':
            with tempfile.TemporaryDirectory() as tmp:
                st, out, s = run_part([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(gpus), '-m', 'srwork',
                                       'train', '--arch', 'edsr', '--size', 'small', '--bs', '4', '--iters', '20', '--patches-per-epoch', '40',
                                       '--data', str(_samples(tmp)), '-o', str(Path(tmp) / 'run'), '--quiet'], limit,
                                      env=dict(TMPDIR=tmp))
                ok = (Path(tmp) / 'run' / 'model.safetensors').is_file()
                add(part, st if ok or st != 'ok' else 'FAILED (no model written)', f"{gpus} process(es), NCCL, 20 iterations" if ok else
                    (out.strip().splitlines()[-1][:100] if out.strip() else ''), s)
        else: add(part, 'FAILED', f'unknown part {part!r}', 0)
    w = max(len(r[0]) for r in rows) if rows else 4
    print(f"\n{'part':<{w}}  {'status':<22} {'s':>5}  figures")
    for part, st, fig, secs in rows: print(f"{part:<{w}}  {st:<22} {secs:>5.0f}  {fig}")
    failed = [r for r in rows if r[1].startswith(('FAILED', 'timed out'))]
    return 1 if failed else 0


def _configs():
    sys.path.insert(0, str(BENCH))
    from train_options import CONFIGS
    return CONFIGS


def _samples(tmp) -> Path:
    from srwork.core import sample_images
    return sample_images(Path(tmp) / 'photos')


if __name__ == '__main__':
    sys.exit(main())
