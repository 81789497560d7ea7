#!/usr/bin/env python
"""Upscaling in the browser (the page of `srwork export-web`, headless Chromium, WebAssembly) vs onnxruntime in Python
on the same machine, and fp32 vs static int8 in the browser, side by side in one run; the exported folder's size.

    python benchmarks/web_inference.py [-m MODEL.safetensors ...] [--size 300x200] [--repeat 3]

Without -m: a small EDSR x2 and a small RRDBNet x4 with random weights (speed does not depend on training). With the
models of `benchmarks/train_budget.py --save` and `benchmarks/train_rrdbnet_psnr.py` (benchmarks/results/), the
trained ones. The input is the offline sample photo 'chelsea' resized to --size. Browser time: the page's own clock
(`document.body.dataset.seconds`: tiles, model runs, assembling and rounding; not decoding the file nor encoding the
PNG), median of --repeat runs in one tab after a warm-up. Python time: onnxruntime's session on the same tile
windows (the page's plan), at the page's thread count and at onnxruntime's default. The page runs with its default
threads: onnxruntime-web takes half the logical cores (at most 4) when the page is cross-origin isolated, which
`srwork serve-web` (used here) makes it.

Measured on the 2-core reference machine (2026-12-01), trained models of benchmarks/results, 300x200 input, Chromium 156,
onnxruntime-web 1.30.0, WebAssembly with the page's default of 1 thread (half of 2 cores):
  EDSR-Y 8x32 x2:    browser fp32 1.42 s (model runs 1.38 s), int8 1.65 s (1.16x); Python onnxruntime fp32 1 thread 0.34 s:
                     the browser takes 4.1x; folder 30.0 MB (runtime 28.7, fp32 0.87, int8 0.33 MB)
  RRDBNet 4x32 x4:   browser fp32 6.31 s (model runs 6.27 s), int8 5.25 s (0.83x); Python 1 thread 1.55 s: 4.1x;
                     folder 33.1 MB (runtime 28.7, fp32 3.41, int8 0.93 MB)
The page's own work (reading, padding, assembling, rounding) is under 3 % of its time: the gap is WebAssembly's
128-bit SIMD against native AVX kernels.
"""
import argparse, statistics, time
from pathlib import Path

import numpy as np
from PIL import Image


def python_seconds(onnx_file, img, config, threads, repeat):
    "Median seconds of onnxruntime (Python) over the page's tile windows of `img` (H, W, 3 uint8)."
    import torch
    from srwork.inference import onnx_session, tile_windows
    from srwork.upscaler import pad_to_multiple
    sess = onnx_session(onnx_file, threads)
    x = pad_to_multiple(torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255, config['multiple'])
    H, W = x.shape[-2:]
    m, tile, pad = config['multiple'], config['tile'], config['tilePad']
    if tile >= max(H, W): rows, cols = tile_windows(H, H, 0, m), tile_windows(W, W, 0, m)
    else: rows, cols = tile_windows(H, tile, pad, m), tile_windows(W, tile, pad, m)
    wins = [x[..., y0:y1, x0:x1].contiguous().numpy() for _, _, y0, y1 in rows for _, _, x0, x1 in cols]
    for w in wins[:1]: sess.run(None, {'lr': w})                       # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for w in wins: sess.run(None, {'lr': w})
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('-m', '--model', action='append', help='a model file; repeat for several (default: small random EDSR x2, RRDBNet x4)')
    ap.add_argument('--size', default='300x200', help='input size WxH')
    ap.add_argument('--repeat', type=int, default=3)
    a = ap.parse_args()
    import torch
    from srwork.core import sample_images, scratch_dir
    from srwork.models import create_model
    from srwork.modelfiles import save_model
    from srwork.web import export_web
    from srwork._browser import HeadlessChromium, browser_upscale
    import srwork.edsr, srwork.esrgan
    work = scratch_dir('srwork-web-bench-')
    W, H = map(int, a.size.lower().split('x'))
    photo = Image.open(sample_images(work/'samples')/'chelsea.png').convert('RGB').resize((W, H), Image.LANCZOS)
    photo.save(work/'photo.png')
    models = [Path(m) for m in a.model or []]
    if not models:
        torch.manual_seed(0)
        models = [save_model(create_model('edsr', 'small', 2), work/'edsr_small_x2.safetensors'),
                  save_model(create_model('esrgan', 'small', 4), work/'rrdbnet_small_x4.safetensors')]
    rows = []
    with HeadlessChromium() as browser:
        for mf in models:
            exp = export_web(mf, work/f'page_{mf.stem}', int8=True, quiet=True)
            cfg, out = exp['config'], exp['out']
            runtime = sum(f.stat().st_size for f in (out/'ort').iterdir())
            res, model = {}, {}
            for variant in ('fp32', 'int8'):
                secs, runs = [], []
                for i in range(a.repeat + 1):                                  # (the first: warm-up)
                    r = browser_upscale(out, work/'photo.png', query=f'variant={variant}', browser=browser)
                    if r['state'] != 'done': raise SystemExit(f"{mf.name} {variant}: {r['error']}")
                    if i: secs.append(float(r['info']['seconds'])); runs.append(float(r['info']['modelSeconds']))
                res[variant], model[variant] = statistics.median(secs), statistics.median(runs)
                threads = r['info'].get('threads')
            py_default = python_seconds(out/'model.onnx', np.asarray(photo), cfg, None, a.repeat)
            py_one = python_seconds(out/'model.onnx', np.asarray(photo), cfg, 1, a.repeat)
            py_int8 = python_seconds(out/'model.int8.onnx', np.asarray(photo), cfg, None, a.repeat)
            rows.append((mf.stem, cfg, res, model, py_default, py_one, py_int8, exp['bytes'], runtime, f"{r['info'].get('backend')}, {threads} thread(s)"))
    print(f"input {W}x{H} (offline sample 'chelsea'), median of {a.repeat} runs; browser: headless Chromium, WebAssembly, the page's default threads")
    for name, cfg, res, model, pyd, py1, py8, size, runtime, backend in rows:
        print(f"\n{name}: {cfg['arch']} x{cfg['scale']}, {cfg['parameters'] / 1e6:.2f} M parameters, tile {cfg['tile']} + {cfg['tilePad']} px context")
        print(f"  browser fp32 ({backend}): {res['fp32']:6.2f} s in all, {model['fp32']:6.2f} s in the model's runs")
        print(f"  browser int8:  {res['int8']:6.2f} s in all, {model['int8']:6.2f} s in the model's runs; int8 / fp32 in the browser: "
              f"{res['int8'] / res['fp32']:.2f}x in all, {model['int8'] / model['fp32']:.2f}x in the model")
        print(f"  onnxruntime Python fp32, 1 thread: {py1:6.2f} s; browser / Python: {res['fp32'] / py1:.2f}x in all, {model['fp32'] / py1:.2f}x in the model")
        print(f"  onnxruntime Python fp32, its default threads: {pyd:6.2f} s; browser / Python: {res['fp32'] / pyd:.2f}x in all")
        print(f"  onnxruntime Python int8, its default threads: {py8:6.2f} s")
        print(f"  exported folder: {size / 1e6:.1f} MB (runtime {runtime / 1e6:.1f} MB, models "
              + ', '.join(f"{k} {v['bytes'] / 1e6:.2f} MB" for k, v in cfg['variants'].items()) + ')')


if __name__ == '__main__':
    main()
