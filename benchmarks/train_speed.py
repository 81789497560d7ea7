#!/usr/bin/env python
"""The cost of srwork's learner against a bare PyTorch loop doing the same work, with a breakdown of the difference.

    python benchmarks/train_speed.py                        # the cpu recipe's luma EDSR and EDSR-baseline x2, 40 steps
    python benchmarks/train_speed.py --steps 100 --models cpu --rounds 3

For each model, three ways of running the same number of training steps on the same offline sample photos, from the
same initial weights, are timed side by side (interleaved, `--rounds` times; the median is reported):

- **bare loop**: batches drawn beforehand, then forward, loss, backward, `torch.optim.Adam` and a foreach EMA update in a
  plain `for` loop, with the same autocast and memory format as the recipe;
- **BasicSR-style**: the same batches through an `SRModel` with `feed_data` / `optimize_parameters` / `model_ema`
  (BasicSR's structure: a learning-rate update per iteration, the EMA by parameter name);
- **srwork learner**: `train_dataloaders`, `train_model` and `phase_learner` as `srwork train` builds them, with a run
  folder (per-epoch checkpoint, history, curves, validation pictures), fitted by `fit_phase` for the same steps in one
  epoch. Its loader draws the batches live, as in a real run.

The learner's wall time is split into: fit setup (until the first batch), data wait (the training loop waiting for
the loader), steps (before_batch to after_batch: forward, loss, backward, optimiser, callbacks) and epoch end
(validation, metrics, checkpoint, pictures, plots) plus fit end. Ratios are wall times over the bare loop's. The
per-step ratio sets the once-per-fit work aside: setup, epoch end and rest happen once per fit (per epoch for the
epoch end and the curves), so their share shrinks as the fit grows (`--steps`; the cpu recipe's epoch is 200 steps).
"""
import argparse, copy, statistics, tempfile, time, warnings
from pathlib import Path

import torch
from fastai.callback.core import Callback

from srwork.core import set_seed, sample_images, scratch_dir
from srwork.config import as_config
from srwork.rundir import RunDir
from srwork.training import train_dataloaders, train_model, phase_learner, fit_phase, check_train_data

MODELS = {'cpu': ('cpu recipe: luma EDSR (12 blocks), bf16, channels-last, EMA 0.999', dict(recipe='cpu')),
          'edsr': ('EDSR-baseline x2, fp32, channels-last', dict(size='baseline', patch=96, bs=16, valid_pct=0.1))}


class Breakdown(Callback):
    "Timestamps around every training batch and epoch: where a fit's wall time goes."
    order = -1000
    def __init__(self): self.last = None
    def before_fit(self): self.t_fit, self.data, self.steps, self.first, self.epoch_end, self.n = time.perf_counter(), 0., 0., None, 0., 0
    def before_train(self): self.last = time.perf_counter()
    def before_batch(self):
        if not self.training: return
        t = time.perf_counter()
        if self.first is None: self.first = t
        else: self.data += t - self.last
        self.t_batch = t
    def after_train(self): self.t_train_end = time.perf_counter()
    def after_epoch(self): self.epoch_end += time.perf_counter() - self.t_train_end


class _BatchEnd(Callback):
    order = 1000
    def __init__(self, bd): self.bd = bd
    def after_batch(self):
        if not self.training: return
        t = time.perf_counter()
        self.bd.steps += t - self.bd.t_batch; self.bd.last = t; self.bd.n += 1


def _sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()


def _autocast(cfg, device):
    on = cfg.precision in ('bf16', 'fp16')
    return torch.autocast(device.type, dtype=torch.bfloat16 if cfg.precision == 'bf16' else torch.float16, enabled=on)


