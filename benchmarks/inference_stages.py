#!/usr/bin/env python
"""Where `srwork upscale` spends its time, stage by stage, beside a direct forward of the same weights, in fresh processes.

    python benchmarks/inference_stages.py                                  # EDSR-baseline x2 480x320, RRDBNet x4plus-size 240x160
    python benchmarks/inference_stages.py --models rrdbnet --size 480x320 --load 2   # the published case, 2 busy processes beside it

For each model (seeded random weights saved with `save_model`; speed does not depend on training) and one PNG:

- **srwork upscale**: the command line, profiled (cProfile) in its own process: the process's wall time split into
  startup (Python and imports up to the command's function), model file, image read, tile plan, model forward,
  output write, and the rest (exit included); then its wall time in a process without the profiler;
- **direct forward**: a script that imports torch and the architecture, builds it, loads the same weights (a state dict), reads the
  PNG with PIL, calls the model on the whole image, rounds and writes the PNG (what BasicSR's inference script does).

`--load N` runs N processes that keep the CPU busy (torch matrix products) during every measurement: the machine
under load, as CI and shared boxes are. Ratios are direct / srwork (>= 1 means srwork is no slower).

Measured on the 2-core reference machine (2026-12-07, nothing else running), defaults:
  before (21aac65)  EDSR-baseline x2 480x320: process 0.82; RRDBNet x4plus-size 240x160: process 0.86
  lazy U-Net        EDSR process 0.99 (8.34 vs 8.25 s); RRDBNet 0.81: its model file took 2.39 s against 0.30 s direct
                    (initialising 16.7 M weights on the meta device, then again for real, before loading them)
  no initialisers   EDSR process 0.97 (8.53 vs 8.31 s), forward alone 1.01; RRDBNet process 0.97 (14.84 vs 14.39 s),
                    model file 0.33 vs 0.30 s, forward alone 1.00. The rest of the gap (0.2-0.45 s) is in the command's
                    own start and exit beyond the imports, which add 0.03 s to the direct script's.
  channels-last     (CPU batches handed to the model in NHWC order, `cpu_channels_last`), median of 3 interleaved:
                    EDSR process 1.15 (6.97 vs 8.04 s), forward alone 1.51; RRDBNet process 1.04 (13.39 vs 13.99 s),
                    forward alone 1.19.
"""
import argparse, multiprocessing as mp, os, pstats, subprocess, sys, tempfile, textwrap, time
from pathlib import Path

STAGES = [('model file', ('modelfiles.py', 'load_model')), ('image read', ('core.py', 'load_image')),
          ('tile plan', ('inference.py', 'plan_tiles')), ('model forward', ('inference.py', '_forward')),
          ('output write', ('core.py', 'save_image'))]

DIRECT = '''
import time; t0 = time.perf_counter()
import json, torch, numpy as np
from PIL import Image
from srwork.models import build_model
import srwork.edsr, srwork.esrgan
t1 = time.perf_counter()
m = build_model({config!r}); m.load_state_dict(torch.load({weights!r}, weights_only=True)); m.eval()
t2 = time.perf_counter()
x = torch.from_numpy(np.asarray(Image.open({image!r}).convert('RGB'))).permute(2, 0, 1)[None].float() / 255
t3 = time.perf_counter()
with torch.no_grad(): y = m(x)
t4 = time.perf_counter()
Image.fromarray((y[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save({out!r})
t5 = time.perf_counter()
print('RESULT', json.dumps(dict(startup=t1 - t0, model=t2 - t1, read=t3 - t2, forward=t4 - t3, write=t5 - t4)))
'''


def busy(stop):
    import torch
    torch.set_num_threads(1)
    a = torch.rand(512, 512)
    while not stop.is_set(): a @ a


def srwork_plain(model, image, out) -> float:
    "Wall seconds of `srwork upscale` in a fresh process, unprofiled."
    t = time.perf_counter()
    r = subprocess.run([sys.executable, '-m', 'srwork', 'upscale', str(image), '-m', str(model), '-o', str(out), '--overwrite'],
                       capture_output=True, text=True)
    if r.returncode: sys.exit(f"srwork upscale failed:\n{r.stderr[-2000:]}")
    return time.perf_counter() - t


