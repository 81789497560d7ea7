"The architecture registry: recorded configs rebuild every built-in architecture, old model files still load, and a new architecture registered in its own module trains, saves, reloads and upscales through the API and the CLI."
import json, os, subprocess, sys, textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srwork.core import SRWorkError, sample_images
from srwork.models import ARCHS, build_model, create_model
from srwork.modelfiles import save_model
from srwork.inference import load_model, upscale
from srwork.training import train

SRWORK = [sys.executable, '-m', 'srwork.cli']


@pytest.mark.parametrize('arch', ['edsr', 'srresnet', 'ychannel', 'esrgan', 'srgan', 'unet'])
def test_recorded_config_rebuilds_the_same_network(arch):
    spec = ARCHS[arch]
    scale = None if spec.scale_arg is None else (4 if 4 in spec.scales else spec.scales[0])
    m = create_model(arch, 'small' if 'small' in spec.sizes else None, scale)
    cfg = json.loads(json.dumps(m.config))                     # what a model file stores
    assert cfg['arch'] == arch and 'pretrained' not in cfg
    rebuilt = build_model(cfg)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in m.state_dict().items()}
    rebuilt.load_state_dict(m.state_dict())
    x = torch.rand(1, 3, 16, 16) if not spec.upsample_input else torch.rand(1, 3, 32, 32)
    with torch.no_grad(): torch.testing.assert_close(rebuilt.eval()(x), m.eval()(x))


def test_files_written_by_srwork_0_1_still_load(tmp_path):
    "srwork 0.1 wrote hand-made configs: class names, `upscale`, and `inner` for YChannel."
    from safetensors.torch import save
    from srwork.edsr import EDSR, YChannel
    inner = EDSR(1, 1, 8, 1, 2, rgb_mean=(0.44,), upsample_skip=True)
    old = {'arch': 'YChannel', 'upscale': 2, 'inner': {'arch': 'EDSR', 'num_in_ch': 1, 'num_out_ch': 1, 'num_feat': 8, 'num_block': 1,
                                                      'upscale': 2, 'res_scale': 1., 'img_range': 255., 'rgb_mean': [0.44],
                                                      'upsample_skip': True}}
    sd = {f'model.{k}': v for k, v in inner.state_dict().items()}
    (tmp_path/'old.safetensors').write_bytes(save(sd, metadata={'srwork': json.dumps(dict(model=old, scale=2, upsample_input=False, norm_stats=[]))}))
    up = load_model(tmp_path/'old.safetensors')
    assert isinstance(up.model, YChannel) and up.scale == 2
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad(): torch.testing.assert_close(up(x), YChannel(inner, 2).eval()(x))


def test_unknown_arch_and_bad_config_are_named(tmp_path):
    m = create_model('edsr', 'small', 2)
    save_model(m, tmp_path/'m.safetensors')
    with pytest.raises(SRWorkError, match="unknown arch 'vdsr': choose from .*edsr"):
        build_model({'arch': 'vdsr'})
    with pytest.raises(SRWorkError, match='the edsr config has arguments it does not take: depth'):
        build_model({**m.config, 'depth': 3})


PLUGIN = '''
import torch.nn as nn
from srwork.models import register_arch

@register_arch('tiny-test', sizes={'full': dict(num_feat=32), 'small': dict(num_feat=8)}, default_size='full', scales=(2, 3),
               lr=3e-3, patch=48)
class TinyTest(nn.Module):
    "conv - ReLU - conv to 3·s² channels - pixel shuffle"
    def __init__(self, num_feat:int=32, scale:int=2):
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(nn.Conv2d(3, num_feat, 3, padding=1), nn.ReLU(), nn.Conv2d(num_feat, 3 * scale ** 2, 3, padding=1),
                                  nn.PixelShuffle(scale))
    def forward(self, x): return self.body(x)
'''


@pytest.fixture(scope='module')
def plugin(tmp_path_factory):
    d = tmp_path_factory.mktemp('plugin')
    (d/'tiny_test_arch.py').write_text(PLUGIN)
    sys.path.insert(0, str(d))
    import tiny_test_arch            # registers 'tiny-test'
    yield d
    sys.path.remove(str(d))


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return sample_images(tmp_path_factory.mktemp('hr'))


def test_a_new_architecture_through_the_api(plugin, data, tmp_path):
    run = train('tiny-test', data, tmp_path/'run', scale=2, patch=48, bs=4, epochs=1, size='small', quiet=True)
    assert run['learn'].model.config == {'arch': 'tiny-test', 'num_feat': 8, 'scale': 2}
    up = load_model(run['safetensors'])
    assert type(up.model).__name__ == 'TinyTest' and up.scale == 2
    img = np.asarray(Image.open(data/'chelsea.png'))[:40, :52]
    out = upscale(up, img, tile=16)
    assert out.shape == (80, 104, 3) and out.dtype == np.uint8
    with torch.no_grad():
        whole = upscale(run['learn'].model, img, tile=0)
    assert np.abs(out.astype(int) - whole.astype(int)).max() <= 1


def test_a_new_architecture_through_the_cli(plugin, data, tmp_path):
    env = {**os.environ, 'SRWORK_PLUGINS': 'tiny_test_arch', 'PYTHONPATH': os.pathsep.join([str(plugin), os.environ.get('PYTHONPATH', '')])}
    run = lambda *a, **kw: subprocess.run(SRWORK + [str(x) for x in a], capture_output=True, text=True, timeout=600, **kw)
    r = run('train', '--arch', 'tiny-test', '--data', data, '--scale', 3, '--patch', 48, '--bs', 4, '--epochs', 1, '--size', 'small',
            '-q', '-o', tmp_path/'run', env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((tmp_path/'run'/'train_state.json').read_text())['config']['lr'] == 3e-3     # the registered default
    small = tmp_path/'small.png'
    Image.open(data/'coffee.png').crop((0, 0, 30, 20)).save(small)
    r = run('upscale', small, '-m', tmp_path/'run'/'model.safetensors', '-o', tmp_path/'up', env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert Image.open(tmp_path/'up'/'small.png').size == (90, 60)
    # without the plugin the file names its architecture and what is known
    r = run('upscale', small, '-m', tmp_path/'run'/'model.safetensors', '-o', tmp_path/'up2')
    assert r.returncode == 1 and "unknown arch 'tiny-test'" in r.stderr and 'model.safetensors' in r.stderr
    r = run('train', '--arch', 'tiny-test', '--data', data, '-o', tmp_path/'never', env={**env, 'SRWORK_PLUGINS': 'no_such_plugin'})
    assert r.returncode == 1 and "plugin 'no_such_plugin' could not be imported" in r.stderr and not (tmp_path/'never').exists()


def test_an_unimported_architecture_says_which_modules_register_it():
    "`srwork.models` alone registers nothing (the architectures come later in the pipeline): the error says what to import."
    code = "from srwork.models import create_model\ncreate_model('esrgan')"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "unknown arch 'esrgan': no arch is registered yet" in r.stderr and 'import srwork.edsr, srwork.esrgan' in r.stderr
    code = "from srwork.models import create_model\nimport srwork.esrgan\nprint(type(create_model('esrgan', 'small', 4)).__name__)"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == 'RRDBNet', r.stderr
