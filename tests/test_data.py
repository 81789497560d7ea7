"SR DataBlocks: LR-only degradation, identical geometry on x and y, paired folders, padding, progressive resizing."
import numpy as np
import pytest
import torch
from PIL import Image

from srwork.core import SRWorkError, set_seed
from srwork.crappify import Crappifier, GaussianNoise, Resize, imresize
from srwork.data import dls_at, sr_dataloaders, sr_datablock


def _coded_image(h, w, seed=0):
    "An image whose R,G channels encode each pixel's column/row, so any crop or flip can be located exactly."
    yy, xx = np.mgrid[0:h, 0:w]
    b = np.random.RandomState(seed).randint(0, 256, (h, w))
    return np.stack([xx % 256, yy % 256, b], axis=2).astype(np.uint8)


@pytest.fixture
def hr_folder(tmp_path):
    d = tmp_path / 'hr'
    d.mkdir()
    for i in range(6):
        Image.fromarray(_coded_image(120 + 8 * i, 100 + 4 * i, seed=i)).save(d / f'{i:04d}.png')
    return d


def _located(y, images):
    "True if the HR patch `y` (3, P, P) is one of the 8 dihedral transforms of a crop of one of `images`."
    p = y.permute(1, 2, 0).numpy()
    p8 = np.round(p * 255).astype(np.uint8)
    for img in images:
        for k in range(8):
            q = np.rot90(p8, -(k % 4)) if k < 4 else np.rot90(p8[:, ::-1], -(k % 4))
            r0, c0 = int(q[0, 0, 1]), int(q[0, 0, 0])
            if r0 + q.shape[0] <= img.shape[0] and c0 + q.shape[1] <= img.shape[1]:
                if np.array_equal(img[r0:r0 + q.shape[0], c0:c0 + q.shape[1]], q): return True
    return False


def test_train_pairs_are_exact_crops_with_same_geometry(hr_folder):
    set_seed(1)
    dls = sr_dataloaders(hr_folder, scale=2, patch_size=48, bs=4, valid_pct=0.34)
    images = [np.asarray(Image.open(p)) for p in sorted(hr_folder.iterdir())]
    xb, yb = dls.one_batch()
    assert xb.shape == (4, 3, 24, 24) and yb.shape == (4, 3, 48, 48)
    for x, y in zip(xb.cpu(), yb.cpu()):
        assert _located(y, images)           # the target is an untouched crop (flipped/rotated)
        lr = imresize(y.permute(1, 2, 0).numpy().astype(np.float64), 0.5)
        expected = np.floor(np.clip(lr, 0, 1) * 255 + 0.5) / 255
        np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), expected, atol=1e-6)   # same geometry as y


def test_lr_only_noise_never_reaches_target(hr_folder):
    c = Crappifier([GaussianNoise((30, 30))], scale=2)
    dls = sr_dataloaders(hr_folder, scale=2, patch_size=48, bs=6, valid_pct=0, crappifier=c)
    images = [np.asarray(Image.open(p)) for p in sorted(hr_folder.iterdir())]
    xb, yb = dls.one_batch()
    assert all(_located(y, images) for y in yb.cpu())
    clean = imresize(yb.cpu().permute(0, 2, 3, 1).numpy()[0].astype(np.float64), 0.5)
    assert np.abs(xb.cpu()[0].permute(1, 2, 0).numpy() - clean).mean() > 0.02   # and the input is noisy