def srwork_run(model, image, out, work):
    prof = work / 'upscale.prof'
    t = time.perf_counter()
    r = subprocess.run([sys.executable, '-m', 'cProfile', '-o', str(prof), '-m', 'srwork', 'upscale', str(image), '-m', str(model),
                        '-o', str(out), '--overwrite'], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode: sys.exit(f"srwork upscale failed:\n{r.stderr[-2000:]}")
    st = pstats.Stats(str(prof)).stats
    def cum(file, fn): return sum(v[3] for (f, _, name), v in st.items() if f.endswith(os.sep + file) and name == fn)
    parts = {name: cum(*where) for name, where in STAGES}
    parts['command'] = cum('inference.py', 'upscale_files')
    parts['startup'] = wall - parts['command'] - (wall - _total(st))     # up to the command's function (imports, parser)
    return wall, parts


def _total(st): return max(v[3] for v in st.values())


def direct_run(config, weights, image, out):
    t = time.perf_counter()
    r = subprocess.run([sys.executable, '-c', DIRECT.format(config=config, weights=str(weights), image=str(image), out=str(out))],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    line = next((l for l in r.stdout.splitlines() if l.startswith('RESULT')), None)
    if r.returncode or line is None: sys.exit(f"the direct script failed:\n{r.stderr[-2000:]}")
    import json
    return wall, json.loads(line[7:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--models', nargs='+', default=['edsr', 'rrdbnet'], choices=['edsr', 'rrdbnet'])
    ap.add_argument('--size', default=None, help='input WxH (default: 480x320 for EDSR, 240x160 for RRDBNet)')
    ap.add_argument('--blocks', type=int, default=23, help="RRDBNet's blocks (23: x4plus)")
    ap.add_argument('--load', type=int, default=0, help='busy processes beside every measurement')
    ap.add_argument('--repeat', type=int, default=3, help='unprofiled srwork / direct process pairs, interleaved (medians)')
    a = ap.parse_args()
    if a.repeat < 1: ap.error('--repeat must be at least 1')
    import statistics
    import numpy as np, torch
    from PIL import Image
    from srwork.edsr import edsr
    from srwork.esrgan import RRDBNet
    from srwork.upscaler import Upscaler
    from srwork.modelfiles import save_model
    stop = mp.Event(); load = [mp.Process(target=busy, args=(stop,), daemon=True) for _ in range(a.load)]
    for p in load: p.start()
    print(f"{os.cpu_count()} CPUs, {a.load} busy process(es) beside every measurement; fresh processes, wall seconds")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            for key in a.models:
                torch.manual_seed(0)
                net, size, label = ((edsr('baseline', 2), '480x320', 'EDSR-baseline x2') if key == 'edsr' else
                                    (RRDBNet(scale=4, num_feat=64, num_block=a.blocks, num_grow_ch=32), '240x160', f'RRDBNet x4, {a.blocks} blocks'))
                w, h = map(int, (a.size or size).split('x'))
                model = work / f'{key}.safetensors'; save_model(Upscaler.from_any(net), model)
                image = work / f'{key}.png'
                small = np.random.default_rng(0).integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8)
                Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC).save(image)
                s_wall, s = srwork_run(model, image, work / 'out', work)
                torch.save(net.state_dict(), work / f'{key}.pth')          # (the same weights as a plain state dict)
                d_wall, d = direct_run(net.config, work / f'{key}.pth', image, work / f'{key}_direct.png')
                plains, directs = [], []
                for _ in range(a.repeat):                                  # (interleaved: the machine's drift hits both)
                    plains.append(srwork_plain(model, image, work / 'out'))
                    directs.append(direct_run(net.config, work / f'{key}.pth', image, work / f'{key}_direct.png')[0])
                plain, direct = statistics.median(plains), statistics.median(directs)
                print(f"\n{label}, {w}x{h} input")
                print(f"{'stage':<16} {'srwork upscale':>15} {'direct forward':>15}")
                rows = [('startup', s['startup'], d['startup']), ('model file', s['model file'], d['model']),
                        ('image read', s['image read'], d['read']), ('tile plan', s['tile plan'], 0.),
                        ('model forward', s['model forward'], d['forward']), ('output write', s['output write'], d['write'])]
                for name, x, y in rows: print(f"{name:<16} {x:>15.2f} {y:>15.2f}")
                rest_s = s_wall - sum(x for _, x, _ in rows); rest_d = d_wall - sum(y for _, _, y in rows)
                print(f"{'the rest':<16} {rest_s:>15.2f} {rest_d:>15.2f}")
                print(f"{'process':<16} {s_wall:>15.2f} {d_wall:>15.2f}   (srwork's stages from a profiled run: cProfile slows its imports)")
                print(f"unprofiled, median of {a.repeat} interleaved: srwork upscale {plain:.2f} s ({' '.join(f'{t:.2f}' for t in plains)}), "
                      f"direct {direct:.2f} s ({' '.join(f'{t:.2f}' for t in directs)})")
                print(f"direct / srwork: process {direct / plain:.2f}, "
                      f"forward alone {d['forward'] / s['model forward']:.2f}, process without startup "
                      f"{(d_wall - d['startup']) / (s_wall - s['startup']):.2f}")
    finally:
        stop.set()
        for p in load: p.join(5)


if __name__ == '__main__':
    main()
