#!/usr/bin/env python
"""Every registered architecture at its `small` size, through everything downstream, one row each:

    python benchmarks/arch_matrix.py [--archs span hat ...] [--no-browser] [--out benchmarks/results/arch_matrix.md]

Columns: trains (fastai's smoothed training loss at the first and the last of 12 one-cycle iterations at the
architecture's lr on one fixed batch of the offline sample photos, as tests/test_archs.py trains them); saved file -> spandrel (the architecture id and scale `spandrel.ModelLoader().load_from_file`
finds in the `.safetensors` file `save_model` wrote, and the max difference of its descriptor's output against
srwork's on an input no one pads); srwork reload (`load_model` of that file, max difference); tiled = whole (max
difference in 8-bit levels between a tiled upscale with the measured context pad and the whole image); ONNX
(`export_onnx`, dynamo, max difference against PyTorch); browser (the `srwork export-web` page in
headless Chromium against onnxruntime in Python, max difference in levels); half (the registered fp16 support,
and where it is claimed, the max difference in levels of an fp16 CPU forward against fp32). A step that can't be
done prints its one-line error. Random weights after the 12 iterations: the comparisons do not need trained models.
"""
import argparse, json, math, os, sys, tempfile, time, traceback, warnings
from pathlib import Path

import numpy as np
import torch
from fastai.callback.core import Callback

warnings.filterwarnings('ignore')


def one_line(e): return f"{type(e).__name__}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}"


