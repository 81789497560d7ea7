#!/usr/bin/env python
"""Whole-image vs tiled inference: speed per architecture and peak memory, measured side by side.

    python benchmarks/inference_tiling.py [--size 768] [--tile 256] [--big 4000x3000] [--device cpu]

1. For each architecture: megapixels/s (of output) of whole-image and tiled inference (tile 256,
   padding = the measured receptive field) on the same random image, and the tiled/whole time ratio.
2. Peak memory of upscaling a 4000x3000 image with a small EDSR at tile 256 vs whole-image, each run
   in a fresh process (peak RSS on CPU; peak allocated memory on CUDA).
"""
import argparse, json, os, resource, subprocess, sys, time, warnings

import torch


def archs():
    from srwork.edsr import EDSR, MSRResNet, YChannel, edsr
    return {
        'EDSR-baseline x2 (16x64)': lambda: edsr('baseline', 2),
        'EDSR-baseline x4 (16x64)': lambda: edsr('baseline', 4),
        'MSRResNet x4 (16x64)': lambda: MSRResNet(scale=4),
        'EDSR-Y budget x2 (8x32)': lambda: YChannel(EDSR(1, 1, 32, 8, 2, rgb_mean=(0.44,), upsample_skip=True), 2),
    }


def timed(fn, reps):
    fn()                                  # warm-up
    if torch.cuda.is_available(): torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps): fn()
    if torch.cuda.is_available(): torch.cuda.synchronize()
    return (time.perf_counter() - t) / reps


def speed(a):
    from srwork.upscaler import Upscaler, receptive_field
    from srwork.inference import upscale_tensor
    print(f"{'architecture':<26} {'RF':>4} {'whole MP/s':>11} {'tiled MP/s':>11} {'tiled/whole time':>17}")
    rows = []
    for name, make in archs().items():
        torch.manual_seed(0)
        up = Upscaler.from_any(make().eval()).to(a.device)
        rf = receptive_field(up)
        x = torch.rand(1, 3, a.size, a.size)
        mp = (a.size * up.scale) ** 2 / 1e6
        tw = timed(lambda: upscale_tensor(up, x, tile=0, tile_pad=0), a.reps)
        tt = timed(lambda: upscale_tensor(up, x, tile=a.tile, tile_pad=rf, batch_size=a.batch_size), a.reps)
        rows.append(dict(arch=name, rf=rf, whole_mps=mp / tw, tiled_mps=mp / tt, ratio=tt / tw))
        print(f"{name:<26} {rf:>4} {mp / tw:>11.3f} {mp / tt:>11.3f} {tt / tw:>17.2f}")
    return rows


def peak_child(a, tile):
    code = f"""
import torch, resource, json, warnings
warnings.simplefilter('ignore')
from srwork.edsr import EDSR, YChannel
from srwork.upscaler import Upscaler
from srwork.inference import upscale_tensor
torch.manual_seed(0)
up = Upscaler.from_any(YChannel(EDSR(1, 1, 32, 8, 2, rgb_mean=(0.44,), upsample_skip=True), 2).eval()).to('{a.device}')
w, h = {a.big[0]}, {a.big[1]}
x = torch.rand(1, 3, h, w)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = upscale_tensor(up, x, tile={tile}, tile_pad=20, batch_size={a.batch_size})
peak = torch.cuda.max_memory_allocated() if '{a.device}'.startswith('cuda') else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(peak=peak, base=base * 1024, shape=list(out.shape))))
"""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    if r.returncode != 0: return dict(error=r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f'exit {r.returncode}')
    d = json.loads(r.stdout.strip().splitlines()[-1]); d['seconds'] = time.perf_counter() - t
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--size', type=int, default=512, help='LR size of the speed-test image')
    ap.add_argument('--tile', type=int, default=256)
    ap.add_argument('--batch-size', type=int, default=4)
    ap.add_argument('--reps', type=int, default=2)
    ap.add_argument('--big', default='4000x3000', help='WxH of the memory-test image')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--skip-speed', action='store_true')
    a = ap.parse_args()
    a.big = tuple(int(v) for v in a.big.split('x'))
    warnings.simplefilter('ignore')
    print(f"device {a.device}, torch threads {torch.get_num_threads()}, tile {a.tile}, batch {a.batch_size}\n")
    if not a.skip_speed: speed(a)
    print(f"\npeak memory, {a.big[0]}x{a.big[1]} -> x2 with EDSR-Y 8x32 ({'CUDA allocated' if a.device.startswith('cuda') else 'process RSS'}):")
    for label, tile in [(f"tile {a.tile}", a.tile), ("whole image", 0)]:
        d = peak_child(a, tile)
        if 'error' in d: print(f"  {label:<12} failed: {d['error']}")
        else: print(f"  {label:<12} {d['peak'] / 2**30:6.2f} GiB peak ({d['seconds']:.0f}s, output {d['shape'][-1]}x{d['shape'][-2]})")


if __name__ == '__main__':
    main()
