#!/usr/bin/env python
"""Upscaling in the browser: srwork's page (`srwork export-web`) against UpscalerJS, side by side in one headless
Chromium, on the same images: seconds per output megapixel and Set5/Set14 PSNR of each; or (--versus python) the page
against onnxruntime in Python, and fp32 against static int8 in the browser.

    python benchmarks/web_inference.py [-m MODEL.safetensors ...] [--sizes 300x200 600x400] [--scales 2 4]
                                       [--ujs slim medium] [--sets Set5 Set14] [--tiles 0 128 256] [--srwork-threads 1 2]
    python benchmarks/web_inference.py --versus python [-m MODEL.safetensors ...] [--size 300x200]

UpscalerJS: npm's `upscaler` 1.0.0 with `@tensorflow/tfjs` and `@tensorflow/tfjs-backend-wasm` 4.11.0 (the tf.js its
packages ask for) and the models
`@upscalerjs/esrgan-slim|medium|thick` 1.0.0 (idealo's RDN/RRDN, trained on DIV2K), installed once with npm into
--npm-cache (default ~/.cache/srwork/upscalerjs) and served from there: no CDN. Its page runs the model package as
UpscalerJS's README does (`new Upscaler({model})`, `upscale(image)`: the whole image, its default) on tf.js's
WebAssembly backend, asked for every logical core as srwork's page takes when cross-origin isolated (both pages are
served with COOP/COEP); tf.js keeps half the logical cores, at most 4, whatever is asked (the thread count each page ran
is printed: 1 for UpscalerJS on a 2-core machine; --srwork-threads 1 times srwork's page on one thread too). srwork's page: the exported folder as a user serves it, its default
tile unless --tiles. Both are timed in their tab after one warm-up run on the same image: srwork's page by its own
clock (tiles, model runs, assembling, rounding), UpscalerJS's from `upscale` to its output's pixels read back.

Without -m the srwork models are SRVGGNetCompact (`compact`, 0.60 M parameters, the size of esrgan-medium's 0.69 M)
and SPAN small (0.25 M, esrgan-slim's 0.22 M) with random weights at each --scale: speed does not depend on the weights,
but PSNR does, so pass trained models (-m, e.g. from `srwork train`) for the quality columns. Each srwork model is paired
with the UpscalerJS model of the nearest parameter count at its scale. PSNR: Y channel, `scale` px border, the LR made
from each HR by MATLAB bicubic (srwork.benchmark.benchmark_pair), as the published tables; sets under --data-root.

With --versus python: the page's fp32 and int8 models against onnxruntime's session in Python on the same tile windows,
one input (--size) of the offline sample photo 'chelsea'; the folder's size.

Measured on the 2-core reference machine (2026-12-07, load average 1.5), headless Chromium 156, onnxruntime-web 1.30.0,
tf.js 4.11.0; srwork's page whole-image (its default tile since this run: 1024), 2 threads; UpscalerJS 1 thread (tf.js's
count on 2 cores); median of 2 runs after a warm-up; seconds (seconds per output Mpx):

  x2                 params  300x200        600x400         Set5 / Set14 PSNR-Y
  srwork SPAN small  0.25 M  0.29 (1.21)    0.64 (0.67)
  esrgan-slim        0.22 M  0.91 (3.78)    3.57 (3.72)     33.53 / 30.23 dB
  srwork Compact     0.60 M  1.35 (5.61)    5.18 (5.39)
  esrgan-medium      0.69 M  2.80 (11.66)  11.00 (11.46)    33.63 / 30.29 dB
  x4
  srwork SPAN small  0.26 M  0.28 (0.29)    0.77 (0.20)
  esrgan-slim        0.23 M  1.18 (1.23)    4.66 (1.21)     28.60 / 26.27 dB
  srwork Compact     0.62 M  1.48 (1.54)    5.77 (1.50)
  esrgan-medium      0.70 M  3.08 (3.21)   12.30 (3.20)     28.74 / 26.36 dB

srwork / UpscalerJS: SPAN 0.17-0.32x of esrgan-slim, Compact 0.47-0.48x of esrgan-medium. Thread for thread
(--srwork-threads 1, same run conditions): SPAN 0.29-0.39x, Compact 0.87-0.98x. The srwork models there were trained
for 3.5 CPU minutes (`srwork train --minutes 3.5` on BSD68), which leaves them below bicubic (Set5 x2 30.86 and 25.37 dB
against bicubic's 33.68): their speed is the point, not their PSNR; esrgan-slim x2 is itself under bicubic on Set5.
Tiles (--tiles 128 256 0 --sizes 600x400 --repeat 3): SPAN x2 0.91 / 0.83 / 0.67 s, Compact x2 5.82 / 5.62 / 5.19 s,
SPAN x4 1.52 / 1.18 / 0.93 s, Compact x4 6.52 / 6.19 / 5.57 s: the page's largest tile went from 256 to 1024.
"""
import argparse, json, os, shutil, statistics, subprocess, time
from pathlib import Path

