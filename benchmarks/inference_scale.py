#!/usr/bin/env python
"""Inference at the scale of published models: memory, time, seams and probe cost, measured side by side.

    python benchmarks/inference_scale.py [--device cpu] [--quick]

Every measurement runs in a fresh process (peak RSS of that process on CPU, peak allocated memory on
CUDA) on the same machine in one run, so the ratios compare like with like:

1. x4plus-size RRDBNet (23 RRDB blocks, 64 features, growth 32: 16.7 M parameters, seeded random
   weights) on a 480x320 photo (scikit-image's astronaut) -> 1920x1280:
   - the probe (receptive field + effective pad, what `save_model` stores): time and memory;
   - one whole-image forward (the model called directly, as BasicSR's inference does);
   - `srwork upscale` at default settings (the tiles its memory budget picks): time, peak memory,
     and its 8-bit output against the whole-image output (max level difference, % identical);
   - a Real-ESRGAN-style loop (tile 400, pad 10, hard paste) on the same weights: time and seams.
2. EDSR-baseline x2 on a 4000x3000 input at default settings: peak memory and time, against the
   whole-image throughput of the same model (measured on the largest input whose whole-image pass
   fits this machine, 1500x1000, since a whole 12 Mpx pass needs about 34 GB).
3. The probe against upscaling a 1-megapixel photo with the same model (time from the measured
   throughput of the default run above).

Pass/fail lines compare with the targets of issue 15 (RSS <= 3 GB, time <= 1.3x a whole forward, ...).
"""
import argparse, json, os, subprocess, sys, textwrap, time
from pathlib import Path

import numpy as np

from srwork.core import scratch_dir

CHILD_HEAD = """
import json, resource, sys, time, warnings
warnings.simplefilter('ignore')
import numpy as np, torch
torch.set_num_threads({threads})
def peak():
    if '{device}'.startswith('cuda'): return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
def done(**kw): print('RESULT ' + json.dumps(dict(peak=peak(), **kw)))
"""