def row_for(name, tmp:Path, browser=None, images=None):
    from srwork.models import ARCHS, create_model, make_learner
    from srwork.data import sr_dataloaders
    from srwork.modelfiles import save_model, load_model
    from srwork.upscaler import Upscaler
    from srwork.inference import upscale_tensor, export_onnx, onnx_max_diff
    spec = ARCHS[name]
    size = 'small' if 'small' in spec.sizes else spec.default_size
    scale = 1 if spec.scales == (1,) else 2 if spec.scales is None or 2 in spec.scales else spec.scales[0]
    row = dict(arch=name, size=size, scale=f'x{scale}')
    torch.manual_seed(0)
    m = spec.input_multiple
    lr_side = max(16, m) if name != 'unet' else 32
    t0 = time.time()
    try:
        model = create_model(name, size, scale)
        row['params'] = f"{sum(p.numel() for p in model.parameters()) / 1e6:.3f} M"
        dls = sr_dataloaders(images, scale, lr_side * scale, bs=2, crappifier='restoration' if scale == 1 else 'bicubic',
                             upsample_input=spec.upsample_input, normalize=spec.normalize, valid_pct=0.2, num_workers=0,
                             patches_per_epoch=2 * ITERS)
        learn = make_learner(spec, dls, model, scale, spec.phases[0], pretrained=False)
        learn.recorder.train_metrics = False
        with learn.no_bar(), learn.no_logging():
            learn.fit_one_cycle(1, 1e-4 if name == 'unet' else spec.lr, cbs=[_OneBatch(*dls.train.one_batch())])
        losses = [float(l) for l in learn.recorder.losses]
        row['trains'] = f"{losses[0]:.4f} -> {losses[-1]:.4f}" + ('' if losses[-1] < losses[0] else ' (not falling)')
        model = learn.model.eval()
    except Exception as e:
        row['trains'] = one_line(e); return row
    up = Upscaler.from_any(learn)
    m = up.multiple                     # (the model's own multiple: RRDBNet x2 unshuffles its input by 2)
    f = tmp/f'{name}.safetensors'
    side = math.lcm(m, 16) * max(1, -(-32 // math.lcm(m, 16))) if name not in ('uformer',) else 128
    x = torch.rand(1, 3, side, side + (math.lcm(m, 16) if name != 'uformer' else 0))
    with torch.no_grad(): ref = up(x.clone()).float()
    try:
        save_model(learn, f)
        with torch.no_grad(): row['srwork reload'] = f"{(load_model(f)(x.clone()) - ref).abs().max().item():.1e}"
    except Exception as e:
        row['srwork reload'] = one_line(e); f = None
    if f is not None:
        try:
            import spandrel
            d = spandrel.ModelLoader().load_from_file(f)
            with torch.no_grad(): y = d(x.clone())
            row['spandrel'] = f"{d.architecture.id} x{d.scale}: {(y - ref.clamp(0, 1)).abs().max().item():.1e}"
        except Exception as e: row['spandrel'] = one_line(e)
    try:
        rf, pad = up.context()
        big = torch.rand(1, 3, 3 * side + 5, 2 * side + 3)
        with torch.no_grad():
            whole = upscale_tensor(up, big, tile=0)
            tile = max(m, 16) * max(1, -(-side // max(m, 16)))
            tiled = upscale_tensor(up, big, tile=tile)
        lv = (whole.clamp(0, 1) * 255).round().sub((tiled.clamp(0, 1) * 255).round()).abs().max().item()
        row['tiled = whole'] = f"{lv:.0f} levels (tile {tile}, pad {pad}, rf {rf})"
    except Exception as e: row['tiled = whole'] = one_line(e)
    onnx = tmp/f'{name}.onnx'
    try:
        export_onnx(up, onnx, check=False)
        row['onnx'] = f"{onnx_max_diff(onnx, up, (side, side + m)):.1e}"
    except Exception as e: row['onnx'] = one_line(e); onnx = None
    if browser is not None and onnx is not None and f is not None:
        row['browser'] = browser_diff(f, up, tmp, browser, side)
    elif browser is not None: row['browser'] = 'no ONNX graph'
    if spec.supports_half:
        try:
            with torch.no_grad(): yh = up.with_model(_half_copy(up.model))(x.clone().half()).float()
            lv = ((yh.clamp(0, 1) - ref.clamp(0, 1)).abs().max() * 255).item()
            row['half'] = f"yes: {lv:.1f} levels" if math.isfinite(lv) else 'yes, but not finite on CPU'
        except Exception as e: row['half'] = f"yes (CPU fp16: {one_line(e)})"
    else: row['half'] = 'no'
    row['seconds'] = f"{time.time() - t0:.0f}"
    return row


def _half_copy(model):
    import copy
    return copy.deepcopy(model).half()


ITERS = 12


class _OneBatch(Callback):
    "Train on one fixed batch (what a few iterations can show: whether the model fits it)."
    def __init__(self, xb, yb): self.fixed = (xb,), (yb,)
    def before_batch(self):
        if self.training: self.learn.xb, self.learn.yb = self.fixed


def browser_diff(f, up, tmp, browser, side):
    from PIL import Image
    from srwork.web import export_web
    from srwork._browser import browser_upscale
    from srwork.inference import upscale_tensor
    try:
        out = tmp/'web'
        export_web(f, out, overwrite=True, quiet=True)
        img = tmp/'in.png'
        arr = (np.random.RandomState(0).rand(side, side + 8, 3) * 255).astype(np.uint8)
        Image.fromarray(arr).save(img)
        r = browser_upscale(out, img, browser=browser, timeout=300)
        if r['state'] != 'done': return f"page: {r['error']}"
        x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad(): py = (upscale_tensor(up, x).clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
        return f"{np.abs(r['result'][..., :3].astype(float) - py).max():.0f} levels"
    except Exception as e: return one_line(e)


def main():
    import srwork.archs  # noqa: F401  (registers everything)
    from srwork.models import ARCHS
    from srwork.core import sample_images
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--archs', nargs='*', default=None)
    ap.add_argument('--no-browser', action='store_true')
    ap.add_argument('--out', default='benchmarks/results/arch_matrix.md')
    ap.add_argument('--row', action='store_true', help='(internal) print the one row of --archs as JSON')
    a = ap.parse_args()
    if not a.row: return isolated(a)
    torch.set_num_threads(os.cpu_count())
    names = a.archs or list(ARCHS)
    browser = None
    if not a.no_browser:
        from srwork._browser import HeadlessChromium
        browser = HeadlessChromium()
    with tempfile.TemporaryDirectory() as d:
        images = sample_images(Path(d)/'images')
        for n in names:
            tmp = Path(d)/n; tmp.mkdir()
            try: r = row_for(n, tmp, browser, images)
            except Exception as e: r = dict(arch=n, trains=one_line(e)); traceback.print_exc()
            print(json.dumps(r), flush=True)
    if browser is not None: browser.close()


COLS = ['arch', 'size', 'scale', 'params', 'trains', 'spandrel', 'srwork reload', 'tiled = whole', 'onnx', 'browser', 'half', 'seconds']


def isolated(a):
    "Each architecture in its own process (a crash, e.g. of an exporter, is that row's result), rows written as they come."
    import subprocess
    import srwork.archs  # noqa: F401
    from srwork.models import ARCHS
    rows, out = [], Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for n in (a.archs or list(ARCHS)):
        cmd = [sys.executable, __file__, '--row', '--archs', n, '--out', str(out)] + (['--no-browser'] if a.no_browser else [])
        p = subprocess.run(cmd, capture_output=True, text=True)
        last = [l for l in p.stdout.splitlines() if l.startswith('{')]
        r = json.loads(last[-1]) if p.returncode == 0 and last else dict(arch=n, trains=f"process ended with {p.returncode}: {p.stderr.strip().splitlines()[-1:] }")
        rows.append(r)
        print(' | '.join(str(r.get(c, '')) for c in COLS), flush=True)
        out.write_text('\n'.join(['| ' + ' | '.join(COLS) + ' |', '|' + '---|' * len(COLS)] +
                                 ['| ' + ' | '.join(str(r.get(c, '')) for c in COLS) + ' |' for r in rows]) + '\n')
    out.with_suffix('.json').write_text(json.dumps(rows, indent=1))


if __name__ == '__main__':
    main()
