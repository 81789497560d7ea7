"The `srwork` program as a user runs it: a subprocess, its exit code, stdout and stderr (the program's `main` in this process where only its answer is tested)."
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import srwork
from cli_runner import srwork_in_process          # (the program's main here, where only its answer is tested)


def srwork_cli(*args, env_extra=None, cwd=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, '-m', 'srwork.cli', *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_version():
    r = srwork_cli('--version')
    assert r.returncode == 0 and r.stdout.strip() == f'srwork {srwork.__version__}'


def test_help_lists_demo():
    r = srwork_cli('--help')
    assert r.returncode == 0 and 'demo' in r.stdout


def test_no_command_is_usage_error():
    r = srwork_cli()
    assert r.returncode == 2 and 'usage: srwork' in r.stderr


def test_unknown_command():
    r = srwork_cli('frobnicate')
    assert r.returncode == 2 and 'invalid choice' in r.stderr


def test_demo_on_sample_set(tmp_path):
    r = srwork_cli('demo', '-o', tmp_path / 'out', '--scale', '3', '--minutes', '0.1',
                   env_extra={'SRWORK_DATA': str(tmp_path / 'data')})
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == ''   # no warnings leak to the user
    panel = Image.open(tmp_path / 'out' / 'demo_comparison.png')
    assert panel.mode == 'RGB' and panel.width > 3 * panel.height
    lr, up = Image.open(tmp_path / 'out' / 'demo_lr.png'), Image.open(tmp_path / 'out' / 'demo_upscaled.png')
    assert up.width == 3 * lr.width and up.height == 3 * lr.height
    assert (tmp_path / 'out' / 'model.safetensors').stat().st_size > 10_000
    assert 'EDSR: PSNR' in r.stdout and 'bicubic: PSNR' in r.stdout and 'held out of training' in r.stdout
    assert len(list((tmp_path / 'data' / 'samples').iterdir())) == 9
    # the model it wrote upscales files with `srwork upscale`
    r2 = srwork_cli('upscale', tmp_path / 'out' / 'demo_lr.png', '-m', tmp_path / 'out' / 'model.safetensors',
                    '-o', tmp_path / 'up')
    assert r2.returncode == 0, r2.stderr
    assert Image.open(tmp_path / 'up' / 'demo_lr.png').size == up.size


def test_demo_errors_are_one_line(tmp_path):
    r = srwork_in_process('demo', '--data', tmp_path / 'nowhere', '-o', tmp_path / 'out')
    assert r.returncode == 1
    assert r.stderr.strip() == f"srwork: error: {tmp_path / 'nowhere'}: no such folder"
    assert not (tmp_path / 'out').exists()
    (tmp_path / 'empty').mkdir()
    r = srwork_in_process('demo', '--data', tmp_path / 'empty', '-o', tmp_path / 'out')
    assert r.returncode == 1 and 'no image files found' in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_demo_reports_broken_image_by_name(tmp_path):
    d = tmp_path / 'imgs'; d.mkdir()
    (d / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 40)
    r = srwork_in_process('demo', '--data', d, '-o', tmp_path / 'out', '--image', 'broken')
    assert r.returncode == 1 and str(d / 'broken.png') in r.stderr and 'Traceback' not in r.stderr


def test_console_script_installed():
    exe = Path(sys.executable).parent / 'srwork'
    assert exe.exists(), 'the srwork console script is not installed next to this Python'
    r = subprocess.run([exe, '--version'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and 'srwork' in r.stdout


def test_ctrl_c_while_the_program_starts_is_one_line(tmp_path):
    "Ctrl-C in the seconds spent importing torch and fastai, parsing, or just after: exit 130 and one line, never a traceback."
    import signal, time
    from srwork.core import sample_images
    photos = sample_images(tmp_path/'photos')
    exe = Path(sys.executable).parent / 'srwork'
    for i, delay in enumerate((0.3, 1.0, 2.0, 4.0)):      # (the import takes seconds; whichever phase the signal hits)
        # (`--bs 2`: a run that can start, so that a fast machine is still running it when the signal comes)
        p = subprocess.Popen([exe, 'train', '--arch', 'edsr', '--size', 'small', '--bs', '2', '--data', photos, '-o', tmp_path/f'out{i}'],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 130 and 'Traceback' not in err, (delay, err[-2000:])
        assert err.strip().splitlines()[-1].startswith('srwork: interrupted'), (delay, err[-2000:])
