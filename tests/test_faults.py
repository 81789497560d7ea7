"""Faults and bad input replayed against `srwork upscale` and `srwork train` as a user meets them (the program's `main`, in
this process, or a fresh process where a memory cap or a signal needs one): nothing the user has is lost or replaced without
being asked, a failure is one line naming the file and exits 1, memory stays bounded."""
import hashlib, os, pickle, resource, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srwork.core import sample_images
from cli_runner import srwork_in_process

SRWORK = [sys.executable, '-m', 'srwork.cli']


def srwork(*args, cwd=None, preexec_fn=None, timeout=600):
    "`srwork ARGS`: in this process, or in a fresh one where `preexec_fn` (a memory cap) has to act on a process of its own."
    if preexec_fn is None: return srwork_in_process(*args, cwd=cwd)
    return subprocess.run(SRWORK + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          preexec_fn=preexec_fn)


def checksums(folder:Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob('*')) if p.is_file()}


def png(path:Path, seed:int, size=(12, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.RandomState(seed).randint(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    import torch
    from srwork.edsr import EDSR
    from srwork.modelfiles import save_model
    torch.manual_seed(0)
    return save_model(EDSR(num_feat=8, num_block=1, scale=2), tmp_path_factory.mktemp('m')/'x2.safetensors')


# ---------------------------------------------------------------- srwork upscale: nothing lost
def test_an_input_is_never_overwritten_nor_read_back(model, tmp_path):
    "`-o` = the input folder with a --suffix, where the user already has a file of the output's name."
    p = tmp_path/'p'
    png(p/'a.png', 0); png(p/'a_x2.png', 1); png(p/'b.png', 2)
    before = checksums(p)
    r = srwork('upscale', p, '-m', model, '-o', p, '--suffix', '_x2')
    assert r.returncode == 1
    assert f"{p/'a.png'}: {p/'a_x2.png'} exists: pass --overwrite to replace it" in r.stderr
    assert f"skipping {p/'a_x2.png'}: it is this run's output for {p/'a.png'}" in r.stderr
    assert '1 upscaled, 1 failed, 1 skipped' in r.stdout
    after = checksums(p)
    assert {k: after[k] for k in before} == before                           # the user's a_x2.png is untouched
    assert set(after) == set(before) | {'b_x2.png'}                          # no a_x2_x2.png, no temp file
    r = srwork('upscale', p, '-m', model, '-o', p, '--suffix', '_x2', '--overwrite')   # asked for: a_x2.png replaced
    assert r.returncode == 0, r.stderr
    after = checksums(p)
    assert set(after) == set(before) | {'b_x2.png'} and after['a_x2.png'] != before['a_x2.png']
    assert after['a.png'] == before['a.png'] and after['b.png'] == before['b.png']
    assert Image.open(p/'a_x2.png').size == (24, 20)


def test_an_output_folder_inside_the_input_folder_is_not_read_back(model, tmp_path):
    p = tmp_path/'p'
    png(p/'a.png', 0); png(p/'b.png', 1)
    assert srwork('upscale', p, '-m', model, '-o', p/'up').returncode == 0
    (p/'b.png').unlink()                                                     # up/b.png is now nobody's output
    first = checksums(p)
    r = srwork('upscale', p, '-m', model, '-o', p/'up')                   # the same command again
    assert r.returncode == 1 and f"{p/'a.png'}: {p/'up'/'a.png'} exists: pass --overwrite" in r.stderr
    assert f"skipping {p/'up'/'a.png'}: it is this run's output for {p/'a.png'}" in r.stderr
    assert f"skipping {p/'up'/'b.png'}: it lies in the output folder {p/'up'}" in r.stderr
    assert checksums(p) == first
    r = srwork('upscale', p, '-m', model, '-o', p/'up', '--overwrite')
    assert r.returncode == 0, r.stderr
    assert set(checksums(p)) == {'a.png', 'up/a.png', 'up/b.png'}           # no up/up/...


def test_two_inputs_with_one_output_name(model, tmp_path):
    a, b = png(tmp_path/'d1'/'a.png', 0), png(tmp_path/'d2'/'a.png', 1)
    r = srwork('upscale', a, b, '-m', model, '-o', tmp_path/'out')
    assert r.returncode == 1
    assert f"{b}: its output {tmp_path/'out'/'a.png'} is also the output of {a}" in r.stderr
    assert '1 upscaled, 1 failed' in r.stdout and set(checksums(tmp_path/'out')) == {'a.png'}


def test_a_pickle_is_refused_before_it_runs(tmp_path):
    marker = tmp_path/'pwned'

    class Evil:
        def __reduce__(self): return (open, (str(marker), 'w'))
    (tmp_path/'evil.pkl').write_bytes(pickle.dumps(Evil()))
    png(tmp_path/'a.png', 0)
    r = srwork('upscale', tmp_path/'a.png', '-m', tmp_path/'evil.pkl', '-o', tmp_path/'out')
    assert r.returncode == 1 and not marker.exists() and not (tmp_path/'out').exists()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"srwork: error: {tmp_path/'evil.pkl'}: a .pkl model is a pickle")
    assert '.safetensors' in lines[0] and '--trust-pickle' in lines[0]
    r = srwork('bench', '--data', tmp_path, '--model', tmp_path/'evil.pkl', '--no-bicubic')
    assert r.returncode == 1 and not marker.exists() and '--trust-pickle' in r.stderr


# ---------------------------------------------------------------- srwork train: relative -o, reuse, --minutes
@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return sample_images(tmp_path_factory.mktemp('hr'))


TINY = ['--arch', 'edsr', '--scale', 2, '--patch', 48, '--bs', 4, '--size', 'small', '--eval-crop', 96]


def test_relative_output_folder_then_resume_then_reuse(data, tmp_path):
    "The README's form, `-o runs/edsr`, relative to where the command runs; then the same folder again."
    r = srwork('train', '--data', data, *TINY, '--epochs', 1, '-q', '-o', 'runs/edsr', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    run = tmp_path/'runs'/'edsr'
    assert (run/'model.safetensors').is_file() and (run/'model.pkl').is_file() and not (run/'runs').exists()
    r = srwork('train', '--data', data, *TINY, '--epochs', 1, '-o', 'runs/edsr', '--resume', cwd=tmp_path)
    assert r.returncode == 0 and 'already done' in r.stdout, r.stderr[-2000:]
    before = checksums(run)
    r = srwork('train', '--data', data, *TINY, '--epochs', 1, '-q', '-o', 'runs/edsr', cwd=tmp_path)
    assert r.returncode == 1 and checksums(run) == before
    line, = r.stderr.strip().splitlines()
    assert 'runs/edsr: holds a finished run' in line and '--resume continues it, --overwrite deletes it' in line
    written = (run/'model.safetensors').stat().st_mtime_ns
    r = srwork('train', '--data', data, *TINY, '--epochs', 1, '-q', '-o', 'runs/edsr', '--overwrite', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (run/'model.safetensors').stat().st_mtime_ns > written       # trained again (to the same weights: same seed)


def _cap_memory():                      # address space: torch's own mappings fit, a list of 10**9 epochs does not
    resource.setrlimit(resource.RLIMIT_AS, (CAP_GB << 30, CAP_GB << 30))


CAP_GB = 12


def test_minutes_cost_what_epochs_cost(data, tmp_path):
    "fastai's progress bar made `list(range(10**9))` for a time budget: gigabytes before the first batch."
    r = srwork('train', '--data', data, *TINY, '--minutes', 0.05, '-o', tmp_path/'run', preexec_fn=_cap_memory)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path/'run'/'model.safetensors').is_file()


def test_a_resumed_time_budget_logs_each_epoch_once(data, tmp_path):
    "Ctrl-C in a --minutes run, then --resume: the epochs go on from the checkpoint (they restarted at 0 and were logged twice)."
    import signal, time, torch
    out = tmp_path/'run'
    args = SRWORK + [str(a) for a in ['train', '--data', data, *TINY, '--minutes', 0.4, '-o', out]]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.time()
    while not (out/'checkpoint_train.pth').exists() or len((out/'history_train.csv').read_text().splitlines()) < 3:
        assert p.poll() is None and time.time() - t0 < 300, p.communicate()[1][-2000:]
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    stopped = torch.load(out/'checkpoint_train.pth', weights_only=False)['epoch']
    r = srwork(*args[len(SRWORK):], '--resume')            # (the resumed run needs no process of its own)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f'resuming from {out/"checkpoint_train.pth"} (epoch {stopped + 1},' in r.stdout
    epochs = [int(line.split(',')[0]) for line in (out/'history_train.csv').read_text().splitlines()[1:]]
    assert epochs == list(range(len(epochs))) and len(epochs) > stopped + 1, epochs


def test_a_ctrl_c_python_swallows_in_a_finalizer_still_stops_training(data, tmp_path, monkeypatch, capsys):
    "Ctrl-C that lands while a finalizer runs (matplotlib's, in CI) is printed as 'Exception ignored' and lost: the run went on to the end, exit 0."
    import srwork.rundir as rd
    from srwork.core import raise_interrupt
    from srwork.cli import main
    class Finalizer:
        def __del__(self): raise_interrupt()       # what the signal handler does when the signal lands here
    real, calls = rd.plot_curves, []
    def plot_then_swallow(out, phases):
        calls.append(1)
        if len(calls) == 1: Finalizer()            # freed at once: Python prints "Exception ignored in ..." and goes on
        return real(out, phases)
    monkeypatch.setattr(rd, 'plot_curves', plot_then_swallow)
    out = tmp_path/'run'
    rc = main([str(a) for a in ['train', '--data', data, *TINY, '--epochs', 4, '--patches-per-epoch', 8, '-o', out]])
    err = capsys.readouterr().err
    assert rc == 130 and 'srwork: interrupted: checkpoint saved' in err, err[-2000:]
    assert len((out/'history_train.csv').read_text().splitlines()) == 2 and not (out/'model.safetensors').exists()   # stopped after epoch 1


# ---------------------------------------------------------------- bad numbers: refused up front, one line, nothing written
def test_bad_numbers_are_refused_before_any_work(model, data, tmp_path, srwork_refusals):
    import torch
    img = png(tmp_path/'in'/'a.png', 0)
    upscale_cases = {'--tile must be a whole number at least 0, not -5': ['--tile', -5],
                     '--batch-size must be a whole number at least 1, not -1': ['--batch-size', -1],
                     '--batch-size must be a whole number at least 1, not 0': ['--batch-size', 0],
                     '--tile-pad must be a whole number at least 0, not -3': ['--tile-pad', -3],
                     "device 'gpu0': not a device name": ['--device', 'gpu0']}
    if not torch.cuda.is_available(): upscale_cases['device cuda: no CUDA GPU is available here'] = ['--device', 'cuda']
    train_cases = {'--bs must be a whole number at least 1, not 0': ['--bs', 0],
                   '--valid-pct must be a number greater than 0 and less than 1, not 0.0': ['--valid-pct', 0],
                   '--minutes must be a number greater than 0, not 0.0': ['--minutes', 0],
                   '--scale must be a whole number at least 1, not 0': ['--scale', 0],
                   '--lr must be a number greater than 0, not nan': ['--lr', 'nan']}
    runs = []
    for i, (msg, args) in enumerate(upscale_cases.items()):
        runs.append((msg, tmp_path/f'up{i}', ['upscale', img, '-m', model, '-o', tmp_path/f'up{i}', *args]))
    for i, (msg, args) in enumerate(train_cases.items()):
        runs.append((msg, tmp_path/f'tr{i}', ['train', '--arch', 'edsr', '--data', data, '--scale', 2, *args, '-o', tmp_path/f'tr{i}']))
    before = checksums(tmp_path/'in')
    for (msg, _, _), (rc, err, written) in zip(runs, srwork_refusals([(argv, out) for _, out, argv in runs])):
        assert rc == 1, (msg, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"srwork: error: {msg}"), (msg, err)
        assert not written, msg
    assert checksums(tmp_path/'in') == before


# ---------------------------------------------------------------- the API: misreadable input and broken models are errors
def test_api_refuses_what_it_would_misread():
    import torch
    from srwork.core import SRWorkError
    from srwork.edsr import EDSR
    from srwork.inference import upscale
    torch.manual_seed(0)
    m = EDSR(num_feat=8, num_block=1, scale=2)
    nan_img = torch.rand(3, 8, 8); nan_img[0, 2, 2] = float('nan')
    cases = {'NaN or infinite': nan_img,
             'spans 0 to 255: divide 0-255 values by 255': np.linspace(0, 255, 8 * 8 * 3).reshape(8, 8, 3),
             'not int64': np.zeros((8, 8, 3), np.int64),
             'looks channel-first (C, H, W)': np.zeros((3, 8, 8), np.float32),
             'got (5, 8, 8)': torch.rand(5, 8, 8)}
    for msg, img in cases.items():
        with pytest.raises(SRWorkError, match=msg.replace('(', r'\(').replace(')', r'\)')): upscale(m, img, device='cpu')
    with pytest.raises(SRWorkError, match='the model upscales x2, not x4'): upscale(m, torch.rand(3, 8, 8), scale=4, device='cpu')
    assert upscale(m, (np.random.RandomState(0).rand(8, 8, 3) * 255).astype(np.uint8), device='cpu').shape == (16, 16, 3)
    broken = EDSR(num_feat=8, num_block=1, scale=2)
    with torch.no_grad(): broken.conv_first.weight.fill_(float('nan'))
    with pytest.raises(SRWorkError, match="the model's output holds NaN or infinite values"): upscale(broken, torch.rand(3, 8, 8), device='cpu')
    with torch.no_grad():
        for p in broken.parameters(): p.zero_()
    with pytest.raises(SRWorkError, match=r"flat \(one value per channel\) for an image that is not"): upscale(broken, torch.rand(3, 8, 8), device='cpu')


def test_a_broken_model_writes_no_file(tmp_path):
    import torch
    from srwork.edsr import EDSR
    from srwork.modelfiles import save_model
    broken = EDSR(num_feat=8, num_block=1, scale=2)
    with torch.no_grad(): broken.conv_first.weight.fill_(float('nan'))
    save_model(broken, tmp_path/'nan.safetensors')
    img = png(tmp_path/'in'/'a.png', 0)
    r = srwork('upscale', img, '-m', tmp_path/'nan.safetensors', '-o', tmp_path/'out')
    assert r.returncode == 1
    assert not (tmp_path/'out').exists() or not any((tmp_path/'out').rglob('*'))       # no file, no temp file
    assert f"srwork: error: {img}: the model's output holds NaN or infinite values" in r.stderr


# ---------------------------------------------------------------- unbounded time or memory
def _png_header_only(path:Path, w:int, h:int):
    "A valid PNG signature and header declaring w x h RGB pixels, with a few bytes of image data: a decompression bomb's shape."
    import struct, zlib
    chunk = lambda kind, data: struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
                     + chunk(b'IDAT', zlib.compress(b'\x00' * 4096)) + chunk(b'IEND', b''))
    return path


def test_bombs_and_link_loops_are_bounded(model, tmp_path):
    p = tmp_path/'p'
    png(p/'a.png', 0)
    _png_header_only(p/'bomb144.png', 12000, 12000)                     # 144 Mpx, Pillow only warns
    _png_header_only(p/'bomb900.png', 30000, 30000)                     # Pillow raises its own error
    (p/'loop').symlink_to(p); (p/'sub').mkdir(); (p/'sub'/'back').symlink_to(p)
    r = srwork('upscale', p, '-m', model, '-o', tmp_path/'out', preexec_fn=_cap_memory, timeout=300)
    assert r.returncode == 1, r.stderr[-2000:]
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 2, r.stderr
    assert errors[0].startswith(f"srwork: error: {p/'bomb144.png'}: 12000x12000 is 144 Mpx, over the 100 Mpx limit")
    assert errors[1].startswith(f"srwork: error: {p/'bomb900.png'}:")
    assert sorted(str(f.relative_to(tmp_path/'out')) for f in (tmp_path/'out').rglob('*') if f.is_file()) == ['a.png']
    r = subprocess.run(SRWORK + ['upscale', str(p/'bomb144.png'), '-m', str(model), '-o', str(tmp_path/'out2'), '--tile', '0'],
                       capture_output=True, text=True, env=dict(os.environ, SRWORK_MAX_PIXELS='2e8'), timeout=300,
                       preexec_fn=_cap_memory)
    assert r.returncode == 1 and 'bomb144.png: truncated or corrupt image data' in r.stderr   # the limit raised: decoded, and found short


# ---------------------------------------------------------------- model files with an edited description
def _edited(tmp_path, name, edit):
    "A copy of a valid x2 EDSR model file whose srwork metadata went through `edit` (which changes it in place or returns new)."
    import json, torch
    from safetensors.torch import save
    from srwork.edsr import EDSR
    from srwork.upscaler import Upscaler
    m = EDSR(num_feat=8, num_block=1, scale=2)
    meta = dict(srwork_version='0', model=m.config, scale=2, upsample_input=False, norm_stats=[])
    new = edit(meta)
    meta = meta if new is None else new
    tensors = {k: v.contiguous() for k, v in m.state_dict().items()}
    f = tmp_path/f'{name}.safetensors'
    f.write_bytes(save(tensors, metadata={'srwork': meta if isinstance(meta, str) else json.dumps(meta)}))
    return f

EDITS = {
    'unknown_arch': (lambda m: m['model'].update(arch='nosuch'), "unknown arch 'nosuch'"),
    'other_arch': (lambda m: m['model'].update(arch='srresnet'), 'the srresnet config has arguments it does not take'),
    'negative_size': (lambda m: m['model'].update(num_feat=-4), 'the edsr config can\'t be built (RuntimeError: Trying to create tensor with negative dimension'),
    'huge_size': (lambda m: m['model'].update(num_feat=10**6), 'conv_first.weight (8, 3, 3, 3) where the config needs (1000000, 3, 3, 3)'),
    'mismatched_size': (lambda m: m['model'].update(num_block=3), 'tensors do not fit the described edsr model: missing body.1'),
    'scale_0': (lambda m: m.update(scale=0), 'scale 0 is not a whole number >= 1'),
    'scale_text': (lambda m: m.update(scale='two'), "scale 'two' is not a whole number >= 1"),
    'scales_differ': (lambda m: m['model'].update(scale=3), 'the model config says scale 3, the file scale 2'),
    'both_scales_0': (lambda m: (m.update(scale=0), m['model'].update(scale=0)) and None, 'scale 0 is not a whole number >= 1'),
    'no_model': (lambda m: m.pop('model') and None, "'model' is not a config with an 'arch' name"),
    'not_a_dict': (lambda m: [1, 2], 'no srwork description'),
    'bad_json': (lambda m: '{bad', 'the srwork description is not valid JSON'),
    'zero_std': (lambda m: m.update(norm_stats=[[[0, 0, 0], [0, 0, 0]]]), "'norm_stats' are not pairs"),
    'ragged_stats': (lambda m: m.update(norm_stats=[[1, 2]]), "'norm_stats' are not pairs"),
    'millions_of_blocks': (lambda m: m['model'].update(num_block=30_000_000), 'the edsr config describes a model with more than'),
    'deep_json': (lambda m: '[' * 200_000 + ']' * 200_000, 'the srwork description is JSON nested too deep'),
    'negative_memory': (lambda m: m.update(forward_memory=[-1, 0]), "'forward_memory' [-1, 0] is not two finite numbers >= 0"),
    'memory_text': (lambda m: m.update(forward_memory='a lot'), "'forward_memory' 'a lot' is not two finite numbers >= 0"),
}

@pytest.mark.parametrize('case', list(EDITS))
def test_an_edited_model_file_is_one_clear_error(case, tmp_path):
    from srwork.core import SRWorkError
    from srwork.inference import load_model
    edit, msg = EDITS[case]
    f = _edited(tmp_path, case, edit)
    with pytest.raises(SRWorkError) as e: load_model(f)
    assert str(e.value).startswith(f"{f}: ") and msg in str(e.value) and '\n' not in str(e.value), str(e.value)


def test_quantised_weights_are_not_read_as_floats(tmp_path):
    "Weights stored as int8 (a quantised file renamed, or damaged) would give an image far off: refused by name."
    import torch
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open
    from srwork.core import SRWorkError
    from srwork.inference import load_model
    f = _edited(tmp_path, 'ok', lambda m: None)
    with safe_open(str(f), 'pt') as h: meta = h.metadata()
    tensors = {k: (v * 100).to(torch.int8) for k, v in load_file(f).items()}
    save_file(tensors, tmp_path/'int8.safetensors', metadata=meta)
    with pytest.raises(SRWorkError, match=r"int8.safetensors: .* is stored as int8 \(\d+ such tensors\): quantised weights"): load_model(tmp_path/'int8.safetensors')


def test_an_edited_model_file_stops_the_batch_before_any_work(tmp_path):
    p = tmp_path/'p'; png(p/'a.png', 0); png(p/'b.png', 1)
    f = _edited(tmp_path, 'scale0', EDITS['both_scales_0'][0])
    r = srwork('upscale', p, '-m', f, '-o', tmp_path/'out')
    assert r.returncode == 1 and r.stderr == f"srwork: error: {f}: scale 0 is not a whole number >= 1 (the file's srwork metadata was edited or is damaged)\n"
    assert not (tmp_path/'out').exists()


# ---------------------------------------------------------------- PIL inputs, empty inputs, short PNGs
def test_pil_inputs_keep_transparency_orientation_and_grey(tmp_path):
    import io
    from srwork.edsr import EDSR
    from srwork.inference import upscale
    m = EDSR(num_feat=8, num_block=1, scale=2)
    rgb = np.random.RandomState(0).randint(0, 256, (10, 12, 3), dtype=np.uint8)
    pal = Image.fromarray(rgb).quantize(8); pal.info['transparency'] = 0
    out = upscale(m, pal, tile=None)
    assert out.mode == 'RGBA' and out.size == (24, 20)
    assert (np.asarray(out)[..., 3] < 128).sum() > 0 and (np.asarray(out)[..., 3] > 128).sum() > 0    # holes stay holes
    grey = Image.fromarray(rgb[..., 0]); grey.info['transparency'] = int(rgb[0, 0, 0])
    assert upscale(m, grey, tile=None).mode == 'LA'
    assert upscale(m, Image.fromarray(rgb[..., 0]), tile=None).mode == 'L'
    side = Image.fromarray(rgb); exif = side.getexif(); exif[0x0112] = 6          # stored sideways, shown upright
    buf = io.BytesIO(); side.save(buf, 'JPEG', exif=exif, quality=95)
    shot = Image.open(buf)
    assert shot.size == (12, 10) and upscale(m, shot, tile=None).size == (20, 24)


@pytest.mark.parametrize('empty', [lambda: np.zeros((0, 4, 3), np.uint8), lambda: Image.new('RGB', (0, 0)),
                                   lambda: __import__('torch').zeros(3, 0, 5), lambda: __import__('torch').zeros(1, 3, 4, 0)])
def test_an_empty_image_is_a_clear_error(empty):
    from srwork.core import ImageValueError
    from srwork.edsr import EDSR
    from srwork.inference import upscale
    with pytest.raises(ImageValueError, match='empty image'): upscale(EDSR(num_feat=8, num_block=1, scale=2), empty())


def _short_png(path:Path, w=8, h=6, rows=3):
    "A well-formed PNG whose zlib stream ends cleanly after `rows` of its `h` rows (Pillow pads the rest with black)."
    import struct, zlib
    def chunk(kind, data): return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    data = b''.join(b'\0' + bytes([200] * w * 3) for _ in range(rows))
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
                     + chunk(b'IDAT', zlib.compress(data)) + chunk(b'IEND', b''))
    return path


def test_a_short_png_fails_alone(model, tmp_path):
    p = tmp_path/'p'; png(p/'a.png', 0); _short_png(p/'b.png'); png(p/'c.png', 2)
    r = srwork('upscale', p, '-m', model, '-o', tmp_path/'out')
    assert r.returncode == 1
    assert r.stderr.strip() == f"srwork: error: {p/'b.png'}: truncated PNG: its image data stops 75 bytes short (Pillow would pad it with black)"
    assert sorted(f.name for f in (tmp_path/'out').iterdir()) == ['a.png', 'c.png'] and '2 upscaled, 1 failed' in r.stdout


# ---------------------------------------------------------------- a full disk, and what killed runs leave
def _namespaces_work() -> bool:
    try: return subprocess.run(['unshare', '-rm', 'true'], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError): return False

def _xfsz_ignored():
    import signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

def on_small_disk(cmd, folder:Path, kbytes:int, copy_to:Path, timeout=600):
    """Run `cmd` with `folder` (and what it holds) on a disk of `kbytes` (a tmpfs in a private mount namespace: the real "No
    space left on device"), then copy what is there to `copy_to`. Without namespaces: a file size limit instead (EFBIG)."""
    folder.mkdir(parents=True, exist_ok=True); copy_to.mkdir(parents=True, exist_ok=True)
    cmd = [str(a) for a in cmd]
    if _namespaces_work():
        keep = folder.parent/(folder.name + '.keep')
        script = ('mkdir -p "$K" && cp -a "$F"/. "$K"/ && mount -t tmpfs -o size="$1"k tmpfs "$F" && cp -a "$K"/. "$F"/ || exit 99; '
                  'shift; "$@"; rc=$?; cp -a "$F"/. "$C"/; exit $rc')
        r = subprocess.run(['unshare', '-rm', 'sh', '-c', script, 'sh', str(kbytes)] + cmd, capture_output=True, text=True,
                           timeout=timeout, env=dict(os.environ, K=str(keep), F=str(folder), C=str(copy_to)))
        assert r.returncode != 99, r.stderr
        return r, 'No space left on device (disk full)'
    import resource, shutil
    def limit():
        _xfsz_ignored(); resource.setrlimit(resource.RLIMIT_FSIZE, (kbytes * 1024, kbytes * 1024))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=limit)
    shutil.copytree(folder, copy_to, dirs_exist_ok=True)
    return r, 'File too large'


