"""The browser page of `srwork export-web`: its JavaScript against srwork's Python (in Node), and the exported page in
headless Chromium against `srwork upscale`. Needs Node (with npm, which fetches onnxruntime-web once) and Debian's
chromium; CI installs them and sets SRWORK_REQUIRE_BROWSER=1, so there a missing one fails instead of skipping."""
import json, os, shutil, subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srwork.core import sample_images

REQUIRED = bool(os.environ.get('SRWORK_REQUIRE_BROWSER'))


def need(tool:str, found):
    if not found:
        if REQUIRED: pytest.fail(f"{tool} is missing, and SRWORK_REQUIRE_BROWSER is set")
        pytest.skip(f"{tool} is not installed here (CI installs it)")
    return found


# ---------------------------------------------------------------- the page's JavaScript in Node, against srwork's Python
def run_js(tmp_path, code:str):
    "Run the page's reading, PNG and tiling code followed by `code` in Node; what it prints, as JSON."
    from srwork.web import web_asset
    node = need('node', shutil.which('node'))
    script = tmp_path/'harness.mjs'
    script.write_text(web_asset('png.js') + web_asset('read.js') + web_asset('upscale.js') + "\nconst {readFileSync, writeFileSync} = await import('node:fs');\n" + code)
    r = subprocess.run([node, script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def test_tile_windows_and_padding_are_pythons(tmp_path):
    "The page's tileWindows and padToMultiple are srwork.inference.tile_windows and srwork.models.pad_to_multiple."
    import torch
    from srwork.inference import tile_windows
    from srwork.upscaler import pad_to_multiple
    cases = [(n, t, p, a) for n in (1, 7, 16, 33, 200, 300, 517) for t in (8, 32, 64, 256) for p in (0, 3, 12) for a in (1, 4, 16)
             if n % a == 0]
    got = run_js(tmp_path, f"console.log(JSON.stringify({json.dumps(cases)}.map(([n, t, p, a]) => tileWindows(n, t, p, a))));")
    assert got == [[list(w) for w in tile_windows(*c)] for c in cases]
    for h, w, m in ((5, 7, 4), (2, 3, 4), (13, 9, 8), (16, 16, 16)):          # reflect, replicate for tiny images, nothing
        x = torch.rand(1, 3, h, w)
        js = run_js(tmp_path, f"const r = padToMultiple({{width: {w}, height: {h}, rgb: Float32Array.from({json.dumps(x.flatten().tolist())})}}, {m});"
                              "console.log(JSON.stringify([r.height, r.width, Array.from(r.rgb)]));")
        ref = pad_to_multiple(x, m)
        assert js[:2] == list(ref.shape[-2:]) and np.allclose(js[2], ref.flatten().numpy(), atol=0)


def png_cases(folder:Path) -> dict:
    "PNGs of every colour type and depth Pillow writes: grey 1/4/8/16 bits, grey+alpha, RGB, RGB 16 bits, RGBA, palette with transparency, grey and RGB with a transparent colour."
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (9, 13, 4), dtype=np.uint8)
    cases = {'grey8': Image.fromarray(rgba[..., 0]), 'rgb': Image.fromarray(rgba[..., :3]), 'rgba': Image.fromarray(rgba),
             'la': Image.fromarray(rgba[..., :2]), 'grey1': Image.fromarray(rgba[..., 0] > 127),
             'grey16': Image.fromarray(rng.integers(0, 65536, (9, 13)).astype(np.uint16)),
             'palette_trns': Image.fromarray(rgba[..., :3]).quantize(16)}
    cases['palette_trns'].info['transparency'] = bytes(range(0, 256, 16))
    files = {}
    for k, im in cases.items():
        files[k] = folder/f'{k}.png'; im.save(files[k], **({'transparency': im.info['transparency']} if 'transparency' in im.info else {}))
    grey4 = folder/'grey4.png'
    Image.fromarray((rgba[..., 0] >> 4) * 17).convert('L').save(grey4, bits=4); files['grey4'] = grey4
    files['grey_key'] = folder/'grey_key.png'; Image.fromarray(rgba[..., 0]).save(files['grey_key'], transparency=int(rgba[0, 0, 0]))
    files['rgb_key'] = folder/'rgb_key.png'; Image.fromarray(rgba[..., :3]).save(files['rgb_key'], transparency=tuple(int(v) for v in rgba[0, 0, :3]))
    files['rgb16'] = folder/'rgb16.png'
    import cv2                                                    # (Pillow writes no 16-bit RGB)
    cv2.imwrite(str(files['rgb16']), rng.integers(0, 65536, (9, 13, 3)).astype(np.uint16))
    return files


def test_png_reader_reads_every_kind_as_srwork_does(tmp_path):
    "decodePNG gives srwork.core.load_image's values (colour, alpha, grey) for every colour type and bit depth."
    import torch
    from srwork.core import load_image
    files = png_cases(tmp_path)
    js = run_js(tmp_path, f"""const out = {{}};
        for (const [k, f] of Object.entries({json.dumps({k: str(v) for k, v in files.items()})})) {{
          const im = await decodePNG(new Uint8Array(readFileSync(f)), k, 1e9);
          out[k] = [im.width, im.height, Array.from(im.rgb), im.alpha ? Array.from(im.alpha) : null, im.grey];
        }}
        console.log(JSON.stringify(out));""")
    for k, f in files.items():
        img = load_image(f)
        w, h, rgb, alpha, grey = js[k]
        assert (h, w) == tuple(img.shape[-2:]), k
        assert np.abs(np.array(rgb) - img.as_subclass(torch.Tensor).numpy().ravel()).max() < 1e-6, k
        ref_alpha = None if img.meta.alpha is None else img.meta.alpha.numpy().ravel()
        assert (alpha is None) == (ref_alpha is None), k
        if ref_alpha is not None: assert np.abs(np.array(alpha) - ref_alpha).max() < 1e-6, k
        assert grey == img.meta.grey, k


def test_png_writer_round_trips_through_pillow(tmp_path):
    "encodePNG's files read back in Pillow as the pixels given, for 1-4 channels."
    rng = np.random.default_rng(1)
    arrays = {c: rng.integers(0, 256, (7, 11, c), dtype=np.uint8) for c in (1, 2, 3, 4)}
    run_js(tmp_path, f"""for (const [c, a] of Object.entries({json.dumps({c: a.ravel().tolist() for c, a in arrays.items()})})) {{
          const blob = await encodePNG(Uint8Array.from(a), 11, 7, Number(c));
          writeFileSync(`out${{c}}.png`, new Uint8Array(await blob.arrayBuffer()));
        }}
        console.log('[]');""")
    for c, a in arrays.items():
        got = np.asarray(Image.open(tmp_path/f'out{c}.png'))
        assert np.array_equal(got.reshape(a.shape), a), c
        assert Image.open(tmp_path/f'out{c}.png').mode == {1: 'L', 2: 'LA', 3: 'RGB', 4: 'RGBA'}[c]


# ---------------------------------------------------------------- the exported page in headless Chromium
@pytest.fixture(scope='module')
def browser():
    from srwork._browser import HeadlessChromium, find_chromium
    need('chromium', find_chromium())
    with HeadlessChromium() as b: yield b


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    "A 300x200 photo, the same with a graded alpha channel, a grey one, and broken files."
    d = tmp_path_factory.mktemp('photos')
    photo = Image.open(sample_images(d/'samples')/'chelsea.png').convert('RGB').resize((300, 200), Image.LANCZOS)
    photo.save(d/'photo.png')
    rgba = photo.copy(); rgba.putalpha(Image.linear_gradient('L').rotate(90).resize(photo.size)); rgba.save(d/'photo_rgba.png')
    photo.convert('L').save(d/'photo_grey.png')
    (d/'truncated.png').write_bytes((d/'photo.png').read_bytes()[:3000])
    (d/'noise.jpg').write_bytes(os.urandom(5000))
    frames = [Image.new('RGB', (20, 20), c) for c in ('red', 'blue')]
    frames[0].save(d/'anim.gif', save_all=True, append_images=frames[1:])
    return d


def exported(tmp_path_factory, arch, size, scale, model_kw=None, **kw):
    "A model of `arch` (its `size`, `model_kw` overriding its arguments) with random weights saved, and its page exported: (model file, export_web's answer)."
    import torch
    from srwork.models import create_model
    from srwork.modelfiles import save_model
    from srwork.web import export_web, srwork_cache
    need('npm (or a cached onnxruntime-web)', shutil.which('npm') or any(srwork_cache().glob('onnxruntime-web-*')))
    import srwork.edsr, srwork.esrgan, srwork.unet       # (they register their architectures)
    d = tmp_path_factory.mktemp(f'{arch}{scale}')
    torch.manual_seed(0)
    kw_model = {**({'pretrained': False} if arch == 'unet' else {}), **(model_kw or {})}
    model = save_model(create_model(arch, size, scale, **kw_model), d/f'{arch}_x{scale}.safetensors', scale=scale)
    return model, export_web(model, d/'page', quiet=True, **kw)


@pytest.fixture(scope='module')
def edsr_page(tmp_path_factory):
    return exported(tmp_path_factory, 'edsr', 'small', 2, int8=True, max_pixels=300 * 200, tile=128)     # (tiles of 128: the tiled path is the one tested)


@pytest.fixture(scope='module')
def rrdbnet_page(tmp_path_factory):
    return exported(tmp_path_factory, 'esrgan', 'small', 4, model_kw=dict(num_block=1, num_grow_ch=8), tile=128)    # (one block: the page, not the depth, is tested)


def python_upscale(model, image, out, tile):
    from srwork.inference import upscale_file
    return np.asarray(Image.open(upscale_file(model, image, out, tile=tile)['dest']))


def agree(browser_out, python_out):
    "Fraction of values within one level, and the largest difference."
    assert browser_out.shape == python_out.shape
    d = np.abs(browser_out.astype(int) - python_out.astype(int))
    return (d <= 1).mean(), int(d.max())


@pytest.mark.parametrize('page', ['edsr_page', 'rrdbnet_page'])
def test_the_page_equals_srwork_upscale(page, browser, photos, tmp_path, request):
    "EDSR x2 and RRDBNet x4 on a 300x200 photo, with and without alpha: the browser's PNG is Python's to one level on >= 99.9 % of values."
    from srwork._browser import browser_upscale
    model, exp = request.getfixturevalue(page)
    tile = exp['config']['tile']
    for name in ('photo.png', 'photo_rgba.png'):
        r = browser_upscale(exp['out'], photos/name, browser=browser)
        assert r['state'] == 'done', r['error']
        ref = python_upscale(model, photos/name, tmp_path/name, tile)
        share, worst = agree(r['result'], ref)
        assert share >= 0.999 and worst <= 2, (name, share, worst)
        assert r['result'].shape[-1] == (4 if 'rgba' in name else 3)
        assert r['result'][..., :3].std() > 2                     # a picture, not a flat (or clipped) field
        assert int(r['info']['tiles']) > 1                          # 300x200 needs 3x2 tiles of 128 + context
        assert all(u.startswith(('http://127.0.0.1', 'data:', 'blob:')) for u in r['requests']), r['requests']   # nothing from outside
    assert r['result'][0, :, 3].max() - r['result'][-1, :, 3].min() > 200         # the alpha gradient survived


def test_the_unet_page(browser, photos, tmp_path_factory, tmp_path):
    "A model that takes an upsampled input: the graph holds the bicubic enlargement and the page pads to the encoder's multiple (16 at x2)."
    from srwork._browser import browser_upscale
    model, exp = exported(tmp_path_factory, 'unet', 'small', 2)
    assert (exp['config']['multiple'], exp['config']['scale']) == (16, 2)      # 150x100 is padded to 160x112
    Image.open(photos/'photo_rgba.png').resize((150, 100)).save(tmp_path/'small_rgba.png')
    r = browser_upscale(exp['out'], tmp_path/'small_rgba.png', browser=browser)
    assert r['state'] == 'done', r['error']
    share, worst = agree(r['result'], python_upscale(model, tmp_path/'small_rgba.png', tmp_path/'u.png', exp['config']['tile']))
    assert r['result'].shape == (200, 300, 4) and share >= 0.999 and worst <= 2, (share, worst)


def test_variants_grey_and_errors(edsr_page, browser, photos, tmp_path):
    "The int8 model runs; grey comes back grey; broken, unreadable, animated and oversized images give the error state naming the file."
    from srwork._browser import browser_upscale
    model, exp = edsr_page
    r = browser_upscale(exp['out'], photos/'photo.png', query='variant=int8', browser=browser)
    assert r['state'] == 'done' and r['info']['variant'] == 'int8', r['error']
    fp32 = browser_upscale(exp['out'], photos/'photo.png', browser=browser)['result']
    assert agree(r['result'], fp32)[1] > 0 and np.abs(r['result'].astype(int) - fp32).mean() < 3     # another model, near
    from srwork.web import web_server                          # a person: open the page, pick the file, download
    server = web_server(exp['out'])
    try:
        page = browser.open(f"http://127.0.0.1:{server.server_port}/index.html")
        page.wait_for("document.body.dataset.state === 'ready'")
        page.choose_file('#file', photos/'photo.png')
        assert page.wait_for("['done', 'error'].includes(document.body.dataset.state) && document.body.dataset.state") == 'done'
        assert page.evaluate("[document.getElementById('download').download, document.getElementById('download').hidden, "
                             "document.getElementById('download').href === document.getElementById('result').src]") == ['photo_x2.png', False, True]
        from srwork._browser import _data_url_image
        assert np.array_equal(_data_url_image(page.evaluate("document.getElementById('result').src")), fp32)
    finally: server.shutdown(); server.server_close()
    g = browser_upscale(exp['out'], photos/'photo_grey.png', browser=browser)
    assert g['state'] == 'done' and g['result'].ndim == 2
    share, _ = agree(g['result'], python_upscale(model, photos/'photo_grey.png', tmp_path/'grey.png', exp['config']['tile']))
    assert share >= 0.999
    big = tmp_path/'big.png'; Image.new('RGB', (301, 200), 'white').save(big)
    for f, msg in (('truncated.png', 'truncated PNG'), ('noise.jpg', "unreadable image"), ('anim.gif', 'animated GIF (2 frames)'),
                   (big, "over this page's limit of 0.1 Mpx")):
        e = browser_upscale(exp['out'], photos/f, browser=browser)
        assert e['state'] == 'error' and e['error'].startswith(f"{Path(f).name}: ") and msg in e['error'], e['error']


def test_export_web_refusals(edsr_page, tmp_path, srwork_refusals):
    "The command line: an existing folder is not replaced without --overwrite; a bad --ort, model, tile or folder to serve is one line."
    model, exp = edsr_page
    runs = [(['export-web', model, '-o', exp['out']], tmp_path/'unused'),
            (['export-web', model, '-o', tmp_path/'a', '--ort', tmp_path], tmp_path/'a'),
            (['export-web', tmp_path/'missing.safetensors', '-o', tmp_path/'b'], tmp_path/'b'),
            (['export-web', model, '-o', tmp_path/'c', '--tile', '0'], tmp_path/'c'),
            (['serve-web', tmp_path], tmp_path/'d'),
            (['export-web', '-m', tmp_path/'missing2.safetensors', '-o', tmp_path/'e'], tmp_path/'e'),   # -m MODEL, as upscale takes it
            (['export-web', '-o', tmp_path/'f'], tmp_path/'f')]
    msgs = ['exists: pass --overwrite', 'no onnxruntime-web runtime here', 'missing.safetensors', '--tile must be a whole number at least 1',
            'no index.html here (export one with srwork export-web)', 'missing2.safetensors: model file not found', 'give the model once']
    for msg, (rc, err, written) in zip(msgs, srwork_refusals(runs)):
        assert rc == 1 and len(err.strip().splitlines()) == 1 and msg in err, (msg, err)
        assert not written or msg.startswith('exists')
    assert (exp['out']/'index.html').is_file()                       # the existing page is untouched


def test_an_architecture_without_a_page_and_a_failed_check_name_the_model_and_the_folder(edsr_page, tmp_path, srwork_refusals, monkeypatch):
    "Real-CUGAN's graph can't have free shapes: refused in one line naming its file, before any work. A check that fails while the page is staged names OUT, which keeps its old page."
    import srwork.archs  # noqa: F401
    import srwork.web as web
    from srwork.core import SRWorkError
    from srwork.models import create_model
    from srwork.modelfiles import save_model
    rc_file = save_model(create_model('realcugan', 'realcugan', 2), tmp_path/'realcugan.safetensors', scale=2)
    (rc, err, written), = srwork_refusals([(['export-web', rc_file, '-o', tmp_path/'rc'], tmp_path/'rc')])
    assert rc == 1 and not written and len(err.strip().splitlines()) == 1
    assert f"{rc_file}: no dynamic-shape ONNX graph of realcugan" in err, err
    model, exp = edsr_page
    def failing_check(up, path, **kw): raise SRWorkError(f"{path}: ONNX output differs from PyTorch by 3.00e-01 at (48, 64) (> 0.0001)")
    monkeypatch.setattr(web, 'export_onnx', failing_check)
    before = sorted(p.name for p in exp['out'].iterdir())
    with pytest.raises(SRWorkError) as e: web.export_web(model, exp['out'], overwrite=True, quiet=True)
    assert str(e.value).startswith(f"{exp['out']}/model.onnx: ONNX output differs") and str(e.value).endswith('the folder there is unchanged')
    with pytest.raises(SRWorkError, match='nothing was written$'): web.export_web(model, tmp_path/'new', quiet=True)
    assert sorted(p.name for p in exp['out'].iterdir()) == before and not (tmp_path/'new').exists()
    assert not [p for p in exp['out'].parent.iterdir() if '.tmp-' in p.name] and not [p for p in tmp_path.iterdir() if '.tmp-' in p.name]


def test_overwrite_replaces_an_earlier_page_and_nothing_else(edsr_page, tmp_path, srwork_refusals, monkeypatch):
    "--overwrite never deletes the model's folder, the current folder or a user's files: each refused in one line, every byte kept; an earlier page is replaced."
    import hashlib
    model, exp = edsr_page
    def snapshot(d): return {p.relative_to(d): hashlib.sha256(p.read_bytes()).hexdigest() for p in d.rglob('*') if p.is_file()}
    project = tmp_path/'project'; project.mkdir()
    shutil.copy(model, project/'model.safetensors'); (project/'notes.txt').write_text('my notes')
    here = tmp_path/'here'; here.mkdir(); (here/'photo.png').write_bytes(b'not really')
    mixed = tmp_path/'mixed'; shutil.copytree(exp['out'], mixed); (mixed/'ort'/'mine.js').write_text('// mine')
    before = {d: snapshot(d) for d in (project, here, mixed)}
    monkeypatch.chdir(here)
    runs = [(['export-web', project/'model.safetensors', '-o', project, '--overwrite'], project/'index.html'),
            (['export-web', model, '-o', '.', '--overwrite'], here/'index.html'),
            (['export-web', model, '-o', mixed, '--overwrite'], mixed/'unused')]
    msgs = ['holds the model', 'is the current folder', 'holds files export-web did not write (ort/mine.js)']
    for msg, (rc, err, written) in zip(msgs, srwork_refusals(runs)):
        assert rc == 1 and len(err.strip().splitlines()) == 1 and msg in err and '--overwrite only replaces' in err, (msg, err)
        assert not written
    assert {d: snapshot(d) for d in before} == before
    page = tmp_path/'page'; shutil.copytree(exp['out'], page); (page/'index.html').write_text('an older page')
    from srwork.web import export_web
    export_web(model, page, overwrite=True, quiet=True)
    assert (page/'index.html').read_text() != 'an older page' and (page/'model.onnx').is_file()


def test_the_server_serves_the_page_and_nothing_else(edsr_page, tmp_path, monkeypatch, srwork_refusals):
    "serve-web: regular files under the folder's real path only (no links out, listings or FIFOs), localhost Host names only, idle connections closed, threads bounded, bad ports one line."
    import http.client, os, socket, time
    import srwork.web as web
    _, exp = edsr_page
    page = tmp_path/'page'; shutil.copytree(exp['out'], page)
    secret = tmp_path/'secret.txt'; secret.write_text('not for the page')
    os.symlink(secret, page/'linked.txt'); (page/'sub').mkdir(); (page/'sub'/'a.txt').write_text('x'); os.mkfifo(page/'pipe.js')
    monkeypatch.setattr(web._WebHandler, 'timeout', 1); monkeypatch.setattr(web._WebServer, 'max_connections', 8)
    import threading
    threads_before = threading.active_count()
    server = web.web_server(page)
    port = server.server_port
    def get(path, host=f'127.0.0.1:{port}'):
        c = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
        c.request('GET', path, headers={'Host': host}); r = c.getresponse(); r.read(); c.close()
        return r.status
    try:
        assert [get(p) for p in ('/', '/index.html', '/config.json')] == [200, 200, 200]
        assert [get(p) for p in ('/linked.txt', '/sub/', '/pipe.js', '/../secret.txt', '/%2e%2e/secret.txt')] == [404] * 5
        assert get('/', f'localhost:{port}') == 200 and get('/', f'rebound.example:{port}') == 403
        peak, flooding = [0], threading.Event()
        def watch():
            while not flooding.wait(0.02): peak[0] = max(peak[0], threading.active_count() - threads_before)
        watcher = threading.Thread(target=watch); watcher.start()
        idle = [socket.create_connection(('127.0.0.1', port)) for _ in range(40)]
        replies = []
        for s in idle: s.settimeout(10); replies.append(s.recv(12)); s.close()   # 503 at once, or closed by the server when idle
        flooding.set(); watcher.join()
        assert peak[0] <= 1 + 8 + 1, peak     # the accepting thread, at most 8 handlers, the watcher
        assert set(replies) <= {b'', b'HTTP/1.0 503'} and replies.count(b'HTTP/1.0 503') >= 8, replies
        time.sleep(0.5)
        assert get('/') == 200 and threading.active_count() - threads_before <= 1 + 1   # slots given back
    finally: server.shutdown(); server.server_close()
    runs = [(['serve-web', page, '--port', '-1'], tmp_path/'unused'), (['serve-web', page, '--port', '99999'], tmp_path/'unused'),
            (['export-web', tmp_path/'m.safetensors', '-o', tmp_path/'x', '--max-pixels', '-5'], tmp_path/'x')]
    for msg, (rc, err, written) in zip(['--port must be a whole number at least 0 and at most 65535, not -1', 'not 99999',
                                         '--max-pixels must be a whole number at least 1, not -5'], srwork_refusals(runs)):
        assert rc == 1 and len(err.strip().splitlines()) == 1 and msg in err and not written, (msg, err)


def test_the_pages_url_parameters_are_checked(edsr_page, browser, photos, tmp_path):
    "?tile=-8 made the tab allocate gigabytes, ?input=100%.png threw an uncaught URIError: each bad parameter is the error state, a name with % works."
    from srwork._browser import browser_upscale
    _, exp = edsr_page
    odd = tmp_path/'100%.png'; shutil.copy(photos/'photo.png', odd)
    r = browser_upscale(exp['out'], odd, browser=browser)
    assert r['state'] == 'done', r['error']
    for query, msg in (('tile=-8', '?tile=-8: must be 0 (the whole image) or a whole number from 8 to 4096'),
                       ('tile=1e9', '?tile=1e9: must be 0'), ('threads=-1', '?threads=-1: must be a whole number from 1 to 64'),
                       ('backend=cuda', '?backend=cuda: must be auto, wasm or webgpu')):
        r = browser_upscale(exp['out'], photos/'photo.png', query=query, browser=browser, timeout=120)
        assert r['state'] == 'error' and r['error'].startswith(msg), (query, r['error'])


def test_webgpu_runs_where_asked_and_a_software_adapter_is_not_chosen(edsr_page, photos, tmp_path):
    "With --enable-unsafe-webgpu headless Chromium offers SwiftShader's software adapter: ?backend=webgpu runs on it and equals WebAssembly to one level; the default stays on WebAssembly (the software adapter was 50x slower)."
    from srwork._browser import HeadlessChromium, browser_upscale
    _, exp = edsr_page
    Image.open(photos/'photo.png').resize((48, 32)).save(tmp_path/'small.png')     # (SwiftShader is slow: a small image)
    with HeadlessChromium(args=('--enable-unsafe-webgpu',)) as b:
        runs = {q: browser_upscale(exp['out'], tmp_path/'small.png', query=q, browser=b) for q in ('', 'backend=webgpu', 'backend=wasm')}
    for q, r in runs.items(): assert r['state'] == 'done', (q, r['error'])
    assert (runs['']['info']['backend'], runs['']['info']['adapter']) == ('wasm', 'software')
    assert runs['backend=webgpu']['info']['backend'] == 'webgpu'
    share, worst = agree(runs['backend=webgpu']['result'], runs['backend=wasm']['result'])
    assert share >= 0.999 and worst <= 2, (share, worst)
    assert runs['backend=webgpu']['result'].std() > 2
