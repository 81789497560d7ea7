
// ---- the page: model, controls, progress, comparison, download; scriptable through its URL and body's data attributes ----
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = (name, extra = {}) => { Object.assign(document.body.dataset, extra); document.body.dataset.state = name; };
let config, sessions = {}, alphaSession = null, busy = false;

function fail(message) {
  $('error').textContent = message; $('error').hidden = false;
  $('status').textContent = '';
  state('error', {error: message});
}

function mb(bytes) { return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.round(bytes / 1e3)} kB`; }

let adapterKind = null;              // a promise of 'gpu', 'software' or 'none': what WebGPU offers this page (asked once)
function webgpuAdapter() {
  adapterKind = adapterKind || (async () => {
    try {
      const a = navigator.gpu && await navigator.gpu.requestAdapter();
      if (!a) return 'none';
      const info = a.info || {};
      // a software adapter (SwiftShader, a fallback adapter) emulates the GPU on the CPU: 50x slower than WebAssembly
      const software = a.isFallbackAdapter || info.isFallbackAdapter || /swiftshader|llvmpipe|software/i.test(`${info.vendor} ${info.architecture} ${info.description}`);
      return software ? 'software' : 'gpu';
    } catch (e) { return 'none'; }
  })();
  return adapterKind;
}

async function backends() {
  // WebGPU where the browser has a GPU adapter (?backend=webgpu: any adapter, a software one too), else WebAssembly
  const asked = params.get('backend') || 'auto';
  if (asked === 'wasm') return ['wasm'];
  const kind = await webgpuAdapter();
  return kind === 'gpu' || (asked === 'webgpu' && kind === 'software') ? ['webgpu', 'wasm'] : ['wasm'];
}

async function session(variant) {
  if (!sessions[variant]) {
    const file = config.variants[variant].file;
    sessions[variant] = ort.InferenceSession.create(file, {executionProviders: await backends(), graphOptimizationLevel: 'all'});
  }
  return sessions[variant];
}

function queryProblem(config) {
  // what is wrong with the page's URL parameters, or '': each one checked before it is used
  const whole = (v, lo, hi) => /^\d+$/.test(v) && Number(v) >= lo && Number(v) <= hi, least = Math.max(config.multiple || 1, 8);
  const tile = params.get('tile'), threads = params.get('threads'), backend = params.get('backend');
  if (tile !== null && tile !== '0' && !whole(tile, least, 4096)) return `?tile=${tile}: must be 0 (the whole image) or a whole number from ${least} to 4096`;
  if (threads !== null && !whole(threads, 1, 64)) return `?threads=${threads}: must be a whole number from 1 to 64`;
  if (backend !== null && !['auto', 'wasm', 'webgpu'].includes(backend)) return `?backend=${backend}: must be auto, wasm or webgpu`;
  return '';
}

function fileName(url) {
  // the last part of an input URL, decoded where it can be (a name like 100%.png is not percent-encoding)
  const last = url.split('/').pop().split('?')[0];
  try { return decodeURIComponent(last) || 'input'; } catch (e) { return last || 'input'; }
}

async function loadModel() {
  state('loading');
  try {
    config = await (await fetch('config.json')).json();
    const problem = queryProblem(config);
    if (problem) { fail(problem); return false; }
    ort.env.wasm.wasmPaths = new URL('ort/', location.href).href;
    // every core when the page may share memory between workers (cross-origin isolated: `srwork serve-web` sends
    // COOP/COEP); onnxruntime-web's own default is half of them, at most 4. ?threads=N chooses.
    if (params.get('threads')) ort.env.wasm.numThreads = Number(params.get('threads'));
    else if (self.crossOriginIsolated) ort.env.wasm.numThreads = Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 16));
    const variant = params.get('variant') || config.defaultVariant;
    if (!config.variants[variant]) throw new Error(`no ${variant} model in this folder: ${Object.keys(config.variants).join(', ')}`);
    const select = $('variant');
    for (const [name, v] of Object.entries(config.variants)) select.add(new Option(`${name} (${mb(v.bytes)})`, name, false, name === variant));
    $('model-name').textContent = config.name;
    $('model-info').textContent = `${config.arch}, x${config.scale}, ${(config.parameters / 1e6).toFixed(2)} M parameters; ` +
      `tiles of ${config.tile} px + ${config.tilePad} px context; images up to ${(config.maxPixels / 1e6).toFixed(1)} Mpx`;
    document.title = `${config.name} x${config.scale} — srwork`;
    const t0 = performance.now();
    await session(variant);
    if (config.hasAlphaModel) alphaSession = await ort.InferenceSession.create(config.alphaFile, {executionProviders: ['wasm']});
    const backend = (await backends())[0];
    const threads = ort.env.wasm.numThreads;
    const adapter = await webgpuAdapter();
    $('backend').textContent = backend === 'webgpu' ? `WebGPU${adapter === 'software' ? ' (a software adapter: slow)' : ''}` :
      `WebAssembly, ${threads} thread${threads === 1 ? '' : 's'}${adapter === 'software' ? ' (WebGPU has only a software adapter here)' : ''}`;
    state('ready', {backend, adapter, threads: String(threads), loadSeconds: ((performance.now() - t0) / 1000).toFixed(3)});
    $('status').textContent = 'Ready: pick or drop an image.';
    return true;
  } catch (e) {
    fail(`the model could not be loaded: ${e.message || e}`);
    return false;
  }
}

async function run(blob, name) {
  if (busy) return;
  busy = true;
  $('error').hidden = true; $('compare').hidden = true; $('download').hidden = true;
  state('working', {error: ''});
  try {
    const variant = $('variant').value, tile = params.has('tile') ? Number(params.get('tile')) : config.tile;
    $('status').textContent = `Reading ${name} ...`;
    const img = await readImage(blob, name, config.maxPixels);
    $('before').src = URL.createObjectURL(blob);
    const t0 = performance.now(), sess = await session(variant);
    const out = await upscaleImage(ort, sess, alphaSession, img, config, tile, (i, n) => {
      $('progress').value = i / n; $('status').textContent = `${name}: tile ${i} of ${n}`;
    });
    const seconds = (performance.now() - t0) / 1000;
    const png = await encodePNG(out.pixels, out.width, out.height, out.channels);
    const url = await new Promise((ok, err) => { const r = new FileReader(); r.onload = () => ok(r.result); r.onerror = err; r.readAsDataURL(png); });
    $('result').src = url;
    await $('result').decode();
    const dl = $('download');
    dl.href = url; dl.download = `${name.replace(/\.[^.]*$/, '')}_x${config.scale}.png`; dl.hidden = false;
    dl.textContent = `Download ${dl.download} (${out.width}x${out.height}, ${mb(png.size)})`;
    $('compare').hidden = false;
    $('compare').style.aspectRatio = `${out.width} / ${out.height}`;
    $('status').textContent = `${name}: ${img.width}x${img.height} -> ${out.width}x${out.height} in ${seconds.toFixed(2)} s ` +
      `(${out.plan.tile ? `${out.plan.rows.length * out.plan.cols.length} tiles` : 'whole image'}, ${variant})`;
    state('done', {seconds: seconds.toFixed(3), modelSeconds: out.runSeconds.toFixed(3), tiles: String(out.plan.rows.length * out.plan.cols.length), variant});
  } catch (e) {
    fail(e.message || String(e));
  } finally { busy = false; }
}

function wire() {
  const drop = $('drop');
  $('file').addEventListener('change', (e) => { const f = e.target.files[0]; if (f) run(f, f.name); });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault(); drop.classList.remove('over');
    const f = e.dataTransfer.files[0]; if (f) run(f, f.name);
  });
  $('slider').addEventListener('input', (e) => { $('result').style.clipPath = `inset(0 0 0 ${e.target.value}%)`; });
  $('variant').addEventListener('change', () => { if (params.get('input')) run(lastBlob, lastName); });
}

let lastBlob = null, lastName = null;
async function main() {
  wire();
  if (!(await loadModel())) return;
  const input = params.get('input');
  if (input) {                           // scripted: ?input=URL runs without a click
    lastName = fileName(input);
    try {
      const r = await fetch(input);
      if (!r.ok) throw new Error(`${lastName}: could not be fetched (HTTP ${r.status})`);
      lastBlob = await r.blob();
    } catch (e) { fail(e.message.startsWith(lastName) ? e.message : `${lastName}: could not be fetched (${e.message})`); return; }
    await run(lastBlob, lastName);
  }
}
main();