import numpy as np
from PIL import Image

UPSCALERJS = {'upscaler': '1.0.0', '@tensorflow/tfjs': '4.11.0', '@tensorflow/tfjs-backend-wasm': '4.11.0',   # (upscaler's peer: tfjs ~4.11)
              **{f'@upscalerjs/esrgan-{s}': '1.0.0' for s in ('slim', 'medium', 'thick')}}

UPSCALERJS_PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>UpscalerJS (srwork benchmark)</title></head>
<body data-state="loading">
<script src="node_modules/@tensorflow/tfjs/dist/tf.min.js"></script>
<script src="node_modules/@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js"></script>
<script src="node_modules/upscaler/dist/browser/umd/upscaler.min.js"></script>
<script>
// UpscalerJS as its README runs it (a model package, tf.js), every file served from here: no CDN
const params = new URLSearchParams(location.search);
const size = params.get('model'), scale = params.get('scale'), backend = params.get('backend') || 'wasm';
let upscaler;

function script(src) {
  return new Promise((ok, bad) => { const s = document.createElement('script'); s.src = src; s.onload = ok;
                                    s.onerror = () => bad(new Error(`could not load ${src}`)); document.head.appendChild(s); });
}

async function setup() {
  if (backend === 'wasm') {
    tf.wasm.setWasmPaths(new URL('node_modules/@tensorflow/tfjs-backend-wasm/dist/', location.href).href);
    // asked for every logical core, as srwork's page takes; tf.js 4.11 keeps its own count (half the logical cores, at
    // most 4: getThreadsCount says 1 on 2 cores whatever is set; tfjs issues #6081, #8513). ?threads=0: not asked.
    const threads = params.has('threads') ? Number(params.get('threads')) : navigator.hardwareConcurrency || 1;
    if (threads > 0) tf.wasm.setThreadsCount(threads);
  }
  if (!(await tf.setBackend(backend))) throw new Error(`tf.js has no ${backend} backend here`);
  await tf.ready();
  const pkg = `node_modules/@upscalerjs/esrgan-${size}`;
  await script(`${pkg}/dist/umd/models/esrgan-${size}/src/x${scale}/index.min.js`);
  const definition = window[`ESRGAN${size[0].toUpperCase()}${size.slice(1)}${scale}x`];
  upscaler = new Upscaler({model: {...definition, path: `${pkg}/models/x${scale}/model.json`}});
  await upscaler.getModel();
  const threads = backend === 'wasm' ? tf.wasm.getThreadsCount() : 0;
  Object.assign(document.body.dataset, {backend: tf.getBackend(), threads: String(threads), state: 'ready'});
}

async function upscaleURL(url, repeat, patchSize, padding) {
  // seconds of each of `repeat` runs after one warm-up (upscale, then reading the pixels back), and the last output as PNG
  const bitmap = await createImageBitmap(await (await fetch(url)).blob());
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width; canvas.height = bitmap.height;
  canvas.getContext('2d').drawImage(bitmap, 0, 0);
  const options = {output: 'tensor', ...(patchSize ? {patchSize, padding} : {})};
  const seconds = [];
  let last = null;
  for (let i = 0; i <= repeat; i++) {
    const input = tf.browser.fromPixels(canvas);
    const t0 = performance.now();
    const out = await upscaler.upscale(input, options);
    await out.data();
    const dt = (performance.now() - t0) / 1000;
    input.dispose();
    if (i > 0 || repeat === 0) seconds.push(dt);
    if (i === repeat) last = out; else out.dispose();
  }
  const pixels = tf.tidy(() => last.clipByValue(0, 255).round().cast('int32'));
  const result = document.createElement('canvas');
  await tf.browser.toPixels(pixels, result);
  pixels.dispose(); last.dispose();
  return {seconds, png: result.toDataURL('image/png'), width: result.width, height: result.height};
}