def test_validation_is_centre_crop_and_stable(hr_folder):
    c = Crappifier([GaussianNoise((20, 20))], scale=2)
    dls = sr_dataloaders(hr_folder, scale=2, patch_size=32, valid_size=64, bs=2, valid_pct=0.34, crappifier=c)
    (x1, y1), (x2, y2) = [next(iter(dls.valid)) for _ in range(2)]
    assert torch.equal(x1, x2) and torch.equal(y1, y2)          # same inputs every epoch
    first = np.asarray(Image.open(dls.valid_ds.items[0]))
    h, w = first.shape[:2]
    top, left = ((h // 2 - 32) // 2) * 2, ((w // 2 - 32) // 2) * 2     # centred on the LR grid
    got = np.round(y1[0].cpu().permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    assert np.array_equal(got, first[top:top + 64, left:left + 64])


def test_whole_image_validation(hr_folder):
    dls = sr_dataloaders(hr_folder, scale=3, patch_size=48, valid_size=0, bs=4, valid_pct=0.34)
    x, y = next(iter(dls.valid))
    assert x.shape[0] == 1 and y.shape[-2] % 3 == 0 and y.shape[-1] % 3 == 0
    assert x.shape[-2] * 3 == y.shape[-2]


def test_upsample_input_for_unet(hr_folder):
    dls = sr_dataloaders(hr_folder, scale=4, patch_size=64, bs=2, upsample_input=True, crappifier='course-v3')
    x, y = dls.one_batch()
    assert x.shape == y.shape == (2, 3, 64, 64)


def test_paired_lr_folder(tmp_path):
    hr, lr = tmp_path / 'HR', tmp_path / 'LR' / 'X2'
    hr.mkdir(); lr.mkdir(parents=True)
    for i in range(4):
        a = _coded_image(64, 80, seed=i)
        Image.fromarray(a).save(hr / f'{i:04d}.png')
        Image.fromarray(a[::2, ::2]).save(lr / f'{i:04d}x2.png')   # any LR: here a decimation we can check exactly
    def undo(a, k): return np.rot90(a if k < 4 else a[:, ::-1], -(k % 4)) if k < 4 else np.rot90(a, -(k % 4))[:, ::-1]
    for augment in (False, True):
        dls = sr_dataloaders(hr, scale=2, patch_size=32, bs=4, valid_pct=0, lr_folder=tmp_path / 'LR', augment=augment)
        x, y = dls.one_batch()
        x8 = np.round(x.cpu().permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
        y8 = np.round(y.cpu().permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
        # the LR crop is the one that belongs to the HR crop, under the same flip/rotation
        for xi, yi in zip(x8, y8):
            assert any(np.array_equal(undo(xi, k), undo(yi, k)[::2, ::2]) for k in range(8))
        if not augment: assert np.array_equal(x8, y8[:, ::2, ::2])


def test_paired_lr_errors(tmp_path):
    hr, lr = tmp_path / 'HR', tmp_path / 'LR'
    hr.mkdir(); lr.mkdir()
    Image.fromarray(_coded_image(64, 64)).save(hr / 'a.png')
    Image.fromarray(_coded_image(30, 32)).save(lr / 'a.png')
    Image.fromarray(_coded_image(64, 64)).save(hr / 'b.png')
    with pytest.raises(SRWorkError, match=r"b\.png: no matching LR image"):
        sr_dataloaders(hr, scale=2, patch_size=16, bs=1, valid_pct=0, lr_folder=lr)
    (hr / 'b.png').unlink()
    with pytest.raises(SRWorkError, match=r"a\.png: 32x30, but its HR image .*a\.png is 64x64, which at x2 makes 32x32"):
        sr_dataloaders(hr, scale=2, patch_size=16, bs=1, valid_pct=0, lr_folder=lr)      # before any batch


def test_small_images_are_padded_with_a_warning(tmp_path):
    d = tmp_path / 'small'
    d.mkdir()
    Image.fromarray(_coded_image(20, 30)).save(d / 'tiny.png')
    Image.fromarray(_coded_image(100, 100)).save(d / 'big.png')
    dls = sr_dataloaders(d, scale=2, patch_size=64, bs=2, valid_pct=0)
    with pytest.warns(UserWarning, match=r'tiny\.png: 30x20 is smaller than the 64px patch; padded by mirroring'):
        x, y = dls.one_batch()
    assert y.shape == (2, 3, 64, 64)


def test_progressive_resize_keeps_items_and_split(hr_folder):
    dls = sr_dataloaders(hr_folder, scale=2, patch_size=32, bs=4, valid_pct=0.34)
    big = dls_at(dls, 64, 2)
    assert [p.name for p in big.train_ds.items] == [p.name for p in dls.train_ds.items]
    assert [p.name for p in big.valid_ds.items] == [p.name for p in dls.valid_ds.items]
    x, y = big.one_batch()
    assert y.shape == (2, 3, 64, 64) and x.shape == (2, 3, 32, 32)
    with pytest.raises(SRWorkError, match='not a multiple of scale'):
        dls_at(dls, 33, 2)


def test_bad_sources(tmp_path):
    with pytest.raises(SRWorkError, match='data folder not found'):
        sr_dataloaders(tmp_path / 'nope')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SRWorkError, match='no image files found'):
        sr_dataloaders(tmp_path / 'empty')
    with pytest.raises(SRWorkError, match='crappifier degrades by 1/4'):
        sr_datablock(scale=2, crappifier=Crappifier([Resize(4)], scale=4))
    with pytest.raises(SRWorkError, match='not a multiple of scale'):
        sr_datablock(scale=3, patch_size=64)


def test_worker_processes(hr_folder):
    set_seed(0)
    dls = sr_dataloaders(hr_folder, scale=2, patch_size=32, bs=2, valid_pct=0, num_workers=2, crappifier='restoration')
    shapes = [(tuple(x.shape), tuple(y.shape)) for x, y in dls.train]
    assert shapes == [((2, 3, 16, 16), (2, 3, 32, 32))] * 3


def test_image_cache_is_not_pickled(hr_folder):
    import pickle
    from srwork.data import SRPairTransform
    dls = sr_dataloaders(hr_folder, scale=2, patch_size=32, bs=2, valid_pct=0, cache=10)
    dls.one_batch()
    pair = next(t for t in dls.train.after_item.fs if isinstance(t, SRPairTransform))
    assert len(pair._cache) > 0                               # images are cached in memory...
    clone = pickle.loads(pickle.dumps(pair))
    assert clone._cache == {} and clone.cache == 10           # ...but an export does not carry them
    assert len(pickle.dumps(pair)) < 100_000


# --- large images are prepared as arrays without being asked ------------------------------------------------------

@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / 'data_root'
    monkeypatch.setenv('SRWORK_DATA', str(root))
    return root


def test_large_images_are_prepared_once_and_read_as_arrays(hr_folder, data_root, monkeypatch, capsys):
    import srwork.data as D
    monkeypatch.setattr(D, 'PREPARE_MIN_PIXELS', 10_000)       # (the fixture's images stand in for 2K photos)
    def batches(**kw):
        set_seed(5)
        dls = sr_dataloaders(hr_folder, scale=2, patch_size=32, bs=3, valid_pct=0.2, seed=5, num_workers=0, **kw)
        return dls, [b for b, _ in zip(dls.train, range(2))]
    dls, got = batches()
    assert all(str(p).endswith('.npy') and D.prepared_dir(hr_folder) in p.parents for p in dls.sr_config['source'])
    out = capsys.readouterr().out
    assert 'preparing 6 of 6 images' in out and str(hr_folder) in out and 'MB of arrays into' in out, out
    _, want = batches(prepare=False)                            # the same pixels as decoding each patch
    for (x1, y1), (x2, y2) in zip(got, want): assert torch.equal(x1, x2) and torch.equal(y1, y2)
    arrays = sorted(D.prepared_dir(hr_folder).rglob('*.npy'))
    stamps = [a.stat().st_mtime_ns for a in arrays]
    batches()                                                   # a second run reuses them, silently
    assert [a.stat().st_mtime_ns for a in arrays] == stamps and 'preparing' not in capsys.readouterr().out
    Image.fromarray(_coded_image(64, 80, seed=9)).save(hr_folder / '0002.png')      # the folder changes
    os_time = arrays[2].stat().st_mtime
    import os; os.utime(hr_folder / '0002.png', (os_time + 5, os_time + 5))
    batches()
    assert 'preparing 1 of 6 images' in capsys.readouterr().out
    assert D.read_pixels(D.prepared_dir(hr_folder) / '0002.npy').shape == (64, 80, 3)


def test_small_images_and_cached_runs_are_not_prepared(hr_folder, data_root):
    dls = sr_dataloaders(hr_folder, scale=2, patch_size=32, bs=3, valid_pct=0.2, num_workers=0)   # 12 000 pixels: below the default
    assert all(p.suffix == '.png' for p in dls.sr_config['source']) and not data_root.exists()
    import srwork.data as D
    assert D.auto_prepare(D.image_files(hr_folder), 'auto', min_pixels=1) != D.image_files(hr_folder)
    dls = sr_dataloaders(hr_folder, scale=2, patch_size=32, bs=3, valid_pct=0.2, num_workers=0, cache=6, prepare=True)
    assert all(p.suffix == '.png' for p in dls.sr_config['source'])       # an in-memory cache needs no arrays


def test_no_room_to_prepare_is_said_and_decoding_goes_on(hr_folder, data_root, monkeypatch, capsys):
    import shutil, collections
    import srwork.data as D
    Usage = collections.namedtuple('Usage', 'total used free')
    monkeypatch.setattr(D.shutil, 'disk_usage', lambda p: Usage(10**9, 10**9, 5 * 2**20))
    files = D.image_files(hr_folder)
    assert D.auto_prepare(files, 'auto', min_pixels=1) == files
    err = capsys.readouterr().err
    assert 'MB are free' in err and str(hr_folder) in err and 'decode an image for each patch' in err, err
    with pytest.raises(SRWorkError, match='MB are free'): D.auto_prepare(files, True)


def test_a_preparation_stopped_half_way_is_said_and_continued(hr_folder, data_root, monkeypatch, capsys):
    import srwork.data as D
    from srwork.core import WriteError
    real, calls = D._write_array, []
    def failing(f, t):
        calls.append(f)
        if len(calls) == 3: raise WriteError(f"{t}: No space left on device")
        return real(f, t)
    monkeypatch.setattr(D, '_write_array', failing)
    files = D.image_files(hr_folder)
    assert D.auto_prepare(files, 'auto', min_pixels=1) == files          # the images as they are, and why
    assert 'No space left on device' in capsys.readouterr().err
    monkeypatch.setattr(D, '_write_array', real)
    arrays = D.auto_prepare(files, 'auto', min_pixels=1)
    assert 'preparing 4 of 6 images' in capsys.readouterr().out           # the 2 written before are kept
    for f, a in zip(files, arrays): assert np.array_equal(D.read_pixels(a), D.read_pixels(f))


def test_image_sizes_come_from_headers_without_decoding(tmp_path, monkeypatch):
    "`_pixel_size` (the loaders' size checks, auto-prepare's median) decoded every PNG through Pillow's getexif: now it reads headers only, and a PNG's orientation wherever its eXIf chunk lies, as load_image turns the image."
    import struct, zlib
    from PIL import ImageFile
    from srwork.core import load_image
    from srwork.data import _pixel_size
    a = np.random.RandomState(0).randint(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path/'plain.png')
    exif = Image.Exif(); exif[0x0112] = 6                                # stored sideways, shown upright
    Image.fromarray(a).save(tmp_path/'before.png', exif=exif)           # (Pillow writes eXIf before the pixels)
    raw = exif.tobytes()[6:] if exif.tobytes().startswith(b'Exif') else exif.tobytes()
    chunk = struct.pack('>I', len(raw)) + b'eXIf' + raw + struct.pack('>I', zlib.crc32(b'eXIf' + raw))
    png = (tmp_path/'plain.png').read_bytes()
    (tmp_path/'after.png').write_bytes(png[:-12] + chunk + png[-12:])  # (an eXIf after the pixels, before IEND)
    expect = {'plain.png': (30, 20), 'before.png': (20, 30), 'after.png': (20, 30)}
    for name, size in expect.items():
        assert tuple(load_image(tmp_path/name).shape[-2:][::-1]) == size, name       # what load_image makes of it
    monkeypatch.setattr(ImageFile.ImageFile, 'load', lambda self: (_ for _ in ()).throw(AssertionError('decoded')))
    for name, size in expect.items(): assert _pixel_size(tmp_path/name) == size, name