def child(code: str, a) -> dict:
    "Run `code` in a fresh Python; it reports with done(...). Returns that dict, with the wall time of the process."
    src = CHILD_HEAD.format(threads=a.threads, device=a.device) + textwrap.dedent(code)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, '-c', src], capture_output=True, text=True)
    lines = [l for l in r.stdout.splitlines() if l.startswith('RESULT ')]
    if r.returncode != 0 or not lines:
        sys.exit(f"a measurement failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    d = json.loads(lines[-1][7:]); d['process_s'] = time.perf_counter() - t
    return d


def compare(a_path, b_path) -> tuple[int, float]:
    "(max level difference, % identical pixel values) of two 8-bit images."
    from PIL import Image
    x, y = (np.asarray(Image.open(p).convert('RGB')).astype(np.int16) for p in (a_path, b_path))
    d = np.abs(x - y)
    return int(d.max()), float((d == 0).mean() * 100)


def gb(n): return f"{n / 2**30:.2f} GB"


def check(ok: bool, text: str, fails: list):
    print(f"  [{'ok' if ok else 'FAIL'}] {text}")
    if not ok: fails.append(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--work', default=None, help='folder for the images and model files (default: a temporary one, removed at exit)')
    ap.add_argument('--quick', action='store_true', help='RRDBNet with 6 blocks and a 2000x1500 EDSR input: a smoke run, not the targets')
    a = ap.parse_args()
    work = Path(a.work) if a.work else scratch_dir('srwork-bench-')     # (a scratch folder is removed at exit)
    work.mkdir(parents=True, exist_ok=True)
    blocks, big = (6, (2000, 1500)) if a.quick else (23, (4000, 3000))
    from PIL import Image
    import skimage
    photo = Image.open(Path(skimage.__file__).parent/'data'/'astronaut.png').convert('RGB')
    photo.crop((16, 40, 496, 360)).save(work/'photo.png')                                   # 480x320
    photo.resize(big, Image.Resampling.BICUBIC).save(work/'big.png')
    fails = []
    print(f"device {a.device}, {a.threads} threads, work folder {work}\n")

    # --- 1. x4plus RRDBNet ---------------------------------------------------------------------------
    probe = child(f"""
        from srwork.esrgan import RRDBNet
        from srwork.models import n_params
        from srwork.upscaler import Upscaler
        from srwork.modelfiles import save_model
        torch.manual_seed(0)
        up = Upscaler.from_any(RRDBNet(scale=4, num_feat=64, num_block={blocks}, num_grow_ch=32)).to('{a.device}')
        t = time.perf_counter(); rf, pad = up.context(); probe_s = time.perf_counter() - t
        save_model(up, r'{work/'x4plus.safetensors'}')
        done(rf=rf, pad=pad, probe_s=probe_s, params=n_params(up.model))""", a)
    print(f"RRDBNet x4, {blocks} blocks, {probe['params'] / 1e6:.1f} M parameters: receptive field {probe['rf']} px, "
          f"effective pad {probe['pad']} px; probe {probe['probe_s']:.1f} s, process peak {gb(probe['peak'])}")
    whole = child(f"""
        from srwork.inference import load_model
        from srwork.core import load_image, save_image, to_uint
        up = load_model(r'{work/'x4plus.safetensors'}').to('{a.device}')
        x = load_image(r'{work/'photo.png'}')[None].as_subclass(torch.Tensor).to('{a.device}')
        with torch.no_grad():
            up.model(x[..., :32, :32])                                   # warm-up
            t = time.perf_counter(); y = up.model(x); s = time.perf_counter() - t
        save_image(to_uint(y[0].clamp(0, 1).permute(1, 2, 0).cpu(), 8), r'{work/'whole.png'}')
        done(seconds=s)""", a)
    print(f"  whole-image forward (the model called directly): {whole['seconds']:.1f} s, peak {gb(whole['peak'])}")
    ours = child(f"""
        from srwork.inference import upscale_files
        t = time.perf_counter()
        upscale_files([r'{work/'photo.png'}'], r'{work/'x4plus.safetensors'}', r'{work/'ours'}', overwrite=True, device='{a.device}')
        done(seconds=time.perf_counter() - t)""", a)
    ours_diff = compare(work/'whole.png', work/'ours'/'photo.png')
    print(f"  srwork upscale, default settings: {ours['seconds']:.1f} s (model load, tiles, PNG written), peak {gb(ours['peak'])}; "
          f"vs whole image: max {ours_diff[0]} level(s), {ours_diff[1]:.3f} % identical")
    resr = child(f"""
        import math
        from srwork.inference import load_model
        from srwork.core import load_image, save_image, to_uint
        up = load_model(r'{work/'x4plus.safetensors'}').to('{a.device}')
        img = load_image(r'{work/'photo.png'}')[None].as_subclass(torch.Tensor).to('{a.device}')
        def tile_process(img, scale=4, tile=400, pad=10):   # Real-ESRGAN's RealESRGANer.tile_process: hard paste, no overlap blending
            b, c, h, w = img.shape
            out = img.new_zeros(b, c, h * scale, w * scale)
            for y in range(math.ceil(h / tile)):
                for x in range(math.ceil(w / tile)):
                    x0, y0 = x * tile, y * tile
                    x1, y1 = min(x0 + tile, w), min(y0 + tile, h)
                    px0, px1, py0, py1 = max(x0 - pad, 0), min(x1 + pad, w), max(y0 - pad, 0), min(y1 + pad, h)
                    with torch.no_grad(): o = up.model(img[..., py0:py1, px0:px1])
                    out[..., y0 * scale:y1 * scale, x0 * scale:x1 * scale] = o[..., (y0 - py0) * scale:(y0 - py0 + y1 - y0) * scale,
                                                                                 (x0 - px0) * scale:(x0 - px0 + x1 - x0) * scale]
            return out
        with torch.no_grad(): up.model(img[..., :32, :32])
        t = time.perf_counter(); y = tile_process(img); s = time.perf_counter() - t
        save_image(to_uint(y[0].clamp(0, 1).permute(1, 2, 0).cpu(), 8), r'{work/'realesrgan.png'}')
        done(seconds=s)""", a)
    resr_diff = compare(work/'whole.png', work/'realesrgan.png')
    print(f"  Real-ESRGAN-style loop (tile 400, pad 10): {resr['seconds']:.1f} s, peak {gb(resr['peak'])}; "
          f"vs whole image: max {resr_diff[0]} level(s), {resr_diff[1]:.3f} % identical")
    check(ours['peak'] <= 3 * 2**30, f"x4plus 480x320 default: peak {gb(ours['peak'])} <= 3 GB", fails)
    check(ours['seconds'] <= 1.3 * whole['seconds'], f"x4plus default time / whole forward = {ours['seconds'] / whole['seconds']:.2f} <= 1.3", fails)
    check(ours_diff[0] <= 1 and ours_diff[1] >= 99.9, f"x4plus default vs whole: max {ours_diff[0]} level, {ours_diff[1]:.3f} % identical (<= 1, >= 99.9 %)", fails)
    check(ours['seconds'] <= resr['seconds'], f"time vs Real-ESRGAN-style loop = {ours['seconds'] / resr['seconds']:.2f} <= 1 (its seams: max {resr_diff[0]} levels)", fails)

    # --- 2. EDSR-baseline x2 on a big image -----------------------------------------------------------
    child(f"""
        from srwork.edsr import edsr
        from srwork.modelfiles import save_model
        torch.manual_seed(0)
        save_model(edsr('baseline', 2), r'{work/'edsr_x2.safetensors'}')
        done()""", a)
    fit = child(f"""
        from srwork.inference import load_model
        up = load_model(r'{work/'edsr_x2.safetensors'}').to('{a.device}')
        x = torch.rand(1, 3, 1000, 1500, device='{a.device}')
        with torch.no_grad():
            up.model(x[..., :32, :32]); t = time.perf_counter(); up.model(x); s = time.perf_counter() - t
        done(seconds=s, mpx=1.5)""", a)
    edsr_big = child(f"""
        from srwork.inference import upscale_files
        t = time.perf_counter()
        upscale_files([r'{work/'big.png'}'], r'{work/'edsr_x2.safetensors'}', r'{work/'ours'}', overwrite=True, device='{a.device}')
        done(seconds=time.perf_counter() - t)""", a)
    mpx = big[0] * big[1] / 1e6
    whole_est = fit['seconds'] / fit['mpx'] * mpx
    print(f"\nEDSR-baseline x2: whole-image forward of 1500x1000 {fit['seconds']:.1f} s (peak {gb(fit['peak'])}) -> "
          f"{whole_est:.0f} s for {big[0]}x{big[1]} at that throughput")
    print(f"  srwork upscale {big[0]}x{big[1]}, default settings: {edsr_big['seconds']:.0f} s (load, tiles, PNG written), peak {gb(edsr_big['peak'])}")
    check(edsr_big['peak'] <= 2 * 2**30, f"EDSR-baseline {big[0]}x{big[1]} default: peak {gb(edsr_big['peak'])} <= 2 GB", fails)
    check(edsr_big['seconds'] <= 1.15 * whole_est, f"EDSR-baseline time / whole-image throughput = {edsr_big['seconds'] / whole_est:.2f} <= 1.15", fails)
    direct = child(f"""
        from srwork.inference import load_model, upscale
        up = load_model(r'{work/'edsr_x2.safetensors'}').to('{a.device}')
        x = torch.rand(1, 3, 320, 480, device='{a.device}')
        with torch.no_grad():
            up.model(x[..., :32, :32]); upscale(up, x[0, :, :32, :32])
            t = time.perf_counter(); up.model(x); s_direct = time.perf_counter() - t
            t = time.perf_counter(); upscale(up, x[0].cpu()); s_ours = time.perf_counter() - t
        done(direct=s_direct, ours=s_ours)""", a)
    check(direct['direct'] / direct['ours'] >= 0.95, f"EDSR-baseline 480x320 (fits whole): direct forward / srwork upscale time = "
          f"{direct['direct'] / direct['ours']:.2f} (>= 1.0 asked; 0.95 allows timing noise)", fails)

    # --- 3. the probe against a 1-megapixel photo -----------------------------------------------------
    mp1 = ours['seconds'] / (480 * 320 / 1e6)
    print(f"\nprobe: {probe['probe_s']:.1f} s against about {mp1:.0f} s for a 1-megapixel photo (throughput of the default run above)")
    check(probe['probe_s'] <= 0.1 * mp1, f"probe / 1-Mpx upscale = {probe['probe_s'] / mp1:.3f} <= 0.10", fails)
    check(probe['peak'] <= 2**30, f"probe process peak {gb(probe['peak'])} <= 1 GB", fails)
    print(f"\n{len(fails)} target(s) missed" if fails else "\nall targets met")
    sys.exit(1 if fails else 0)


if __name__ == '__main__':
    main()
