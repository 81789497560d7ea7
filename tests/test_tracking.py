"`srwork train --metrics/--select/--log/--pictures`: the best epoch exported, validation pictures, TensorBoard event files read back, resume."
import json, sys
from functools import partial
from pathlib import Path

import pytest
import torch

from srwork.core import sample_images


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return sample_images(tmp_path_factory.mktemp('samples'))


def _scalars(folder) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(folder), size_guidance={'scalars': 0, 'images': 0}); acc.Reload()
    tags = acc.Tags()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags['scalars']}, {t: [e.step for e in acc.Images(t)] for t in tags['images']}


KW = dict(scale=2, patch=48, bs=4, size='small', patches_per_epoch=16, quiet=True)


def test_tensorboard_holds_every_epoch_and_resume_continues_it(data, tmp_path, monkeypatch):
    import srwork.training as tr, srwork.rundir as rd
    real, calls = rd.plot_curves, []
    def interrupt_second(out, phases):          # Ctrl-C while epoch 2's curves are drawn (its checkpoint and log rows are written)
        calls.append(1)
        if len(calls) == 2: raise KeyboardInterrupt
        return real(out, phases)
    monkeypatch.setattr(rd, 'plot_curves', interrupt_second)
    monkeypatch.setattr(tr, 'CurvesPlot', partial(rd.CurvesPlot, share=1e9))     # every epoch drawn, however short
    kw = dict(KW, epochs=3, metrics=['lpips'], untrained_metrics=True, log=['tensorboard', 'csv'])
    with pytest.raises(KeyboardInterrupt): tr.train('edsr', data, tmp_path/'run', **kw)
    scalars, images = _scalars(tmp_path/'run'/'tensorboard')
    assert [s for s, _ in scalars['lpips']] == [4, 8] and images['valid_pictures'] == [4, 8]
    monkeypatch.setattr(rd, 'plot_curves', real)
    tr.train('edsr', data, tmp_path/'run', resume=True, **kw)
    scalars, images = _scalars(tmp_path/'run'/'tensorboard')
    for tag in ('psnr', 'ssim', 'lpips', 'valid_loss', 'iters_per_second'):
        assert [s for s, _ in scalars[tag]] == [4, 8, 12], (tag, scalars[tag])      # every epoch once, the resumed one after the others
    assert [s for s, _ in scalars['train_loss']] == list(range(1, 13))               # every iteration once (none of the interrupted rerun twice)
    assert 'lr_0' in scalars and images['valid_pictures'] == [4, 8, 12]
    hist = (tmp_path/'run'/'history_train.csv').read_text().splitlines()
    logged = [v for _, v in scalars['psnr']]                                          # (TensorBoard keeps float32)
    assert logged == pytest.approx([float(r.split(',')[3]) for r in hist[1:]], abs=1e-4)   # the same values as the CSV log
    pics = sorted(p.name for p in (tmp_path/'run'/'valid_pictures').iterdir())
    assert pics == ['train_epoch001.png', 'train_epoch002.png', 'train_epoch003.png']
    from PIL import Image
    assert Image.open(tmp_path/'run'/'curves.png').size[0] == 14 * 90          # a third panel: the validated lpips (10 in wide without)


_CALLS = []
def falling_score(sr, hr, crop_border, y_channel, untrained):
    "A metric (higher is better) that falls each validation: the first epoch is the best, so `select` must not export the last."
    _CALLS.append(1)
    return torch.full((len(sr),), 1. / len(_CALLS), dtype=torch.float64)


