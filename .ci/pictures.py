#!/usr/bin/env python
"""Refresh the pictures the notebooks show: run each notebook as `nbdev_test` runs it (IN_TEST=1, the same cells
skipped), keep the images its cells draw as their outputs (and nothing else: no text, timings or tracebacks), then
`nbdev_clean`. The committed notebooks then render with their pictures on GitHub and in the docs.

    .venv/bin/python .ci/pictures.py                 # every notebook, two at a time
    .venv/bin/python .ci/pictures.py 14_schedules    # only these (names without .ipynb)
    .venv/bin/python .ci/pictures.py --check         # exit 1 if an output is not a picture or nbs/ is over 15 MB
"""
import argparse, json, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
LIMIT = 15 * 2**20                     # the whole of nbs/
PICTURES = ('image/png', 'image/jpeg')
WIDEST = 1400                          # px: wider figures are scaled down (they render at the page's width anyway)


def _compact(png_b64:str) -> tuple[str, str]:
    "(mime type, base64) of a figure as small as it reads well: alpha flattened on white, at most `WIDEST` px wide, PNG or JPEG (q 85), whichever is smaller."
    import base64, io
    from PIL import Image
    im = Image.open(io.BytesIO(base64.b64decode(png_b64)))
    if im.mode in ('RGBA', 'LA', 'P'):
        im = im.convert('RGBA'); bg = Image.new('RGB', im.size, 'white'); bg.paste(im, mask=im.split()[-1]); im = bg
    else: im = im.convert('RGB')
    if im.width > WIDEST: im = im.resize((WIDEST, round(im.height * WIDEST / im.width)), Image.Resampling.LANCZOS)
    encoded = {}
    for mime, fmt, kw in (('image/png', 'PNG', dict(optimize=True)), ('image/jpeg', 'JPEG', dict(quality=85, optimize=True))):
        buf = io.BytesIO(); im.save(buf, fmt, **kw); encoded[mime] = buf.getvalue()
    mime = min(encoded, key=lambda k: len(encoded[k]))
    return mime, base64.b64encode(encoded[mime]).decode()


def _picture_outputs(cell) -> list:
    "The pictures of an executed cell, compacted, as plain display_data (no text reprs: they hold memory addresses and timings)."
    out = []
    for o in cell.get('outputs', []):
        data = o.get('data', {})
        if 'image/png' in data:
            mime, b64 = _compact(data['image/png'])
            out.append({'output_type': 'display_data', 'data': {mime: b64}, 'metadata': {}})
    return out


def run_one(name:str) -> str:
    "Execute notebook `name` as nbdev_test does and write its pictures into it; a line saying what happened."
    from execnb.shell import CaptureShell
    from fastcore.basics import str2bool
    from fastcore.foundation import L
    from fastcore.xtras import working_directory
    from nbdev.config import get_config
    from nbdev.process import NBProcessor
    from nbdev.frontmatter import FrontmatterProc
    fn = NBS/f'{name}.ipynb'
    os.environ['IN_TEST'] = '1'
    flags = set(L(get_config().tst_flags.split()))
    nb = NBProcessor(fn, procs=FrontmatterProc, process=True).nb
    if str2bool(getattr(nb, 'frontmatter_', {}).get('skip_exec', False)): return f"{name}: skipped (skip_exec)"
    def no_eval(cell):
        if cell.cell_type != 'code' or 'nbdev_export' + '(' in cell.source: return True
        direc = getattr(cell, 'directives_', {}) or {}
        return direc.get('eval:', [''])[0].lower() == 'false' or bool(flags & direc.keys())
    shell = CaptureShell(fn, mpl_format='png')
    t0 = time.time()
    with working_directory(fn.parent): shell.run_all(nb, exc_stop=True, preproc=no_eval)
    pictures = {c.id: _picture_outputs(c) for c in nb.cells if c.cell_type == 'code'}
    raw = json.loads(fn.read_text())
    n = 0
    for c in raw['cells']:
        if c['cell_type'] != 'code': continue
        c['outputs'] = pictures.get(c.get('id'), [])
        n += len(c['outputs'])
    fn.write_text(json.dumps(raw, indent=1, ensure_ascii=False) + '\n')
    return f"{name}: {n} picture(s), {fn.stat().st_size / 1e3:.0f} kB, {time.time() - t0:.0f} s"


def output_problems(fn:Path) -> list:
    "The outputs of notebook `fn` that are not one picture each (display_data of a single PNG or JPEG), naming the cell."
    return [f"{fn.name} cell {i}: an output that is not a picture ({o.get('output_type')}: {', '.join(o.get('data', {})) or 'no data'})"
            for i, c in enumerate(json.loads(fn.read_text())['cells']) for o in c.get('outputs', [])
            if o.get('output_type') != 'display_data' or len(o.get('data', {})) != 1 or not set(o['data']) <= set(PICTURES)]


def nbs_size() -> int:
    "Bytes of all the notebooks."
    return sum(fn.stat().st_size for fn in NBS.glob('*.ipynb'))


def check() -> list:
    "Problems: an output that is not a picture, and nbs/ over its size limit."
    problems = [p for fn in sorted(NBS.glob('*.ipynb')) for p in output_problems(fn)]
    if nbs_size() > LIMIT: problems.append(f"nbs/ is {nbs_size() / 2**20:.1f} MB, over {LIMIT / 2**20:.0f} MB")
    return problems


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('names', nargs='*', help='notebooks to refresh (default: all)')
    p.add_argument('--check', action='store_true', help='only check the committed outputs')
    p.add_argument('--one', help=argparse.SUPPRESS)          # (a worker process: one notebook)
    a = p.parse_args()
    if a.one: print(run_one(a.one)); return 0
    if a.check:
        problems = check()
        print('\n'.join(problems) or 'notebook outputs: pictures only, nbs/ within its size limit')
        return 1 if problems else 0
    names = a.names or sorted(f.stem for f in NBS.glob('*.ipynb'))
    def work(name):       # one process per notebook: a fresh kernel, as nbdev_test gives each
        r = subprocess.run([sys.executable, __file__, '--one', name], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else f"{name}: FAILED\n{r.stderr.strip()[-3000:]}"
    with ThreadPoolExecutor(int(os.environ.get('SRWORK_PICTURE_WORKERS', 2))) as ex:
        results = list(ex.map(work, names))
    print('\n'.join(results))
    subprocess.run([str(Path(sys.executable).parent/'nbdev_clean')], cwd=ROOT, check=True)
    problems = check()
    if problems: print('\n'.join(problems))
    return 1 if problems or any('FAILED' in r for r in results) else 0


if __name__ == '__main__': sys.exit(main())