def test_a_full_disk_while_upscaling(model, tmp_path):
    p = tmp_path/'p'; png(p/'a.png', 0, (12, 10)); png(p/'b.png', 1, (200, 150)); png(p/'c.png', 2, (12, 10))
    r, why = on_small_disk(SRWORK + ['upscale', p, '-m', model, '-o', tmp_path/'out'], tmp_path/'out', 64, tmp_path/'left')
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip() == f"srwork: error: {p/'b.png'}: {tmp_path/'out'/'b.png'}: not written: {why}; no file was left"
    assert sorted(f.name for f in (tmp_path/'left').iterdir()) == ['a.png', 'c.png']       # no temp file, no half PNG
    assert all(Image.open(f).size == (24, 20) for f in (tmp_path/'left').iterdir())
    assert '2 upscaled, 1 failed' in r.stdout


def test_a_full_disk_while_training(data, tmp_path):
    out = tmp_path/'run'
    args = ['train', '--arch', 'edsr', '--data', data, '--scale', 2, '--patch', 48, '--bs', 4, '--epochs', 1, '--size', 'small', '-o', out]
    r, why = on_small_disk(SRWORK + args, out, 200, tmp_path/'left')
    assert r.returncode == 1, r.stderr[-3000:]
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"srwork: error: {out}/") and f"not written: {why}" in err[0], r.stderr[-3000:]
    assert not [f.name for f in (tmp_path/'left').rglob('*.tmp')]


