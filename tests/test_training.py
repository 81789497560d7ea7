"`srwork train` end to end in subprocesses: every arch, interrupt and resume, bad input, and the exports through `srwork upscale`."
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from srwork.core import sample_images

SRWORK = [sys.executable, '-m', 'srwork.cli']


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return sample_images(tmp_path_factory.mktemp('hr'))


@pytest.fixture(scope='module')
def lr_image(tmp_path_factory):
    p = tmp_path_factory.mktemp('lr')/'small.png'
    Image.open(Path(sample_images(tmp_path_factory.mktemp('s2')))/'chelsea.png').crop((100, 60, 148, 100)).save(p)
    return p


def srwork(*args, cwd=None):
    "`srwork ARGS` run by its `main` in this process (the Ctrl-C tests below start real processes)."
    from cli_runner import srwork_in_process
    return srwork_in_process(*args, cwd=cwd)


ARCH_ARGS = {
    'edsr': ['--scale', 2, '--patch', 48, '--bs', 4],
    'srresnet': ['--scale', 4, '--patch', 48, '--bs', 4],
    'unet': ['--scale', 2, '--patch', 32, '--bs', 2, '--no-pretrained'],
    'esrgan': ['--scale', 4, '--patch', 64, '--bs', 2, '--no-pretrained'],
    'srgan': ['--scale', 4, '--patch', 64, '--bs', 2, '--no-pretrained'],
}


@pytest.mark.parametrize('arch', list(ARCH_ARGS))
def test_train_each_arch_and_upscale_with_its_export(arch, data, lr_image, tmp_path):
    out = tmp_path/arch
    r = srwork('train', '--arch', arch, '--data', data, *ARCH_ARGS[arch], '--epochs', 1, '--size', 'small', '-o', out)
    assert r.returncode == 0, r.stderr[-3000:]
    phases = ['psnr', 'gan'] if arch in ('esrgan', 'srgan') else ['train']
    for ph in phases:
        assert (out/f'checkpoint_{ph}.pth').is_file() and (out/f'history_{ph}.csv').is_file()
    for f in ('model.pkl', 'model.safetensors', 'results.csv', 'curves.png', 'train_state.json'): assert (out/f).is_file(), f
    if arch in ('esrgan', 'srgan'): assert (out/'gan_curves.png').is_file()
    state = json.loads((out/'train_state.json').read_text())
    assert state['finished'] and state['done'] == phases
    table = pd.read_csv(out/'results.csv', index_col=0)
    assert {f'{arch}_psnr', 'bicubic_psnr'} <= set(table.columns) and table[f'{arch}_psnr'].notna().all()
    assert 'validation images' in r.stdout
    model = out/('model.safetensors' if arch == 'srresnet' else 'model.pkl')
    u = srwork('upscale', lr_image, '-m', model, '-o', tmp_path/'up', '--tile', 0, *(['--trust-pickle'] if model.suffix == '.pkl' else []))
    assert u.returncode == 0, u.stderr[-2000:]
    scale = ARCH_ARGS[arch][1]
    assert Image.open(tmp_path/'up'/'small.png').size == (48 * scale, 40 * scale)


