"""Faults and bad input replayed against `srwork upscale` and `srwork train` as a user meets them (subprocesses): nothing the
user has is lost or replaced without being asked, a failure is one line naming the file and exits 1, memory stays bounded."""
import hashlib, os, pickle, resource, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srwork.core import sample_images

SRWORK = [sys.executable, '-m', 'srwork.cli']


def srwork(*args, cwd=None, preexec_fn=None, timeout=600):
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
    from srwork.models import save_model
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


# ---------------------------------------------------------------- bad numbers: refused up front, one line, nothing written
def test_bad_numbers_are_refused_before_any_work(model, data, tmp_path):
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
    procs = [subprocess.Popen(SRWORK + [str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _, _, argv in runs]                                   # side by side: each is a fresh process
    before = checksums(tmp_path/'in')
    for (msg, out, _), p in zip(runs, procs):
        _, err = p.communicate(timeout=600)
        assert p.returncode == 1, (msg, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"srwork: error: {msg}"), (msg, err)
        assert not out.exists(), msg
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
    from srwork.models import save_model
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