def test_model_files_on_a_full_disk(tmp_path):
    "save_model (model.safetensors) and export_generator (model.pkl): an error naming the file, no temp file, the old file kept."
    code = ("import sys, torch; from srwork.edsr import EDSR; from srwork.modelfiles import save_model, export_generator; "
            "from srwork.learner import sr_learner; from srwork.data import sr_dataloaders; from srwork.core import SRWorkError\n"
            "m = EDSR(num_feat=64, num_block=4, scale=2); out = sys.argv[1]\n"
            "for f in (lambda: save_model(m, out + '/model.safetensors'),\n"
            "          lambda: export_generator(sr_learner(sr_dataloaders(sys.argv[2], scale=2, patch_size=48, bs=2, num_workers=0), m, 2), out + '/model.pkl')):\n"
            "    try: f(); print('written')\n"
            "    except SRWorkError as e: print(e)\n")
    out = tmp_path/'out'; out.mkdir()
    (out/'model.pkl').write_bytes(b'the previous export')
    data = tmp_path/'d'; sample_images(data)
    r, why = on_small_disk([sys.executable, '-c', code, out, data], out, 600, tmp_path/'left', timeout=300)
    left = tmp_path/'left'
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    assert lines[0] == f"{out/'model.safetensors'}: not written: {why}; no file was left", r.stdout
    assert lines[1].startswith(f"{out/'model.pkl'}: not written: ") and lines[1].endswith('; the file there is unchanged'), r.stdout
    assert sorted(f.name for f in left.iterdir()) == ['model.pkl'] and (left/'model.pkl').read_bytes() == b'the previous export'