def bare_loop(model, batches, loss_func, cfg, device) -> float:
    "Forward, loss, backward, Adam, EMA: the plain loop a PyTorch user would write. Wall seconds."
    model = copy.deepcopy(model).to(device).train()
    if cfg.channels_last: model = model.to(memory_format=torch.channels_last)
    betas = cfg.betas or (0.9, 0.99)
    opt = torch.optim.Adam(model.parameters(), cfg.phase_lr('train'), betas=betas, eps=1e-8)
    params = [p for p in model.state_dict().values() if p.is_floating_point()]
    ema = [p.detach().clone().float() for p in params] if cfg.ema else None
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == 'fp16')
    _sync(device); t = time.perf_counter()
    for i, (x, y) in enumerate(batches):
        with _autocast(cfg, device): loss = loss_func(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward(); scaler.step(opt); scaler.update()
        if ema is not None:
            with torch.no_grad(): torch._foreach_lerp_(ema, [p.float() for p in params], 1 - min(cfg.ema, (1 + i) / (10 + i)))
    _sync(device)
    return time.perf_counter() - t


class SRModel:
    "BasicSR's model structure (basicsr/models/sr_model.py), reduced to what one training iteration does."
    def __init__(self, net, loss_func, cfg, device):
        self.net_g, self.cri_pix, self.cfg, self.device = net, loss_func, cfg, device
        self.net_g_ema = copy.deepcopy(net).eval() if cfg.ema else None
        self.optimizer_g = torch.optim.Adam(net.parameters(), cfg.phase_lr('train'), betas=cfg.betas or (0.9, 0.99))
        self.lr_fn = cfg.lr_fn('train') or (lambda f: 1.)
    def feed_data(self, data): self.lq, self.gt = data[0].to(self.device), data[1].to(self.device)
    def update_learning_rate(self, it, total):
        for g in self.optimizer_g.param_groups: g['lr'] = self.cfg.phase_lr('train') * self.lr_fn(it / total)
    def optimize_parameters(self, step):
        self.optimizer_g.zero_grad()
        with _autocast(self.cfg, self.device):
            self.output = self.net_g(self.lq)
            l_pix = self.cri_pix(self.output, self.gt)
        l_pix.backward()
        self.optimizer_g.step()
        if self.net_g_ema is not None: self.model_ema(self.cfg.ema)
    @torch.no_grad()
    def model_ema(self, decay):
        net_g_params, ema_params = dict(self.net_g.named_parameters()), dict(self.net_g_ema.named_parameters())
        for k in ema_params: ema_params[k].data.mul_(decay).add_(net_g_params[k].data, alpha=1 - decay)


def basicsr_loop(model, batches, loss_func, cfg, device) -> float:
    net = copy.deepcopy(model).to(device).train()
    if cfg.channels_last: net = net.to(memory_format=torch.channels_last)
    m = SRModel(net, loss_func, cfg, device)
    _sync(device); t = time.perf_counter()
    for it, data in enumerate(batches):
        m.update_learning_rate(it, len(batches))
        m.feed_data(data); m.optimize_parameters(it)
    _sync(device)
    return time.perf_counter() - t


def run_config(cfg, steps:int):
    "`cfg` trained for `steps` iterations in one epoch (a recipe's time budget set aside)."
    return as_config(cfg, iters=steps, minutes=None, patches_per_epoch=steps * cfg.bs)


def learner_run(model, cfg, files, steps, out: Path, device):
    "`fit_phase` of the learner `srwork train` builds, for `steps` steps in one epoch, in run folder `out`. (wall, breakdown)"
    run = RunDir(out); run.path.mkdir(parents=True, exist_ok=True)
    c = run_config(cfg, steps)
    set_seed(c.seed)
    t0 = time.perf_counter()
    dls = train_dataloaders(c, files, device)
    learn = phase_learner(c, dls, copy.deepcopy(model), 'train', run.path)
    bd = Breakdown(); learn.add_cbs([bd, _BatchEnd(bd)])
    t1 = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): fit_phase(learn, c, 'train', run, quiet=True)
    _sync(device)
    t2 = time.perf_counter()
    parts = dict(build=t1 - t0, setup=bd.first - t1, data=bd.data, steps=bd.steps, epoch_end=bd.epoch_end,
                 rest=t2 - t1 - (bd.first - t1) - bd.data - bd.steps - bd.epoch_end)
    assert bd.n == steps, (bd.n, steps)
    return t2 - t1, parts, learn


