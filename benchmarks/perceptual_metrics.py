#!/usr/bin/env python
"""srwork's perceptual metrics against their reference implementations, and the dependencies they would have cost.

1. On the Set5 and Set14 outputs of bicubic and each `--models` file at `--scale` (8-bit PNG values, as saved): the
   largest |srwork - reference| of LPIPS (AlexNet, VGG16) against the `lpips` package, DISTS against `DISTS_pytorch`
   and the CIEDE2000 colour difference against scikit-image, and the seconds per image of each on this machine. The
   two networks have the same weights on both sides: the packages' shipped heads (LPIPS's linear layers, DISTS's
   alpha/beta) and one ImageNet trunk, random and seeded when torchvision's ImageNet file is not in torch's cache
   (offline). NIQE against the MATLAB release's published value on its test image (no weights involved).
2. Each candidate dependency: its installed size with what it pulls in beyond srwork's own requirements, and its
   import time (a fresh interpreter, best of 3). pyiqa is measured in the virtualenv `--pyiqa-venv` if given.

    python benchmarks/perceptual_metrics.py --data-root ../shared/datasets --models cpu/model.safetensors esrgan/model.safetensors \
        [--scale 4] [--pyiqa-venv /tmp/venv-iqa]
"""
import argparse, inspect, json, os, subprocess, sys, time
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torchvision

from srwork.benchmark import Bicubic, benchmark_pair, as_upscaler
from srwork.core import quantise
from srwork.data import find_images
from srwork.metrics import delta_e, niqe, _rgb01
from srwork.modelfiles import load_model
from srwork.perceptual import LPIPS, DISTS, missing_weights


def outputs(data_root, models, scale):
    "(name, sr, hr) 8-bit-valued float (3, H, W) pairs of every upscaler on Set5 and Set14."
    ups = {'bicubic': Bicubic(scale), **{Path(m).parent.name or Path(m).stem: load_model(m) for m in models}}
    out = []
    for ds in ('Set5', 'Set14'):
        for f in find_images(Path(data_root)/ds):
            hr, lr, grey = benchmark_pair(f, scale)
            if grey: continue                                        # (LPIPS/DISTS compare colour images)
            for name, u in ups.items():
                sr = as_upscaler(u, scale)(lr).detach().float().cpu().as_subclass(torch.Tensor).clamp(0, 1)
                out.append((f'{name}/{ds}/{f.name}', quantise(sr) / 255, quantise(hr) / 255))
    return out


def trunk(arch):
    "torchvision `arch` with ImageNet weights when cached, else random (seeded); and which."
    torch.manual_seed(0)
    net = getattr(torchvision.models, arch)(weights=None)
    from torchvision.models import get_model_weights
    url = get_model_weights(getattr(torchvision.models, arch)).DEFAULT.url
    f = Path(torch.hub.get_dir())/'checkpoints'/url.rsplit('/', 1)[-1]
    if f.is_file(): net.load_state_dict(torch.load(f, weights_only=True)); return net, 'ImageNet'
    return net, 'random (seeded)'


def timed(fn, *args):
    t = time.perf_counter(); v = fn(*args); return v, time.perf_counter() - t


def compare(pairs, ours, ref):
    "max |ours - ref| over `pairs`, and seconds per image of each."
    diffs, t_ours, t_ref = [], 0., 0.
    with torch.no_grad():
        for _, sr, hr in pairs:
            a, s1 = timed(ours, sr[None], hr[None]); b, s2 = timed(ref, sr[None], hr[None])
            diffs.append(abs(float(a) - float(b))); t_ours += s1; t_ref += s2
    return max(diffs), t_ours / len(pairs), t_ref / len(pairs)


def lpips_pair(net):
    import lpips as pkg
    tv, kind = trunk({'alex': 'alexnet', 'vgg': 'vgg16'}[net])
    with mock.patch.object(pkg.pretrained_networks.tv, {'alex': 'alexnet', 'vgg': 'vgg16'}[net], lambda pretrained=False, **k: tv):
        ref = pkg.LPIPS(net=net, verbose=False)                      # the package's shipped heads, our trunk
    ours = LPIPS(net, pretrained=False)
    ours.features.load_state_dict(tv.features[:ours.cuts[-1]].state_dict())
    ours.load_heads(torch.load(Path(inspect.getfile(pkg)).parent/'weights'/'v0.1'/f'{net}.pth', map_location='cpu', weights_only=True))
    return ours, (lambda a, b: ref(a, b, normalize=True)), kind


def dists_pair():
    import DISTS_pytorch.DISTS_pt as pkg
    tv, kind = trunk('vgg16')
    with mock.patch.object(pkg.models, 'vgg16', lambda pretrained=False, **k: tv): ref = pkg.DISTS(load_weights=False)
    w = torch.load(Path(sys.prefix)/'weights.pt', map_location='cpu', weights_only=True)     # where the package installs them
    ref.alpha.data, ref.beta.data = w['alpha'], w['beta']
    ours = DISTS(pretrained=False)
    src = {f'{k}.{j}.{n}': t for k in range(5) for j, m in enumerate(getattr(ref, f'stage{k + 1}').children()) for n, t in m.state_dict().items()}
    ours.stages.load_state_dict(src, strict=False); ours.load_heads(w)
    return ours, ref, kind