def test_interrupt_then_resume(data, tmp_path):
    out = tmp_path/'run'
    args = ['train', '--arch', 'edsr', '--data', data, '--scale', 2, '--patch', 48, '--bs', 4, '--epochs', 25, '--size', 'small', '-o', out]
    # as from a terminal: a test runner started in the background (nohup, `&`) passes SIGINT on as ignored
    p = subprocess.Popen(SRWORK + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.time()
    while not (out/'checkpoint_train.pth').exists():
        assert p.poll() is None, p.communicate()[1][-2000:]
        assert time.time() - t0 < 300
        time.sleep(0.05)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert 'interrupted' in err and '--resume' in err
    assert not (out/'model.pkl').exists()                      # no export from an unfinished run
    import torch
    epoch = torch.load(out/'checkpoint_train.pth', weights_only=False)['epoch']
    assert 0 <= epoch < 24
    r = subprocess.run(SRWORK + [str(a) for a in args] + ['--resume'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f'resuming from' in r.stdout
    hist = pd.read_csv(out/'history_train.csv')
    epochs = pd.to_numeric(hist['epoch'], errors='coerce').dropna().astype(int)
    assert list(epochs) == list(range(25))                     # every epoch once: the interrupted one's row is not kept twice
    assert epochs.iloc[-1] == 24 and (out/'model.pkl').is_file()
    assert torch.load(out/'checkpoint_train.pth', weights_only=False)['epoch'] == 24


def test_bad_input_one_line_errors_and_nothing_written(data, tmp_path, srwork_refusals):
    empty = tmp_path/'empty'; empty.mkdir()
    broken = tmp_path/'broken'; broken.mkdir()
    for f in sorted(data.iterdir())[:3]: (broken/f.name).write_bytes(f.read_bytes())
    (broken/'zz_bad.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'garbage' * 10)
    cases = {
        'no such folder': ['--arch', 'edsr', '--data', tmp_path/'missing'],
        'no image files': ['--arch', 'edsr', '--data', empty],
        'zz_bad.png: unreadable image': ['--arch', 'edsr', '--data', broken],
        'larger than every image': ['--arch', 'edsr', '--data', data, '--patch', 4096],
        "unknown arch 'vdsr'": ['--arch', 'vdsr', '--data', data],
        "unknown crappifier preset 'blurry'": ['--arch', 'edsr', '--data', data, '--preset', 'blurry'],
        'nothing to resume': ['--arch', 'edsr', '--data', data, '--resume'],
    }
    runs = [(['train', *args, '--scale', 2, '-o', tmp_path/f'out{i}'], tmp_path/f'out{i}') for i, args in enumerate(cases.values())]
    for msg, (rc, err, written) in zip(cases, srwork_refusals(runs)):
        assert rc == 1, (msg, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('srwork: error:') and msg in lines[0], (msg, err)
        assert not written, msg


def test_train_for_minutes_records_the_budget_spent(data, tmp_path):
    import torch
    out = tmp_path/'budget'
    r = srwork('train', '--arch', 'srresnet', '--data', data, '--scale', 2, '--patch', 48, '--bs', 4, '--minutes', 0.15,
               '--size', 'small', '-q', '-o', out)
    assert r.returncode == 0, r.stderr[-2000:]
    ck = torch.load(out/'checkpoint_train.pth', weights_only=False)
    assert 0.15 * 60 <= ck['extra']['TimeBudget']['elapsed'] < 0.15 * 60 + 30
    assert (out/'model.pkl').is_file() and json.loads((out/'train_state.json').read_text())['finished']


def test_unet_course_v3_schedule_scaled_to_the_patch(data, tmp_path):
    out = tmp_path/'stages'
    r = srwork('train', '--arch', 'unet', '--data', data, '--scale', 2, '--patch', 32, '--bs', 2, '--epochs', 1,
               '--schedule', 'course-v3', '--no-pretrained', '--size', 'small', '-o', out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "stages (HR patch, bs, epochs, lr, frozen): [(32, 2, 1, 0.01, True), (32, 2, 1, slice(1e-05, 0.001, None), False), " \
           "(64, 2, 1, slice(None, 0.001, None), True), (64, 2, 1, slice(1e-06, 0.0001, None), False)]" in r.stdout
    state = json.loads((out/'models'/'train_stages_state.json').read_text())
    assert state['completed'] == 4 and [h['input_size'] for h in state['history']] == [[32, 32], [32, 32], [64, 64], [64, 64]]
    for i in range(4): assert (out/'models'/f'train_stages_stage{i}.pth').is_file()
    hist = pd.read_csv(out/'history_train.csv')
    assert len(hist) == 4 and (out/'model.pkl').is_file()
    bad = srwork('train', '--arch', 'unet', '--data', data, '--schedule', 'progressive', '--minutes', 1, '-o', tmp_path/'x')
    assert bad.returncode == 1 and '--minutes' in bad.stderr and not (tmp_path/'x').exists()


def test_interrupt_after_an_epoch_keeps_that_epoch(data, tmp_path, monkeypatch):
    "Ctrl-C while the finished epoch's curves are drawn: the checkpoint still says that epoch is done."
    import torch
    import srwork.training as tr, srwork.rundir as rd
    calls = []
    def interrupted_plot(out, phases):
        calls.append(1)
        raise KeyboardInterrupt
    monkeypatch.setattr(rd, 'plot_curves', interrupted_plot)
    with pytest.raises(KeyboardInterrupt):
        tr.train('edsr', data, tmp_path/'run', scale=2, patch=48, bs=4, epochs=3, size='small', quiet=True)
    assert calls == [1]
    assert torch.load(tmp_path/'run'/'checkpoint_train.pth', weights_only=False)['epoch'] == 0


def test_interrupt_draws_the_epochs_the_curves_skipped(data, tmp_path, monkeypatch):
    "Curves redrawn at most `share` of the time: Ctrl-C draws the epochs not drawn yet, once."
    from functools import partial
    import srwork.training as tr, srwork.rundir as rd
    drawn = []
    monkeypatch.setattr(rd, 'plot_curves', lambda out, phases: drawn.append(len((Path(out)/'history_train.csv').read_text().splitlines()) - 1))
    monkeypatch.setattr(tr, 'CurvesPlot', partial(rd.CurvesPlot, share=0.))       # only the first epoch, then the end
    write_row = rd.HistoryCSV.after_epoch
    def after_epoch(self):
        write_row(self)
        if self.epoch == 2: raise KeyboardInterrupt                                   # after the third epoch's row
    monkeypatch.setattr(rd.HistoryCSV, 'after_epoch', after_epoch)
    with pytest.raises(KeyboardInterrupt):
        tr.train('edsr', data, tmp_path/'run', scale=2, patch=48, bs=4, epochs=5, size='small', quiet=True)
    assert drawn == [1, 3]
