
// ---- upscaling as srwork.inference does: pad to the model's multiple, the same tile windows and context, crop, round ----
function tileWindows(n, tile, pad, align) {
  // [core start, core end, window start, window end] along an axis of length n: srwork.inference.tile_windows
  const up = (v) => Math.ceil(v / align) * align;
  pad = up(pad);
  const k = tile + 2 * pad >= n ? 1 : Math.ceil(n / tile);
  const core = up(Math.ceil(n / k)), w = Math.min(n, core + 2 * pad), out = [];
  for (let c0 = 0; c0 < n; c0 += core) {
    const c1 = Math.min(n, c0 + core), s = Math.min(Math.max(c0 - pad, 0), n - w);
    out.push([c0, c1, s, s + w]);
  }
  return out;
}

function padToMultiple(img, m) {
  // Reflect-pad (replicate for tiny images) the bottom and right of planar RGB to multiples of m: srwork.models.pad_to_multiple
  const {width: W, height: H, rgb} = img, H2 = Math.ceil(H / m) * m, W2 = Math.ceil(W / m) * m;
  if (H2 === H && W2 === W) return {width: W, height: H, rgb};
  const reflect = H2 - H < H && W2 - W < W;
  const src = (i, n) => i < n ? i : reflect ? 2 * (n - 1) - i : n - 1;
  const out = new Float32Array(3 * H2 * W2);
  for (let c = 0; c < 3; c++) for (let y = 0; y < H2; y++) {
    const sy = src(y, H);
    for (let x = 0; x < W2; x++) out[(c * H2 + y) * W2 + x] = rgb[(c * H + sy) * W + src(x, W)];
  }
  return {width: W2, height: H2, rgb: out};
}

function tilePlan(H, W, config, tile) {
  // The windows of srwork.inference.plan_tiles for a given tile: the whole image when the tile covers it
  const m = config.multiple, Hm = Math.ceil(H / m) * m, Wm = Math.ceil(W / m) * m;
  if (!tile || tile >= Math.max(Hm, Wm)) return {tile: 0, pad: 0, rows: tileWindows(Hm, Hm, 0, m), cols: tileWindows(Wm, Wm, 0, m)};
  return {tile, pad: config.tilePad, rows: tileWindows(Hm, tile, config.tilePad, m), cols: tileWindows(Wm, tile, config.tilePad, m)};
}

const roundHalfUp = (v) => Math.floor(v * 255 + 0.5);     // srwork.core.quantise: MATLAB's im2uint8

async function upscaleImage(ort, session, alphaSession, img, config, tile, onTile) {
  // {width, height, channels, pixels}: interleaved 8-bit output (grey or RGB, plus alpha), tile by tile
  const s = config.scale, {width: W0, height: H0} = img;
  const padded = padToMultiple(img, config.multiple), {width: W, height: H} = padded;
  const plan = tilePlan(H0, W0, config, tile);
  const C = img.grey ? 1 : 3, channels = C + (img.alpha ? 1 : 0), Wo = W0 * s, Ho = H0 * s;
  const pixels = new Uint8Array(Wo * Ho * channels);
  const windows = plan.rows.flatMap(r => plan.cols.map(c => [r, c]));
  const total = windows.length + (img.alpha ? 1 : 0);
  const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
  let done = 0, flatInput = true, runSeconds = 0;
  for (let c = 0; c < 3 && flatInput; c++) {
    let a = Infinity, b = -Infinity;
    for (const v of img.rgb.subarray(c * W0 * H0, (c + 1) * W0 * H0)) { if (v < a) a = v; if (v > b) b = v; }
    if (b - a > 1e-3) flatInput = false;
  }
  for (const [[c0, c1, y0, y1], [d0, d1, x0, x1]] of windows) {
    const h = y1 - y0, w = x1 - x0, input = new Float32Array(3 * h * w);
    for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++)
      input.set(padded.rgb.subarray((c * H + y0 + y) * W + x0, (c * H + y0 + y) * W + x1), (c * h + y) * w);
    const t0 = performance.now();
    const result = await session.run({[session.inputNames[0]]: new ort.Tensor('float32', input, [1, 3, h, w])});
    runSeconds += (performance.now() - t0) / 1000;
    const out = result[session.outputNames[0]], data = out.data, ho = h * s, wo = w * s;
    if (out.dims[2] !== ho || out.dims[3] !== wo) throw new Error(`the model gave ${out.dims.join('x')} for a ${h}x${w} tile, not x${s}`);
    const ye = Math.min(c1, H0) * s, xe = Math.min(d1, W0) * s;
    for (let y = c0 * s; y < ye; y++) for (let x = d0 * s; x < xe; x++) {
      const i = (y - y0 * s) * wo + (x - x0 * s), o = (y * Wo + x) * channels;
      const r = data[i], g = data[ho * wo + i], b = data[2 * ho * wo + i];
      if (!(Number.isFinite(r) && Number.isFinite(g) && Number.isFinite(b)))
        throw new Error("the model's output holds NaN or infinite values: its weights or normalisation statistics are broken");
      const cr = Math.min(Math.max(r, 0), 1), cg = Math.min(Math.max(g, 0), 1), cb = Math.min(Math.max(b, 0), 1);
      if (cr < lo[0]) lo[0] = cr; if (cr > hi[0]) hi[0] = cr;
      if (cg < lo[1]) lo[1] = cg; if (cg > hi[1]) hi[1] = cg;
      if (cb < lo[2]) lo[2] = cb; if (cb > hi[2]) hi[2] = cb;
      if (C === 1) pixels[o] = roundHalfUp(Math.fround(Math.fround(cr * 299 + cg * 587 + cb * 114) / 1000));
      else { pixels[o] = roundHalfUp(cr); pixels[o + 1] = roundHalfUp(cg); pixels[o + 2] = roundHalfUp(cb); }
    }
    onTile(++done, total);
    await new Promise(r => setTimeout(r, 0));                // let the page draw its progress bar
  }
  if (!flatInput && Math.max(...hi.map((v, c) => v - lo[c])) < 1e-6)
    throw new Error("the model's output is flat (one value per channel) for an image that is not: its weights or normalisation statistics are broken");
  if (img.alpha) {                 // alpha: MATLAB bicubic of the whole plane (a model trained on photos has not seen masks)
    const result = await alphaSession.run({[alphaSession.inputNames[0]]: new ort.Tensor('float32', img.alpha, [1, 1, H0, W0])});
    const a = result[alphaSession.outputNames[0]].data;
    for (let p = 0; p < Wo * Ho; p++) pixels[p * channels + C] = roundHalfUp(Math.min(Math.max(a[p], 0), 1));
    onTile(++done, total);
  }
  return {width: Wo, height: Ho, channels, pixels, plan, runSeconds};
}