def test_select_exports_the_best_validated_weights(data, tmp_path, monkeypatch):
    import pandas as pd
    from srwork.modelfiles import load_model
    from srwork.perceptual import METRICS, MetricInfo
    import srwork.training as tr
    monkeypatch.setitem(METRICS._entries, 'falling', MetricInfo('falling', falling_score, True))
    _CALLS.clear()
    run = tr.train('edsr', data, tmp_path/'run', **dict(KW, epochs=3, select='falling', pictures=0, lr=3e-3))
    hist = pd.read_csv(tmp_path/'run'/'history_train.csv')
    best = torch.load(tmp_path/'run'/'best_train.pth', weights_only=True)
    assert best['metric'] == 'falling' and best['epoch'] == 0 and best['value'] == pytest.approx(hist.falling.max()) == 1.
    last = torch.load(tmp_path/'run'/'checkpoint_train.pth', weights_only=False)['model']
    assert any(not torch.equal(last[k], v) for k, v in best['model'].items())         # (the last epoch's weights differ)
    exported = load_model(tmp_path/'run'/'model.safetensors').model.state_dict()
    assert exported.keys() == best['model'].keys()
    for k, v in best['model'].items(): assert torch.equal(exported[k].float(), v.float()), k
    assert not (tmp_path/'run'/'valid_pictures').exists()


def test_bad_metrics_trackers_and_packages_refuse_before_training(data, tmp_path, srwork_refusals, monkeypatch):
    monkeypatch.setitem(sys.modules, 'pyiqa', None)
    monkeypatch.setitem(sys.modules, 'pyiqa.default_model_configs', None)
    base = ['train', '--arch', 'edsr', '--size', 'small', '--data', data, '--scale', '2', '--patch', '48', '--bs', '4', '--epochs', '1']
    cases = [(['--metrics', 'lpipz'], "unknown metric 'lpipz'"), (['--select', 'ssimm'], "unknown metric 'ssimm'"),
             (['--select', 'pyiqa:musiq'], "pip install 'srwork[iqa]'"),
             (['--metrics', 'niqe'], 'niqe needs validation crops of at least 196 px'), (['--pictures', '-1'], '--pictures'),
             (['--select', 'lpips'], 'alexnet-owt-7be5be79.pth is not in')]
    monkeypatch.setenv('TORCH_HOME', str(tmp_path/'empty_cache'))
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', lambda *a, **k: (_ for _ in ()).throw(OSError('no network')))
    runs = [(base + extra + ['-o', tmp_path/f'out{i}'], tmp_path/f'out{i}') for i, (extra, _) in enumerate(cases)]
    for (extra, want), (rc, err, written) in zip(cases, srwork_refusals(runs)):
        assert rc == 1 and want in err and len(err.strip().splitlines()) == 1 and not written, (extra, err)


def test_missing_tracker_package_is_one_line(monkeypatch):
    from srwork.core import SRWorkError
    from srwork.tracking import check_trackers
    monkeypatch.setitem(sys.modules, 'wandb', None)
    with pytest.raises(SRWorkError, match=r"needs the wandb package: pip install 'srwork\[tracking\]'"): check_trackers(['tensorboard', 'wandb'])
    with pytest.raises(SRWorkError, match="unknown tracker 'tensorbord'"): check_trackers(['tensorbord'])     # (the command line's choices refuse it first)


def test_wandb_offline_run_holds_the_metrics_and_pictures(data, tmp_path, monkeypatch):
    import wandb
    import srwork.training as tr
    monkeypatch.setenv('WANDB_MODE', 'offline'); monkeypatch.setenv('WANDB_SILENT', 'true')
    tr.train('edsr', data, tmp_path/'run', **dict(KW, epochs=2, log=['wandb']))
    run_dir, summary = Path(wandb.run.dir).parent, dict(wandb.run.summary)       # (offline: the last value of each key, as wandb holds it)
    wandb.finish()
    assert run_dir.parent == tmp_path/'run'/'wandb' and (tmp_path/'run'/'wandb_id').read_text() in run_dir.name
    hist = (tmp_path/'run'/'history_train.csv').read_text().splitlines()
    last = dict(zip(hist[0].split(','), hist[-1].split(',')))
    assert summary['psnr'] == pytest.approx(float(last['psnr']), abs=1e-4) and summary['epoch'] == 2 and summary['iters_per_second'] > 0
    assert len(list((run_dir/'files'/'media'/'images').glob('valid_pictures_*.png'))) == 2
