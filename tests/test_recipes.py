"Training at scale: prepared arrays, epochs of a chosen size, iteration budgets and schedules, the papers' recipes, the cpu recipe, speed options."
import csv, json

import numpy as np
import pytest
import torch
from PIL import Image

from srwork.core import SRWorkError, load_image, sample_images
from srwork.data import prepare_images, read_pixels, sr_dataloaders, _as_float
from srwork.training import train
from srwork.schedules import lr_schedule
from srwork.config import recipe_for
from srwork.callbacks import GeneratorEMA, AutocastPrecision, native_bf16


def _history(path):
    "The rows of a run's history CSV, each checked to hold a number under every column but `time`."
    rows = list(csv.DictReader(path.open()))
    for row in rows:
        assert None not in row and all(v is not None for v in row.values()), row     # no row longer or shorter than the header
        [float(v) for k, v in row.items() if k != 'time']
    return rows


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    return sample_images(tmp_path_factory.mktemp('photos'))


def test_prepared_arrays_hold_the_images_pixels(tmp_path):
    src = tmp_path/'src'; (src/'sub').mkdir(parents=True)
    rng = np.random.RandomState(0)
    rgb = rng.randint(0, 256, (40, 50, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(src/'rgb.png')
    Image.fromarray(rgb[..., 0]).save(src/'sub'/'grey.png')
    Image.fromarray(rgb).convert('P', palette=Image.Palette.ADAPTIVE).save(src/'palette.png')
    g16 = rng.randint(0, 65536, (30, 20)).astype(np.uint16)
    Image.fromarray(g16).save(src/'grey16.png')
    res = prepare_images(src, tmp_path/'npy', quiet=True)
    assert sorted(p.relative_to(tmp_path/'npy').as_posix() for p in res['written']) == ['grey16.npy', 'palette.npy', 'rgb.npy', 'sub/grey.npy']
    for f in src.rglob('*.png'):
        a = read_pixels(tmp_path/'npy'/f.relative_to(src).with_suffix('.npy'))
        assert isinstance(a, np.memmap)                               # mapped, not read
        np.testing.assert_array_equal(a, read_pixels(f))
        np.testing.assert_array_equal(_as_float(a), load_image(f).permute(1, 2, 0).numpy())   # the floats load_image gives
    assert read_pixels(tmp_path/'npy'/'grey16.npy').dtype == np.uint16


def test_prepare_names_bad_files_continues_and_refuses_collisions(tmp_path, srwork_refusals):
    src = tmp_path/'src'; src.mkdir()
    for i in range(3): Image.new('RGB', (20, 20), (i, 0, 0)).save(src/f'{i}.png')
    (src/'bad.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'x' * 40)
    [(rc, err, written)] = srwork_refusals([(['prepare', src, '-o', tmp_path/'out', '-q'], tmp_path/'out')])
    assert rc == 1 and 'bad.png' in err and written
    assert sorted(p.name for p in (tmp_path/'out').iterdir()) == ['0.npy', '1.npy', '2.npy']
    before = {p: p.stat().st_mtime_ns for p in (tmp_path/'out').iterdir()}
    (src/'bad.png').unlink()
    assert len(prepare_images(src, tmp_path/'out', quiet=True)['skipped']) == 3                  # nothing written twice
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path/'out').iterdir()}
    Image.new('RGB', (20, 20)).save(src/'0.bmp')
    with pytest.raises(SRWorkError, match=r"0\.(png|bmp) and .*0\.(png|bmp) would both become"):
        prepare_images(src, tmp_path/'out2', quiet=True)
    assert not (tmp_path/'out2').exists()


def test_prepare_with_relative_folders_as_a_user_types_them(tmp_path, monkeypatch):
    (tmp_path/'photos'/'a').mkdir(parents=True)
    Image.new('RGB', (30, 20), (9, 8, 7)).save(tmp_path/'photos'/'a'/'x.png')
    monkeypatch.chdir(tmp_path)
    res = prepare_images('photos', 'arrays', quiet=True)
    assert [p.relative_to(tmp_path).as_posix() for p in res['written']] == ['arrays/a/x.npy']
    assert read_pixels('arrays/a/x.npy')[0, 0].tolist() == [9, 8, 7]


def test_a_bad_array_is_named_when_training_starts(tmp_path, photos, srwork_refusals):
    prepare_images(photos, tmp_path/'npy', quiet=True)
    np.save(tmp_path/'npy'/'zz_wrong.npy', np.zeros((8, 8), np.float32))
    [(rc, err, written)] = srwork_refusals([(['train', '--arch', 'edsr', '--data', tmp_path/'npy', '-o', tmp_path/'run'], tmp_path/'run')])
    assert rc == 1 and 'zz_wrong.npy' in err and '(H, W, 3) uint8' in err and not written


def test_epochs_of_a_chosen_size_and_uint8_cache(photos):
    dls = sr_dataloaders(photos, scale=2, patch_size=32, bs=4, valid_pct=0.25, patches_per_epoch=30, cache=100, num_workers=0)
    assert (len(dls.train_ds), len(dls.train)) == (30, 7)
    xb, yb = dls.one_batch()
    pair = dls.train.after_item.fs[0]
    assert pair._cache and all(a.dtype == np.uint8 for a in pair._cache.values())      # the cache holds uint8, not float32


def test_iteration_budget_runs_exactly_and_checkpoints_per_epoch(photos, tmp_path):
    run = train('edsr', photos, tmp_path/'it', scale=2, size='small', patch=32, bs=4, iters=7, patches_per_epoch=12,
                valid_pct=0.25, quiet=True)
    learn = run['learn']
    assert len(learn.recorder.losses) == 7                                 # 3 + 3 + 1 iterations
    rows = _history(tmp_path/'it'/'history_train.csv')
    assert len(rows) == 3
    # the shortened last epoch keeps its training loss (fastai's Recorder drops it and the row shifts left)
    assert [float(rows[-1][k]) for k in ('train_loss', 'valid_loss')] == pytest.approx(learn.recorder.values[-1][:2])
    state = json.loads((tmp_path/'it'/'train_state.json').read_text())
    assert state['config']['iters'] == {'train': 7} and state['finished']
    ck = torch.load(tmp_path/'it'/'checkpoint_train.pth', weights_only=False)
    assert ck['epoch'] == 2


def test_paper_recipe_sets_the_papers_values_and_flags_override_them(photos, tmp_path, capsys):
    run = train('edsr', photos, tmp_path/'x2', scale=2, recipe='paper', iters=2, bs=2, valid_pct=0.25)
    cfg = json.loads((tmp_path/'x2'/'train_state.json').read_text())['config']
    assert (cfg['size'], cfg['patch'], cfg['bs'], cfg['lr'], cfg['iters']) == ('baseline', 96, 2, 1e-4, {'train': 2})
    h = run['learn'].opt.hypers[0]
    assert (h['mom'], h['sqr_mom']) == (0.9, 0.999)                       # EDSR's Adam, not srwork's default (0.9, 0.99)
    assert run['learn'].model.config['num_block'] == 16
    # x4 from the x2 model: everything but the second upsampling conv comes from it (EDSR's fine-tuning)
    capsys.readouterr()
    run4 = train('edsr', photos, tmp_path/'x4', scale=4, recipe='paper', iters=1, bs=2, valid_pct=0.25, init=str(run['safetensors']))
    out = capsys.readouterr().out
    n = len(run4['learn'].model.state_dict())
    assert f"{n - 2} of {n} tensors" in out, out
    assert json.loads((tmp_path/'x4'/'train_state.json').read_text())['config']['patch'] == 192


def test_cpu_recipe_is_the_budget_benchmarks_recipe(photos, tmp_path):
    run = train('edsr', photos, tmp_path/'cpu', scale=2, recipe='cpu', minutes=0.05, quiet=True)
    learn, cfg = run['learn'], json.loads((tmp_path/'cpu'/'train_state.json').read_text())['config']
    assert learn.model.config['arch'] == 'ychannel' and type(learn.loss_func).__name__ == 'YL1Loss'
    assert (cfg['patch'], cfg['bs'], cfg['lr'], cfg['channels_last'], cfg['cache'], cfg['workers']) == (96, 16, 2e-3, True, True, 0)
    assert cfg['ema'] == 0.999 and cfg['precision'] == ('bf16' if native_bf16('cpu') else 'fp32')
    assert any(isinstance(cb, GeneratorEMA) for cb in learn.cbs)
    assert run['dls'].train.fake_l.num_workers == 0 and len(run['dls'].train_ds) == 3200
    assert next(learn.model.parameters()).is_contiguous()               # back to the default layout for exports
    # the clock stopped the first epoch of 200 iterations: it is validated and logged all the same
    rows = _history(tmp_path/'cpu'/'history_train.csv')
    assert len(rows) == 1 and float(rows[0]['train_loss']) > 0 and float(rows[0]['psnr']) > 20


def test_cpu_recipe_trains_in_fp32_where_bf16_is_emulated_and_says_so(photos, tmp_path, monkeypatch, capsys):
    import srwork.config as cf
    monkeypatch.setattr(cf, 'native_bf16', lambda device='cpu': False)      # a CPU without AVX512-BF16/AMX
    train('edsr', photos, tmp_path/'a', scale=2, recipe='cpu', iters=1, patches_per_epoch=16, valid_pct=0.25)
    assert "no native bf16" in capsys.readouterr().out
    assert json.loads((tmp_path/'a'/'train_state.json').read_text())['config']['precision'] == 'fp32'
    monkeypatch.setattr(cf, 'native_bf16', lambda device='cpu': True)
    run = train('edsr', photos, tmp_path/'b', scale=2, recipe='cpu', iters=1, patches_per_epoch=16, valid_pct=0.25, quiet=True)
    assert json.loads((tmp_path/'b'/'train_state.json').read_text())['config']['precision'] == 'bf16'
    run = train('edsr', photos, tmp_path/'c', scale=2, recipe='cpu', iters=1, patches_per_epoch=16, valid_pct=0.25,
                precision='fp32', quiet=True)                                 # a flag overrides the recipe
    assert not any(isinstance(cb, AutocastPrecision) for cb in run['learn'].cbs)


def test_an_ema_of_the_weights_is_validated_checkpointed_and_exported(photos, tmp_path):
    from srwork.inference import load_model
    run = train('edsr', photos, tmp_path/'e', scale=2, size='small', patch=32, bs=4, iters=7, patches_per_epoch=12,
                valid_pct=0.25, ema=0.9, quiet=True)
    assert json.loads((tmp_path/'e'/'train_state.json').read_text())['config']['ema'] == 0.9
    state = torch.load(tmp_path/'e'/'checkpoint_train.pth', weights_only=False)['extra']['GeneratorEMA']
    assert state['updates'] == 7                                             # one update per iteration (for resuming)
    exported = load_model(tmp_path/'e'/'model.safetensors').model.state_dict()
    for k, v in state['ema'].items(): assert torch.equal(exported[k].float(), v), k     # what is exported is the average
    assert [len(v) for v in run['learn'].recorder.values] == [4, 4, 4]     # losses, PSNR, SSIM of the averaged weights


def test_recipe_refusals(photos, tmp_path, srwork_refusals):
    cases = {
        'trains x4, not x2': ['--arch', 'esrgan', '--recipe', 'paper', '--scale', 2],
        "no 'cpu' recipe for esrgan": ['--arch', 'esrgan', '--recipe', 'cpu', '--scale', 4],
        'give one of --epochs, --minutes and --iters': ['--arch', 'edsr', '--iters', 5, '--epochs', 2, '--scale', 2],
        'missing.pth: no such model file': ['--arch', 'edsr', '--init', tmp_path/'missing.pth', '--scale', 2],
        '--minutes and --iters train one budgeted cycle': ['--arch', 'unet', '--iters', 5, '--schedule', 'course-v3', '--scale', 2],
        '--ema must be a number greater than 0 and less than 1, not 1.5': ['--arch', 'edsr', '--ema', 1.5, '--scale', 2],
    }
    runs = [(['train', *args, '--data', photos, '-o', tmp_path/f'o{i}'], tmp_path/f'o{i}') for i, args in enumerate(cases.values())]
    for msg, (rc, err, written) in zip(cases, srwork_refusals(runs)):
        assert rc == 1 and msg in err and len(err.strip().splitlines()) == 1 and not written, (msg, err)


@pytest.mark.parametrize('precision', ['bf16', 'fp16'])
def test_gan_phase_under_mixed_precision(photos, tmp_path, precision):
    run = train('esrgan', photos, tmp_path/precision, scale=4, size='small', patch=64, bs=2, iters=2, pretrained=False,
                precision=precision, valid_pct=0.25, quiet=True)
    tr = next(cb for cb in run['learn'].cbs if type(cb).__name__ == 'AdversarialTrainer')
    assert len(tr.history) == 2 and all(np.isfinite(h['d_loss']) for h in tr.history)
    assert (getattr(tr, 'd_scaler', None) is not None) == (precision == 'fp16')     # D's own loss scale for fp16
    assert all(torch.isfinite(p).all() for p in run['learn'].model.parameters())


def test_lr_schedules_match_the_papers_milestones():
    s = lr_schedule('multistep', milestones=[m / 400_000 for m in (50_000, 100_000, 200_000, 300_000)])
    assert [s(i / 400_000) for i in (0, 49_999, 50_000, 299_999, 300_000)] == [1, 1, .5, .125, .0625]
    p = recipe_for('paper', 'esrgan').phases['psnr'].lr_fn()
    assert p(0) == 1 and p(0.25) == 1 and abs(p(0.125) - (0.5 + 0.5 * 1e-7 / 2e-4)) < 1e-9   # restarts every 250 k of 1 M


def test_training_leaves_matplotlib_as_it_found_it(photos, tmp_path):
    "A notebook's backend (here svg, anything but Agg) is still the backend after `train` drew its curves: they are drawn without pyplot."
    import matplotlib
    before = matplotlib.get_backend()
    matplotlib.use('svg')
    try:
        train('edsr', photos, tmp_path/'m', scale=2, size='small', patch=32, bs=4, iters=2, patches_per_epoch=8, valid_pct=0.25, quiet=True)
        assert (tmp_path/'m'/'curves.png').read_bytes()[:4] == b'\x89PNG'
        assert matplotlib.get_backend() == 'svg'
    finally: matplotlib.use(before)