def test_temp_files_of_killed_runs_are_cleaned(model, tmp_path):
    import socket
    host = socket.gethostname()[:32]
    gone = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True).stdout.strip()
    out = tmp_path/'out'; out.mkdir()
    (out/f'.a.png.{host}-{gone}.k3j4h5g6.tmp').write_bytes(b'half a png from a killed run')
    (out/f'.a.png.{host}-{os.getpid()}.k3j4h5g7.tmp').write_bytes(b'a live process is writing this')
    p = tmp_path/'p'; png(p/'a.png', 0)
    r = srwork('upscale', p, '-m', model, '-o', out)
    assert r.returncode == 0, r.stderr
    assert sorted(f.name for f in out.iterdir()) == [f'.a.png.{host}-{os.getpid()}.k3j4h5g7.tmp', 'a.png']


# ---------------------------------------------------------------- published weight files: tensors only, one line
def test_bad_weight_files_are_refused_in_one_line_and_nothing_is_unpickled(tmp_path):
    import torch
    marker = tmp_path/'pwned'
    class Evil:
        def __reduce__(self): return (os.system, (f'touch {marker}',))
    torch.save({'params': Evil()}, tmp_path/'evil.pth')
    torch.save([1, 2, 3], tmp_path/'list.pth')
    torch.save({'foo.weight': torch.randn(4, 4), 'bar.bias': torch.randn(4)}, tmp_path/'unknown.pth')
    (tmp_path/'empty.pt').write_bytes(b'')
    img = png(tmp_path/'in'/'a.png', 0)
    cases = {'evil.pth': 'holds pickled Python objects (posix.system), not only tensors', 'list.pth': 'does not hold a state dict of tensors',
             'unknown.pth': 'no known architecture fits these weights (keys foo.weight, bar.bias, ...)',
             'empty.pt': 'not a readable PyTorch weight file'}
    for name, msg in cases.items():
        r = srwork('upscale', img, '-m', tmp_path/name, '-o', tmp_path/'out')
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"srwork: error: {tmp_path/name}: {msg}"), (name, r.stderr)
    assert not marker.exists() and not (tmp_path/'out').exists()


