"LPIPS and DISTS equal to their reference packages on the same weights; the metric registry's one-line errors."
import os, sys, inspect
import pytest, torch, torchvision
from fastcore.test import test_close as close, ExceptionExpected

from srwork.core import SRWorkError
from srwork.perceptual import LPIPS, DISTS, lpips, dists, check_metrics, metric_info, perceptual_metric, perceptual_net, _NETS


def _pair(seed=0, size=(2, 3, 64, 80)):
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(size, generator=g)
    sr = (hr + 0.1 * torch.randn(size, generator=g)).clamp(0, 1)
    return (sr * 255).round() / 255, (hr * 255).round() / 255        # 8-bit values: what srwork's functions measure


@pytest.mark.parametrize('net', ['alex', 'vgg'])
def test_lpips_equals_the_lpips_package(net):
    import lpips as ref_pkg
    torch.manual_seed(0)
    ref = ref_pkg.LPIPS(net=net, pnet_rand=True, verbose=False)          # random trunk, the package's shipped linear heads
    ours = LPIPS(net, pretrained=False)
    trunk = [m for s in (ref.net.slice1, ref.net.slice2, ref.net.slice3, ref.net.slice4, ref.net.slice5) for m in s.children()]
    ours.features.load_state_dict(torch.nn.Sequential(*trunk).state_dict())
    heads = os.path.join(os.path.dirname(inspect.getfile(ref_pkg)), 'weights', 'v0.1', f'{net}.pth')
    ours.load_heads(torch.load(heads, map_location='cpu', weights_only=True))
    sr, hr = _pair()
    want = ref(sr, hr, normalize=True).flatten()
    got = ours(sr, hr)
    assert got.shape == (2,)
    close(got, want, eps=1e-4)
    assert (want > 0).all()


def test_dists_equals_the_dists_package(monkeypatch):
    import DISTS_pytorch.DISTS_pt as ref_mod
    torch.manual_seed(0)
    vgg = torchvision.models.vgg16(weights=None)                         # the package downloads ImageNet weights: a random trunk instead
    monkeypatch.setattr(ref_mod.models, 'vgg16', lambda pretrained=True, **kw: vgg)
    ref = ref_mod.DISTS(load_weights=False)
    weights = torch.load(os.path.join(sys.prefix, 'weights.pt'), map_location='cpu', weights_only=True)   # where the package installs its alpha/beta
    ref.alpha.data, ref.beta.data = weights['alpha'], weights['beta']
    ours = DISTS(pretrained=False)
    res = ours.stages.load_state_dict(_renumber(ref), strict=False)
    assert all(k.endswith('.window') for k in res.missing_keys) and all(k.endswith('.filter') for k in res.unexpected_keys), res   # (the L2 pools' fixed windows)
    ours.load_heads(weights)
    sr, hr = _pair(1)
    want, got = ref(sr, hr), ours(sr, hr)
    close(got, want, eps=1e-4)
    assert not torch.allclose(want, torch.zeros_like(want))


def _renumber(ref) -> dict:
    "The reference's stage parameters under our names (stages.K.J: its stageK+1, the L2 pool first from the second on)."
    out = {}
    for k in range(5):
        stage = getattr(ref, f'stage{k + 1}')
        for j, m in enumerate(stage.children()):
            for name, t in m.state_dict().items(): out[f'{k}.{j}.{name}'] = t
    return out


def test_functions_take_images_and_batches_and_build_once():
    sr, hr = _pair(2, (3, 3, 48, 48))
    batch = lpips(sr, hr, untrained=True)
    assert batch.shape == (3,)
    close(float(batch[1]), lpips(sr[1], hr[1], untrained=True), eps=1e-6)
    close(lpips(hr[0], hr[0], untrained=True), 0, eps=1e-6)
    assert dists(sr[0], hr[0], untrained=True) > dists(hr[0], hr[0], untrained=True)
    assert perceptual_net('lpips', 'cpu', True) is perceptual_net('lpips', 'cpu', True)
    grey = lpips(sr[:, :1], hr[:, :1], untrained=True)                 # grey images are compared as RGB
    assert grey.shape == (3,) and (grey > 0).all()


def test_offline_without_weights_is_one_line_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))                    # an empty cache
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', _no_network)
    _NETS.clear()
    for name, fname in (('lpips', 'alexnet-owt-7be5be79.pth'), ('dists', 'vgg16-397923af.pth')):
        with pytest.raises(SRWorkError) as e: check_metrics(['psnr', name])
        msg = str(e.value)
        assert '\n' not in msg and fname in msg and str(tmp_path) in msg and 'untrained' in msg, msg


def _no_network(*a, **k): raise OSError('no network')


def test_unknown_metric_and_missing_pyiqa_are_one_line(monkeypatch):
    with ExceptionExpected(SRWorkError, regex="unknown metric 'lpipz': choose from psnr, ssim, delta_e, lpips, lpips-vgg, dists, niqe"):
        check_metrics(['lpipz'])
    monkeypatch.setitem(sys.modules, 'pyiqa', None)                     # not installed
    monkeypatch.setitem(sys.modules, 'pyiqa.default_model_configs', None)
    with ExceptionExpected(SRWorkError, regex=r"pyiqa:musiq.*not installed: pip install 'srwork\[iqa\]'"): check_metrics(['pyiqa:musiq'])
    with ExceptionExpected(SRWorkError, regex='compares with a ground truth'): check_metrics(['lpips'], untrained=True, reference=False)


def test_directions_and_validation_metric_pickles():
    import pickle
    assert metric_info('psnr').better(30., 29.) and metric_info('lpips').better(.1, .2) and metric_info('lpips').better(.3, None)
    m = pickle.loads(pickle.dumps(perceptual_metric('lpips', 4, untrained=True)))
    assert m.name == 'lpips'


def test_a_pyiqa_metric_builds_its_network_once(monkeypatch):
    "`srwork bench --metrics pyiqa:X` asks for the metric per dataset, scale and model: pyiqa's network is built once."
    import types
    from srwork.perceptual import metric_info, pyiqa_metric, check_metrics
    built = []
    configs = types.ModuleType('pyiqa.default_model_configs')
    configs.DEFAULT_CONFIGS = {'fake_fr': {'metric_mode': 'FR', 'lower_better': True}}
    fake = types.ModuleType('pyiqa')
    def create_metric(name, device, as_loss):
        built.append((name, str(device)))
        return lambda a, b: ((a - b) ** 2).mean((1, 2, 3))
    fake.create_metric = create_metric
    monkeypatch.setitem(sys.modules, 'pyiqa', fake)
    monkeypatch.setitem(sys.modules, 'pyiqa.default_model_configs', configs)
    pyiqa_metric.cache_clear()
    try:
        for _ in range(3): check_metrics(['pyiqa:fake_fr'])
        info = metric_info('pyiqa:fake_fr')
        assert info is metric_info('pyiqa:fake_fr') and not info.higher_better and info.full_reference
        x = torch.rand(3, 16, 16)
        v = [info.func(x, x * 0.5, 0, False, False) for _ in range(3)]
        assert built == [('fake_fr', 'cpu')] and all(torch.equal(v[0], w) for w in v) and v[0].item() > 0, built
    finally: pyiqa_metric.cache_clear()               # (no fake pyiqa left for later tests)