def colour_pair():
    from skimage.color import rgb2lab, deltaE_ciede2000
    def ours(a, b): return delta_e(a[0], b[0])
    def ref(a, b): return float(deltaE_ciede2000(rgb2lab(_rgb01(a[0])), rgb2lab(_rgb01(b[0]))).mean())
    return ours, ref


def python_of(venv): return str(Path(venv)/'bin'/'python')


def dependency_cost(python, dist, module, base_names):
    "(MB installed by `dist` and what it needs beyond `base_names`, import seconds best of 3) in the interpreter `python`."
    code = f"""
import importlib.metadata as md, json, re
def norm(n): return re.sub('[-_.]+', '-', n).lower()
dists = {{norm(d.metadata['Name']): d for d in md.distributions()}}
seen, todo = set(), [norm({dist!r})]
base = set(map(norm, {sorted(base_names)!r}))
while todo:
    n = todo.pop()
    if n in seen or n not in dists or (n in base and n != norm({dist!r})): continue
    seen.add(n)
    for r in dists[n].requires or []:
        if 'extra ==' in r: continue
        todo.append(norm(re.split('[ ;<>=!~\\\\[(]', r, 1)[0]))
size = sum((f.locate().stat().st_size if f.locate().is_file() else 0) for n in seen for f in (dists[n].files or []))
print(json.dumps(dict(mb=size / 1e6, packages=sorted(seen))))
"""
    res = json.loads(subprocess.run([python, '-c', code], capture_output=True, text=True, check=True).stdout)
    times = []
    for _ in range(3):
        t = time.perf_counter(); subprocess.run([python, '-c', f'import {module}'], capture_output=True, check=True); times.append(time.perf_counter() - t)
    t = time.perf_counter(); subprocess.run([python, '-c', 'pass'], check=True); bare = time.perf_counter() - t
    return res['mb'], len(res['packages']), min(times) - bare


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data-root', default=os.environ.get('SRWORK_DATA', '../shared/datasets'))
    ap.add_argument('--models', nargs='*', default=[])
    ap.add_argument('--scale', type=int, default=4)
    ap.add_argument('--pyiqa-venv', default=None)
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    pairs = outputs(a.data_root, a.models, a.scale)
    print(f"{len(pairs)} outputs (Set5 + Set14 colour images x {1 + len(a.models)} upscalers, x{a.scale}); torch threads {torch.get_num_threads()}")
    rows = []
    for net in ('alex', 'vgg'):
        ours, ref, kind = lpips_pair(net)
        rows.append((f'lpips ({net})', 'lpips 0.1.4', kind, *compare(pairs, ours, ref)))
    ours, ref, kind = dists_pair()
    rows.append(('dists', 'DISTS_pytorch 0.1', kind, *compare(pairs, ours, ref)))
    rows.append(('delta_e', 'scikit-image deltaE_ciede2000', '-', *compare(pairs, *colour_pair())))
    baboon = Path(__file__).parent.parent/'tests'/'data'/'baboon.png'
    v, s = timed(niqe, np.asarray(__import__('PIL.Image', fromlist=['x']).open(baboon).convert('RGB')))
    per = np.mean([timed(niqe, sr)[1] for _, sr, _ in pairs[::max(1, len(pairs) // 12)]])
    rows.append(('niqe', 'MATLAB release on its test image (5.72957)', '-', abs(v - 5.72957), per, float('nan')))
    print("\n| metric | reference implementation | trunk | max difference | s/image srwork | s/image reference |\n|---|---|---|---|---|---|")
    for r in rows: print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.2e} | {r[4]:.3f} | {r[5]:.3f} |")
    print(f"(ImageNet trunk files missing offline: lpips {missing_weights('lpips')[:1]}, dists {missing_weights('dists')[:1]})")
    base = [r.split('==')[0] for r in subprocess.run([sys.executable, '-m', 'pip', 'freeze'], capture_output=True, text=True).stdout.split()
            if '==' in r and r.split('==')[0].lower() not in ('lpips', 'dists-pytorch', 'piq', 'pyiqa', 'tensorboard', 'wandb')]
    print("\n| package | installed MB (with what it adds) | packages | import s |\n|---|---|---|---|")
    cands = [(sys.executable, 'lpips', 'lpips'), (sys.executable, 'DISTS-pytorch', 'DISTS_pytorch')]
    if a.pyiqa_venv:
        cands += [(python_of(a.pyiqa_venv), 'piq', 'piq'), (python_of(a.pyiqa_venv), 'pyiqa', 'pyiqa')]
    for py, dist, mod in cands:
        try: mb, n, secs = dependency_cost(py, dist, mod, base)
        except subprocess.CalledProcessError as e: print(f"| {dist} | not measurable here ({e.stderr.strip().splitlines()[-1] if e.stderr else e}) | | |"); continue
        print(f"| {dist} | {mb:.1f} | {n} | {secs:.2f} |")
    t = time.perf_counter(); subprocess.run([sys.executable, '-c', 'import srwork.perceptual'], check=True); srw = time.perf_counter() - t
    t = time.perf_counter(); subprocess.run([sys.executable, '-c', 'import srwork.metrics'], check=True); met = time.perf_counter() - t
    print(f"| srwork.perceptual (own code) | 0 beyond srwork | 0 | {max(srw - met, 0):.2f} (over srwork.metrics) |")


if __name__ == '__main__': main()