def test_a_missing_spandrel_is_named_with_the_extra_to_install(tmp_path, monkeypatch):
    import torch
    from srwork.core import SRWorkError
    from srwork.inference import load_model
    torch.save({'body.0.weight': torch.randn(8, 3, 3, 3), 'body.1.weight': torch.randn(8)}, tmp_path/'compact.pth')
    monkeypatch.setitem(sys.modules, 'spandrel', None)             # as if it were not installed
    with pytest.raises(SRWorkError, match=r"compact\.pth: no srwork architecture fits .* pip install 'srwork\[spandrel\]'"):
        load_model(tmp_path/'compact.pth')


def test_a_file_that_appears_after_planning_is_not_replaced(model, tmp_path, monkeypatch):
    "Another run (or the user) writes an output while this run works: the no-overwrite promise holds at the moment of writing."
    import srwork.inference as inference
    p, out = tmp_path/'p', tmp_path/'out'
    png(p/'a.png', 0); png(p/'b.png', 1)
    load = inference.load_image
    def load_while_someone_writes(path, *a, **k):
        if Path(path).name == 'a.png': out.mkdir(exist_ok=True); (out/'a.png').write_bytes(b'the other run wrote this')
        return load(path, *a, **k)
    monkeypatch.setattr(inference, 'load_image', load_while_someone_writes)
    r = srwork('upscale', p, '-m', model, '-o', out)
    assert r.returncode == 1 and '1 upscaled, 1 failed' in r.stdout
    assert f"{out/'a.png'}: exists (it appeared while this was being written): not replaced; pass --overwrite" in r.stderr, r.stderr
    assert (out/'a.png').read_bytes() == b'the other run wrote this' and set(checksums(out)) == {'a.png', 'b.png'}