def draw_batches(cfg, files, steps, device):
    "`steps` training batches from the loader `srwork train` builds, as plain tensors on `device` in the recipe's memory format."
    set_seed(cfg.seed)
    dls = train_dataloaders(run_config(cfg, steps), files, device)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    out = []
    for x, y in dls.train:
        out.append((x.as_subclass(torch.Tensor).contiguous(memory_format=fmt), y.as_subclass(torch.Tensor)))
        if len(out) == steps: break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    ap.add_argument('--steps', type=int, default=40, help='training steps per run (one epoch)')
    ap.add_argument('--rounds', type=int, default=3, help='interleaved rounds; medians are reported')
    ap.add_argument('--workers', type=int, default=None, help="loader processes of the learner's loaders (default: the recipe's or srwork's)")
    ap.add_argument('--data', default=None, help='folder of HR images (default: the offline sample photos)')
    a = ap.parse_args()
    warnings.simplefilter('ignore')
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    data = Path(a.data) if a.data else sample_images(scratch_dir() / 'photos')
    print(f"device {device.type}{f' ({torch.cuda.get_device_name()})' if device.type == 'cuda' else ''}, {torch.get_num_threads()} threads; "
          f"{a.steps} steps per run, median of {a.rounds} interleaved rounds; data {data}")
    for key in a.models:
        label, kw = MODELS[key]
        cfg = as_config('edsr', scale=2, **kw, **({} if a.workers is None else dict(workers=a.workers))).resolve(device.type)
        files = check_train_data(data, cfg.patch)
        set_seed(cfg.seed)
        model = train_model(cfg, quiet=True)
        batches = draw_batches(cfg, files, a.steps, device)
        probe = phase_learner(cfg, train_dataloaders(run_config(cfg, a.steps), files, device), copy.deepcopy(model), 'train')
        loss_func = probe.loss_func
        times = {'bare loop': [], 'BasicSR-style': [], 'srwork learner': []}
        parts = []
        bare_loop(model, batches[:3], loss_func, cfg, device)          # (warm-up: allocator, oneDNN kernels)
        for r in range(a.rounds):
            times['bare loop'].append(bare_loop(model, batches, loss_func, cfg, device))
            times['BasicSR-style'].append(basicsr_loop(model, batches, loss_func, cfg, device))
            with tempfile.TemporaryDirectory() as tmp:
                wall, p, _ = learner_run(model, cfg, files, a.steps, Path(tmp) / 'run', device)
            times['srwork learner'].append(wall); parts.append(p)
        base = statistics.median(times['bare loop'])
        print(f"\n{label}: patch {cfg.patch}, bs {cfg.bs}, workers {cfg.workers if cfg.workers is not None else 'default'}, "
              f"cache {bool(cfg.cache)}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params")
        print(f"{'loop':<16} {'s':>8} {'s/step':>8} {'vs bare':>8}   rounds")
        for name, ts in times.items():
            m = statistics.median(ts)
            print(f"{name:<16} {m:>8.2f} {m / a.steps:>8.3f} {m / base:>7.2f}x   {' '.join(f'{t:.2f}' for t in ts)}")
        med = {k: statistics.median(p[k] for p in parts) for k in parts[0]}
        print("srwork learner, where its time goes (median s): " + ', '.join(f"{k} {v:.2f}" for k, v in med.items() if k != 'build')
              + f"  (steps alone / bare loop: {med['steps'] / base:.2f}x; loaders and learner built in {med['build']:.2f} s, before the fit)")
        once = med['setup'] + med['epoch_end'] + med['rest']
        print(f"per step, with its data: (data + steps) / bare loop {(med['data'] + med['steps']) / base:.2f}x; "
              f"once per fit (setup, epoch end, rest): {once:.2f} s, {once / base:.1%} of the bare loop's {a.steps} steps")


if __name__ == '__main__':
    main()
