"The committed notebooks: pictures as their only outputs, where they draw pictures, and the whole of nbs/ small."
import json
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parents[1]/'nbs'
PICTURES = {'image/png', 'image/jpeg'}
# notebooks whose point is partly a picture: the degradation grid, a batch, tile windows, schedules and curves, GAN
# curves, comparison panels, the demo's panel, the page's screenshot (needs Chromium when refreshed)
DRAWN = ['01_crappify', '02_data', '12_esrgan', '13_unet', '14_schedules', '15_rundir', '17_training', '18_inference',
         '19_benchmark', '21_browser', '22_commands']


def _outputs(name):
    return [o for c in json.loads((NBS/f'{name}.ipynb').read_text())['cells'] for o in c.get('outputs', [])]


@pytest.mark.parametrize('name', sorted(p.stem for p in NBS.glob('*.ipynb')))
def test_outputs_are_pictures_only(name):
    for o in _outputs(name):
        assert o['output_type'] == 'display_data' and set(o['data']) <= PICTURES and len(o['data']) == 1, (name, o.get('output_type'), list(o.get('data', {})))


@pytest.mark.parametrize('name', DRAWN)
def test_the_notebooks_that_draw_keep_their_pictures(name):
    assert _outputs(name), f"{name}.ipynb holds no picture: refresh with .ci/pictures.py {name}"


def test_the_notebooks_stay_small():
    assert sum(p.stat().st_size for p in NBS.glob('*.ipynb')) < 15 * 2**20