def test_two_processes_into_one_folder_write_each_file_once(model, tmp_path):
    "Two `srwork upscale` runs started together into the same -o: each output is written by one of them, the other says so."
    p, out = tmp_path/'p', tmp_path/'out'
    for i in range(6): png(p/f'{i}.png', i, size=(40, 30))
    runs = [subprocess.Popen(SRWORK + ['upscale', str(p), '-m', str(model), '-o', str(out)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(r.wait(timeout=300), *r.communicate()) for r in runs]
    done = [int(o.strip().splitlines()[-1].split(' upscaled')[0]) for _, o, _ in results]
    assert sum(done) == 6, results
    for rc, o, e in results:
        assert rc == (0 if ' 0 failed' in o else 1) and all('exists' in line for line in e.strip().splitlines() if line), e
    assert set(checksums(out)) == {f'{i}.png' for i in range(6)}


def test_an_input_with_a_name_of_244_bytes(model, tmp_path):
    "The temporary file beside the output must not be longer than the output's own name."
    name = 'n' * 240 + '.png'
    png(tmp_path/'p'/name, 0)
    r = srwork('upscale', tmp_path/'p'/name, '-m', model, '-o', tmp_path/'out')
    assert r.returncode == 0, r.stderr
    assert set(checksums(tmp_path/'out')) == {name}


def test_srwork_outputs_and_fifos_are_never_training_data(tmp_path):
    "-o inside --data: neither this run's files nor another run's are read as images; a FIFO named pipe.png does not block."
    import signal
    from srwork.training import check_train_data
    data = tmp_path/'data'
    for i, name in enumerate(['a.png', 'b.png', 'mine/c.png']): png(data/name, i, size=(32, 32))
    png(data/'old_run'/'curves.png', 7, size=(32, 32)); (data/'old_run'/'train_state.json').write_text('{}')
    png(data/'new_run'/'samples.png', 8, size=(32, 32))                     # this run's folder, before its state exists
    os.mkfifo(data/'pipe.png')
    signal.alarm(60)                                                         # (a FIFO opened for reading would block forever)
    try: files = check_train_data(data, 16, out=data/'new_run')
    finally: signal.alarm(0)
    assert sorted(str(f.relative_to(data)) for f in files) == ['a.png', 'b.png', 'mine/c.png']


def test_threads_sharing_one_module(tmp_path):
    "A server or a notebook's thread pool calls `upscale` on one module from several threads: every call gives the one-thread result, and the module keeps its weights, device and mode."
    import threading, torch
    import srwork.archs  # noqa: F401
    from srwork.models import create_model
    from srwork.inference import upscale
    for name in ('span', 'swinir'):                                          # SPAN's convolutions differ in training mode
        torch.manual_seed(0)
        model = create_model(name, 'small', 2)                              # fresh: in training mode, no stored context
        weights = {k: v.clone() for k, v in model.state_dict().items() if 'eval_conv' not in k}   # (SPAN derives those from the rest)
        x = torch.rand(3, 40, 56)
        results, errors = [], []
        def call():
            try: results.append(upscale(model, x, scale=2))
            except Exception as e: errors.append(e)
        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        assert not errors and len(results) == 4, errors
        assert model.training and all(p.device.type == 'cpu' for p in model.state_dict().values())
        assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
        alone = upscale(model, x, scale=2)
        assert all(torch.equal(r, alone) for r in results), name


def test_a_run_inside_its_data_and_a_resume_on_changed_data(data, tmp_path):
    "-o inside --data: the run's own files are not read back on --resume; an image added since the start is refused by name, not trained on with another split."
    import shutil
    d = tmp_path/'photos'; shutil.copytree(data, d)
    r = srwork('train', '--data', d, *TINY, '--epochs', 1, '-q', '-o', d/'run')
    assert r.returncode == 0, r.stderr[-2000:]
    assert (d/'run'/'curves.png').is_file()
    png(d/'extra'/'new.png', 5, size=(120, 100))
    before = checksums(d/'run')
    r = srwork('train', '--data', d, *TINY, '--epochs', 1, '-q', '-o', d/'run', '--resume')
    assert r.returncode == 1 and checksums(d/'run') == before
    line, = r.stderr.strip().splitlines()
    assert f"{d}: its images changed since this run started (1 new: extra/new.png)" in line and '--overwrite to start over' in line, line
    shutil.rmtree(d/'extra')
    r = srwork('train', '--data', d, *TINY, '--epochs', 1, '-o', d/'run', '--resume')      # its own curves.png is not new data
    assert r.returncode == 0 and 'already done' in r.stdout, r.stderr[-2000:]


@pytest.mark.parametrize('bits,ext,alpha', [(8, 'png', False), (16, 'png', False), (16, 'png', True), (8, 'tif', False), (16, 'tif', False), (16, 'tif', True)])
def test_a_colour_profile_survives_upscaling(model, tmp_path, bits, ext, alpha):
    "PNG and TIFF inputs with an ICC profile, 8 and 16 bits, with and without alpha: the output carries the same profile (read back by Pillow)."
    import zlib, cv2, tifffile
    from PIL import ImageCms
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
    rng = np.random.RandomState(0)
    a = rng.randint(0, 256 if bits == 8 else 65536, (20, 24, 4 if alpha else 3)).astype(np.uint8 if bits == 8 else np.uint16)
    src = tmp_path/'in'/f'photo.{ext}'; src.parent.mkdir()
    if ext == 'tif': tifffile.imwrite(src, a, photometric='rgb', extrasamples=('unassalpha',) if alpha else None, extratags=[(34675, 7, len(icc), icc, True)])
    elif bits == 8: Image.fromarray(a).save(src, icc_profile=icc)
    else:                                                                   # (Pillow can't write 16-bit colour: OpenCV, plus an iCCP chunk)
        png = cv2.imencode('.png', a[..., [2, 1, 0, 3][:a.shape[2]]])[1].tobytes()
        body = b'sRGB\0\0' + zlib.compress(icc)
        src.write_bytes(png[:33] + len(body).to_bytes(4, 'big') + b'iCCP' + body + zlib.crc32(b'iCCP' + body).to_bytes(4, 'big') + png[33:])
    assert Image.open(src).info.get('icc_profile') == icc
    r = srwork('upscale', src, '-m', model, '-o', tmp_path/'out')
    assert r.returncode == 0, r.stderr
    out = tmp_path/'out'/src.name
    assert Image.open(out).info.get('icc_profile') == icc
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.dtype == a.dtype and got.shape == (40, 48, a.shape[2])


def test_a_format_without_colour_profiles_says_so(model, tmp_path):
    from PIL import ImageCms
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
    src = tmp_path/'photo.png'; Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(src, icc_profile=icc)
    r = srwork('upscale', src, '-m', model, '-o', tmp_path/'out', '--ext', 'bmp')
    assert r.returncode == 0 and "BMP cannot hold the image's colour profile (588 bytes): written without it" in r.stderr, r.stderr


def test_alpha_is_kept_or_the_file_refused(model, tmp_path):
    "A 16-bit grey+alpha PNG or TIFF comes back 16-bit grey+alpha (PNG colour type 4, TIFF minisblack+alpha); alpha into BMP (read back as RGB by Pillow and most readers) is one line, exit 1, no file."
    import cv2
    la = np.random.RandomState(0).randint(0, 65536, (10, 12, 2)).astype(np.uint16)
    src = tmp_path/'in'/'la16.png'; src.parent.mkdir()
    from srwork.core import save_image, ImageMeta
    save_image(la, src, like=ImageMeta(mode='LA', bits=16, grey=True))
    head = src.read_bytes()[24:26]
    assert head == bytes([16, 4])                                            # 16 bits, grey+alpha
    r = srwork('upscale', src, '-m', model, '-o', tmp_path/'out')
    assert r.returncode == 0, r.stderr
    out = tmp_path/'out'/'la16.png'
    assert out.read_bytes()[24:26] == bytes([16, 4])
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)                      # BGRA, grey in B=G=R
    assert back.dtype == np.uint16 and back.shape == (20, 24, 4) and (back[..., 0] == back[..., 2]).all()
    import tifffile                                                        # 16-bit grey+alpha TIFF (Pillow and OpenCV can't open one) in and out
    tif = tmp_path/'tif'/'la16.tif'; tif.parent.mkdir(); tifffile.imwrite(tif, la, photometric='minisblack', extrasamples=('unassalpha',))
    outs = []
    for source, folder in ((tif, 'tif_out'), (src, 'png_as_tif')):   # (the PNG's output asked for as .tif)
        r = srwork('upscale', source, '-m', model, '-o', tmp_path/folder, '--ext', 'tif')
        assert r.returncode == 0, r.stderr
        outs.append(tifffile.imread(tmp_path/folder/'la16.tif'))
        assert outs[-1].dtype == np.uint16 and outs[-1].shape == (20, 24, 2), (folder, outs[-1].shape)
    assert np.abs(outs[0].astype(int) - outs[1].astype(int)).max() <= 1   # the same image either way
    rgba = tmp_path/'rgba.png'; Image.fromarray(np.zeros((10, 12, 4), np.uint8), 'RGBA').save(rgba)
    r = srwork('upscale', rgba, '-m', model, '-o', tmp_path/'bmp', '--ext', 'bmp')
    assert r.returncode == 1 and 'BMP cannot store an alpha channel' in r.stderr and not (tmp_path/'bmp'/'rgba.bmp').exists(), r.stderr


def test_a_solid_colour_image_gives_a_solid_colour(tmp_path):
    "A flat output of a flat input is right (a model that is its bicubic skip at first, say): a solid red image and a 1x1 pixel come back upscaled, not refused."
    import torch, torch.nn as nn, torch.nn.functional as F
    from srwork.inference import upscale
    class Nearest(nn.Module):                                                  # (an identity 1x1 convolution, then nearest x2)
        def __init__(self):
            super().__init__(); self.conv = nn.Conv2d(3, 3, 1)
            with torch.no_grad(): self.conv.weight.copy_(torch.eye(3)[..., None, None]); self.conv.bias.zero_()
        def forward(self, x): return F.interpolate(self.conv(x), scale_factor=2, mode='nearest')
    for size in ((64, 48), (1, 1)):
        red = Image.new('RGB', size, (255, 0, 0))
        out = upscale(Nearest(), red, scale=2)
        assert out.size == (size[0] * 2, size[1] * 2) and set(out.getdata()) == {(255, 0, 0)}
    with pytest.raises(Exception, match="the model's output is flat"):                 # a flat output of an image that is not
        upscale(nn.Sequential(Nearest(), nn.Hardtanh(0.5, 0.5 + 1e-9)), torch.rand(3, 8, 8), scale=2)


def test_sigterm_during_training_saves_like_ctrl_c(data, tmp_path):
    "What a scheduler or `docker stop` sends: the run saves its checkpoint, says how to resume, exits 130, no traceback."
    import signal, time, torch
    out = tmp_path/'run'
    p = subprocess.Popen(SRWORK + [str(a) for a in ['train', '--data', data, *TINY, '--epochs', 200, '-o', out]],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not (out/'checkpoint_train.pth').exists():
        assert p.poll() is None and time.time() - t0 < 300, p.communicate()[1][-2000:]
        time.sleep(0.05)
    saved = (out/'checkpoint_train.pth').stat().st_mtime_ns
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and 'Traceback' not in err, err[-2000:]
    assert err.strip().splitlines()[-1].startswith('srwork: interrupted') and '--resume' in err.strip().splitlines()[-1], err[-2000:]
    assert (out/'checkpoint_train.pth').stat().st_mtime_ns > saved                         # saved at the signal, not only at an epoch's end
    assert torch.load(out/'checkpoint_train.pth', weights_only=False)['epoch'] >= 0


def test_bench_names_images_too_small_for_a_scale(tmp_path):
    "A 2x2 image among others at x4: measured without it, and named; alone: one line, exit 1 (it was a ZeroDivisionError traceback)."
    png(tmp_path/'mixed'/'tiny.png', 0, size=(2, 2)); png(tmp_path/'mixed'/'ok.png', 1, size=(40, 40))
    r = srwork('bench', '--data', tmp_path/'mixed', '--scale', 4)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"no result for x4: {tmp_path/'mixed'/'tiny.png'}: 0x0 after cropping to a multiple of 4, too small to measure at x4 (needs 19x19)" in r.stdout
    png(tmp_path/'alone'/'tiny.png', 0, size=(2, 2))
    r = srwork('bench', '--data', tmp_path/'alone', '--scale', 4)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and 'no image large enough to measure at x4' in r.stderr, r.stderr


def test_paired_folders_pair_by_sub_folder_not_by_name_alone(tmp_path):
    "HR x/a.png and y/a.png with LR X2/x/ax2.png and X2/y/ax2.png: each pairs with its own; a tie is one line naming both."
    from srwork.core import SRWorkError
    from srwork.data import lr_matcher
    for p in ['hr/x/a.png', 'hr/y/a.png', 'lr/X2/x/ax2.png', 'lr/X2/y/ax2.png', 'lr2/p/c.png', 'lr2/q/c.png']: png(tmp_path/p, 0, size=(4, 4))
    match = lr_matcher(tmp_path/'lr', 2)
    assert match(tmp_path/'hr'/'x'/'a.png') == tmp_path/'lr'/'X2'/'x'/'ax2.png'
    assert match(tmp_path/'hr'/'y'/'a.png') == tmp_path/'lr'/'X2'/'y'/'ax2.png'
    with pytest.raises(SRWorkError, match=r"c.png: 2 LR images under .*lr2 match it equally"): lr_matcher(tmp_path/'lr2', 2)(tmp_path/'hr'/'c.png')


def test_api_meta_and_half_precision_inputs():
    "A tensor or model on the meta device: one line saying what to do; a model.half() on a CPU: upscaled in float32 and given back in half, unchanged."
    import torch
    from srwork.core import SRWorkError
    from srwork.edsr import edsr
    from srwork.inference import upscale
    with pytest.raises(SRWorkError, match='the image tensor is on the meta device'): upscale(edsr('small', 2), torch.rand(3, 8, 8, device='meta'), scale=2)
    with pytest.raises(SRWorkError, match="the model's weights are on the meta device .* load them first"): upscale(edsr('small', 2).to('meta'), torch.rand(3, 8, 8), scale=2)
    half = edsr('small', 2).half()
    before = {k: v.clone() for k, v in half.state_dict().items()}
    x = torch.rand(3, 8, 8)
    out = upscale(half, x, scale=2)
    assert all(v.dtype == before[k].dtype and torch.equal(v, before[k]) for k, v in half.state_dict().items())
    import copy
    assert torch.equal(out, upscale(copy.deepcopy(half).float(), x, scale=2))       # (the same numbers as a float32 copy gives)
    mixed = edsr('small', 2); mixed.conv_first.half(); mixed.register_buffer('stat', torch.ones(2, dtype=torch.float64))
    before = {k: v.clone() for k, v in mixed.state_dict().items()}
    upscale(mixed, x, scale=2)                                                     # each tensor back in its own dtype
    assert all(v.dtype == before[k].dtype and torch.equal(v, before[k]) for k, v in mixed.state_dict().items())