setup().catch((e) => Object.assign(document.body.dataset, {state: 'error', error: e.message || String(e)}));
</script>
</body></html>
"""


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


def versus_python(a):
    "The page (fp32, int8) against onnxruntime in Python on one input; the folder's size."
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


def install_upscalerjs(folder) -> Path:
    "UpscalerJS's packages (UPSCALERJS's versions) in `folder`/node_modules, installed with npm the first time; its page as `folder`/index.html."
    folder = Path(folder).expanduser()
    modules = folder/'node_modules'
    def installed(name, version):
        f = modules/name/'package.json'
        return f.is_file() and json.loads(f.read_text()).get('version') == version
    if not all(installed(n, v) for n, v in UPSCALERJS.items()):
        if shutil.which('npm') is None: raise SystemExit("UpscalerJS is installed with npm, which is not on the PATH: install Node.js (apt-get install npm)")
        folder.mkdir(parents=True, exist_ok=True)
        print(f"installing UpscalerJS into {folder} (npm, once) ...", flush=True)
        r = subprocess.run(['npm', 'install', '--prefix', str(folder), '--no-audit', '--no-fund', '--ignore-scripts',
                            *(f'{n}@{v}' for n, v in UPSCALERJS.items())], capture_output=True, text=True)
        if r.returncode: raise SystemExit(f"npm could not install UpscalerJS into {folder}:\n{r.stderr[-2000:]}")
    (folder/'index.html').write_text(UPSCALERJS_PAGE)
    return folder


def upscalerjs_parameters(folder, size:str, scale:int) -> int:
    "Parameters of UpscalerJS's esrgan-`size` x`scale` model (from its model.json's weight shapes)."
    manifest = json.loads((folder/f'node_modules/@upscalerjs/esrgan-{size}/models/x{scale}/model.json').read_text())['weightsManifest']
    return sum(int(np.prod(w['shape'])) for group in manifest for w in group['weights'])


class SrworkPage:
    "srwork's exported page in a tab: `upscale(url, repeat)` runs it on the image at `url` as a user's file would."
    def __init__(self, browser, folder, inputs, query=''):
        from srwork.web import web_server
        self.server = web_server(folder, extra=inputs)
        self.page = browser.open(f"http://127.0.0.1:{self.server.server_port}/index.html{'?' + query if query else ''}")
        state = self.page.wait_for("['ready', 'error'].includes(document.body.dataset.state) && document.body.dataset.state", 300)
        if state == 'error': raise SystemExit(f"{folder}: {self.page.evaluate('document.body.dataset.error')}")
        self.info = self.page.evaluate("Object.assign({}, document.body.dataset)")
    def upscale(self, url, repeat):
        seconds = self.page.evaluate(f"""(async () => {{
            const blob = await (await fetch({json.dumps(url)})).blob(), seconds = [];
            for (let i = 0; i <= {repeat}; i++) {{
                await run(blob, {json.dumps(url.split('/')[-1])});
                if (document.body.dataset.state !== 'done') throw new Error(document.body.dataset.error);
                if (i > 0 || {repeat} === 0) seconds.push(Number(document.body.dataset.seconds));
            }}
            return seconds; }})()""", timeout=1800)
        from srwork._browser import _data_url_image
        return seconds, _data_url_image(self.page.evaluate("document.getElementById('result').src"))
    def close(self): self.page.close(); self.server.shutdown(); self.server.server_close()


class UpscalerjsPage(SrworkPage):
    "UpscalerJS's esrgan-`size` x`scale` in a tab of its page."
    def __init__(self, browser, folder, inputs, size, scale, backend='wasm', threads=None, patch=0, padding=0):
        super().__init__(browser, folder, inputs, f'model={size}&scale={scale}&backend={backend}' + (f'&threads={threads}' if threads is not None else ''))
        self.patch, self.padding = patch, padding
    def upscale(self, url, repeat):
        r = self.page.evaluate(f"upscaleURL({json.dumps(url)}, {repeat}, {self.patch}, {self.padding})", timeout=1800)
        from srwork._browser import _data_url_image
        return r['seconds'], _data_url_image(r['png'])[..., :3]


def quality_inputs(work, data_root, sets, scales):
    "{(set, scale): [(LR file, HR (3, H, W) tensor in [0, 1])]} for the benchmark sets found under `data_root`."
    from fastai.data.transforms import image_extensions
    from srwork.benchmark import benchmark_pair
    out = {}
    for name in sets:
        folder = Path(data_root)/name
        if not folder.is_dir(): print(f"(no {folder}: its PSNR column is left out)"); continue
        files = sorted(f for f in folder.rglob('*') if f.suffix.lower() in image_extensions)
        for s in scales:
            pairs = []
            for f in files:
                hr, lr, _ = benchmark_pair(f, s)
                lr_file = work/f'{name}_x{s}_{f.stem}.png'
                Image.fromarray((lr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).convert('RGB').save(lr_file)
                pairs.append((lr_file, hr))
            out[name, s] = pairs
    return out


def versus_upscalerjs(a):
    import torch
    from srwork.core import sample_images, scratch_dir
    from srwork.metrics import psnr
    from srwork.models import create_model, n_params
    from srwork.modelfiles import save_model, load_model
    from srwork.web import export_web
    from srwork._browser import HeadlessChromium
    import srwork.archs
    work = scratch_dir('srwork-web-ujs-')
    ujs = install_upscalerjs(a.npm_cache)
    photo = Image.open(sample_images(work/'samples')/'chelsea.png').convert('RGB')
    inputs = {}
    for size in a.sizes:
        W, H = map(int, size.lower().split('x'))
        photo.resize((W, H), Image.LANCZOS).save(work/f'chelsea_{W}x{H}.png')
        inputs[f'/_input/chelsea_{W}x{H}.png'] = work/f'chelsea_{W}x{H}.png'
    models = [Path(m) for m in a.model or []]
    if models: a.scales = sorted({load_model(m).scale for m in models})         # (the models' own scales)
    else:
        torch.manual_seed(0)
        models = [save_model(create_model(arch, size, s), work/f'{arch}_{size}_x{s}.safetensors')
                  for s in a.scales for arch, size in (('compact', 'compact'), ('span', 'small'))]
    quality = quality_inputs(work, a.data_root, a.sets, a.scales) if a.sets else {}
    inputs.update({f'/_input/{f.name}': f for pairs in quality.values() for f, _ in pairs})
    rows = []                                       # (kind, name, scale, parameters, {input: seconds}, {set: psnr}, pair)
    def measure(page, name, scale, params, kind, pair=None):
        secs, q = {}, {}
        for size in a.sizes:
            W, H = map(int, size.lower().split('x'))
            t, out = page.upscale(f'/_input/chelsea_{W}x{H}.png', a.repeat)
            if out.shape[:2] != (H * scale, W * scale): raise SystemExit(f"{name}: {out.shape} from a {W}x{H} input at x{scale}")
            secs[size] = statistics.median(t)
        for (set_name, s), pairs in quality.items():
            if s != scale: continue
            vals = []
            for lr_file, hr in pairs:
                _, out = page.upscale(f'/_input/{lr_file.name}', 0)
                vals.append(float(psnr(torch.from_numpy(np.ascontiguousarray(out[..., :3])).permute(2, 0, 1).float() / 255, hr, crop_border=scale)))
            q[set_name] = statistics.mean(vals)
        rows.append((kind, name, scale, params, secs, q, pair))
        print(f"  {kind} {name} x{scale}: " + ', '.join(f"{k} {v:.2f} s" for k, v in secs.items())
              + ''.join(f", {k} {v:.2f} dB" for k, v in q.items()), flush=True)
    with HeadlessChromium(timeout=1800) as browser:
        done = set()
        for i, mf in enumerate(models):
            name = mf.parent.name if mf.stem == 'model' else mf.stem        # (srwork train writes OUT/model.safetensors)
            up = load_model(mf)
            scale, params = up.scale, n_params(up.model)
            pair = min(a.ujs, key=lambda s: abs(upscalerjs_parameters(ujs, s, scale) - params)) if scale in (2, 3, 4, 8) else None
            exp = export_web(mf, work/f'page_{i}', name=name, quiet=True)
            for tile, threads in [(t, th) for t in a.tiles or [None] for th in a.srwork_threads or [None]]:
                query = '&'.join([*([f'tile={tile}'] if tile is not None else []), *([f'threads={threads}'] if threads else [])])
                page = SrworkPage(browser, exp['out'], inputs, query)
                label = f"{name} ({exp['config']['arch']}, tile {exp['config']['tile'] if tile is None else tile or 'whole'}, {page.info['backend']} {page.info['threads']} thr)"
                try: measure(page, label, scale, params, 'srwork', pair)
                finally: page.close()
            if pair and (pair, scale) not in done:
                done.add((pair, scale))
                page = UpscalerjsPage(browser, ujs, inputs, pair, scale, a.backend, a.ujs_threads)
                try: measure(page, f"esrgan-{pair} ({page.info['backend']} {page.info['threads']} thr)", scale, upscalerjs_parameters(ujs, pair, scale), 'UpscalerJS')
                finally: page.close()
    print(f"\nheadless Chromium, inputs: the offline sample photo 'chelsea' resized; median of {a.repeat} runs after a warm-up; "
          f"{os.cpu_count()} logical cores, load averages {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for scale in a.scales:
        print(f"\nx{scale}: seconds (seconds per output Mpx)" + (f"; PSNR-Y on {', '.join(a.sets)}" if quality else ''))
        ujs_rows = {r[1].split(' ')[0]: r for r in rows if r[0] == 'UpscalerJS' and r[2] == scale}
        for kind, name, s, params, secs, q, pair in rows:
            if s != scale: continue
            cells = [f"{v:7.2f} s ({v / (int(k.split('x')[0]) * int(k.split('x')[1]) * s * s / 1e6):6.2f})" for k, v in secs.items()]
            line = f"  {kind:10s} {name:70s} {params / 1e6:5.2f} M  " + '  '.join(cells) + ''.join(f"  {k} {v:6.2f} dB" for k, v in q.items())
            u = ujs_rows.get(f'esrgan-{pair}') if pair else None
            if u: line += '  | vs esrgan-' + pair + ': ' + ', '.join(f"{secs[k] / u[4][k]:.2f}x" for k in secs)
            print(line)
    print("\n(vs: srwork's seconds / UpscalerJS's on the same input, below 1 = srwork faster)")


def size(text:str) -> str:
    "A WxH input size (argparse type)."
    w, _, h = text.lower().partition('x')
    if not (w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0): raise argparse.ArgumentTypeError(f"{text!r} is not a size WxH (e.g. 300x200)")
    return f'{int(w)}x{int(h)}'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument('--versus', choices=('upscalerjs', 'python'), default='upscalerjs')
    ap.add_argument('-m', '--model', action='append', help='a model file; repeat for several (default: random compact and span small at each --scale)')
    ap.add_argument('--sizes', nargs='+', type=size, default=['300x200', '600x400'], help='input sizes WxH (UpscalerJS)')
    ap.add_argument('--scales', nargs='+', type=int, default=[2, 4], help='scales of the default models (with -m: the models\' own)')
    ap.add_argument('--ujs', nargs='+', default=['slim', 'medium'], choices=('slim', 'medium', 'thick'),
                    help="UpscalerJS's models to pair with (thick: 7.2 M parameters, minutes per image here)")
    ap.add_argument('--sets', nargs='*', default=['Set5', 'Set14'], help='benchmark sets under --data-root for PSNR (none: leave out)')
    ap.add_argument('--data-root', default=os.environ.get('SRWORK_DATA', '../shared/datasets'))
    ap.add_argument('--tiles', nargs='+', type=int, help="srwork page's ?tile= values to time (0: the whole image; default: its own)")
    ap.add_argument('--backend', default='wasm', help="tf.js backend for UpscalerJS (wasm, webgl, cpu)")
    ap.add_argument('--ujs-threads', type=int, help="WebAssembly threads UpscalerJS's page asks tf.js for (default: every logical core; 0: none)")
    ap.add_argument('--srwork-threads', nargs='+', type=int, help="srwork page's ?threads= values to time (default: its own)")
    ap.add_argument('--npm-cache', default='~/.cache/srwork/upscalerjs')
    ap.add_argument('--size', type=size, default='300x200', help='input size WxH (--versus python)')
    ap.add_argument('--repeat', type=int, default=2)
    a = ap.parse_args()
    if a.repeat < 1: ap.error("--repeat must be at least 1 (the runs timed after the warm-up)")
    from srwork.core import SRWorkError
    try:
        if a.versus == 'python': versus_python(a)
        else: versus_upscalerjs(a)
    except SRWorkError as e: raise SystemExit(f"web_inference.py: {e}") from None


if __name__ == '__main__':
    main()
