
// ---- PNG: read and written here, byte-exact (a canvas would premultiply alpha and round semi-transparent colours) ----
const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
const PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4};     // colour type -> samples per pixel

async function zlibStream(bytes, transform) {
  const stream = new Blob([bytes]).stream().pipeThrough(transform);
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
const inflate = (bytes) => zlibStream(bytes, new DecompressionStream('deflate'));
const deflate = (bytes) => zlibStream(bytes, new CompressionStream('deflate'));

function pngChunks(bytes, name) {
  // The chunks of a PNG file: [type, data] pairs up to IEND.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), chunks = [];
  for (let pos = 8; pos + 8 <= bytes.length;) {
    const len = view.getUint32(pos), type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (pos + 12 + len > bytes.length) throw new Error(`${name}: truncated PNG: its ${type} chunk runs past the end of the file`);
    chunks.push([type, bytes.subarray(pos + 8, pos + 8 + len)]);
    if (type === 'IEND') break;
    pos += 12 + len;
  }
  return chunks;
}

function pngHeader(bytes, name) {
  // Width, height, bit depth, colour type and interlace of a PNG, from its IHDR (nothing decoded).
  if (bytes.length < 33 || PNG_SIGNATURE.some((v, i) => bytes[i] !== v)) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') throw new Error(`${name}: damaged PNG: no IHDR chunk`);
  return {width: v.getUint32(16), height: v.getUint32(20), depth: bytes[24], colourType: bytes[25], interlace: bytes[28]};
}

function unfilter(raw, height, stride, bpp, name) {
  // Undo PNG's per-row filters (None, Sub, Up, Average, Paeth) into rows of `stride` bytes.
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)], src = y * (stride + 1) + 1, row = y * stride, up = row - stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? out[row + x - bpp] : 0, b = y ? out[up + x] : 0, c = x >= bpp && y ? out[up + x - bpp] : 0;
      let p;
      switch (f) {
        case 0: p = 0; break;
        case 1: p = a; break;
        case 2: p = b; break;
        case 3: p = (a + b) >> 1; break;
        case 4: { const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
                  p = pa <= pb && pa <= pc ? a : pb <= pc ? b : c; break; }
        default: throw new Error(`${name}: damaged PNG: row ${y} has filter type ${f}`);
      }
      out[row + x] = (raw[src + x] + p) & 255;
    }
  }
  return out;
}

async function decodePNG(bytes, name, maxPixels) {
  // An image {width, height, rgb (planar float32 in [0, 1]), alpha (float32 or null), grey} read exactly as srwork reads it, or null for an interlaced PNG (left to the browser).
  const h = pngHeader(bytes, name);
  const {width, height, depth, colourType} = h;
  checkSize(width, height, name, maxPixels);
  if (h.interlace) return null;
  const chans = PNG_CHANNELS[colourType];
  if (!chans || ![1, 2, 4, 8, 16].includes(depth)) throw new Error(`${name}: damaged PNG: colour type ${colourType}, bit depth ${depth}`);
  const chunks = pngChunks(bytes, name), get = (t) => (chunks.find(c => c[0] === t) || [])[1];
  const idat = chunks.filter(c => c[0] === 'IDAT').map(c => c[1]);
  if (!idat.length) throw new Error(`${name}: damaged PNG: no image data (IDAT)`);
  let raw;
  try { raw = await inflate(new Uint8Array(await new Blob(idat).arrayBuffer())); }
  catch (e) { raw = null; }
  const stride = Math.ceil(width * chans * depth / 8), need = height * (stride + 1);
  if (raw === null) throw new Error(`${name}: damaged PNG: its image data does not decompress`);
  if (raw.length < need) throw new Error(`${name}: truncated PNG: its image data stops ${need - raw.length} bytes short`);
  const rows = unfilter(raw, height, stride, Math.max(1, chans * depth / 8), name);
  const top = 2 ** depth - 1, n = width * height;
  const sample = (y, i) => {          // sample i (0-based, across the row) of row y, as an integer
    if (depth === 8) return rows[y * stride + i];
    if (depth === 16) return (rows[y * stride + 2 * i] << 8) | rows[y * stride + 2 * i + 1];
    const bit = i * depth, byte = rows[y * stride + (bit >> 3)];
    return (byte >> (8 - depth - (bit & 7))) & top;
  };
  const rgb = new Float32Array(3 * n), plte = get('PLTE'), trns = get('tRNS');
  let alpha = (colourType === 4 || colourType === 6 || trns) ? new Float32Array(n) : null;
  if (colourType === 3 && !plte) throw new Error(`${name}: damaged PNG: a palette image without its palette`);
  const key = trns && colourType !== 3 ? Array.from({length: trns.length / 2}, (_, i) => (trns[2 * i] << 8) | trns[2 * i + 1]) : null;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const p = y * width + x, s = x * chans;
    let r, g, b, a = 1;
    if (colourType === 3) {
      const i = sample(y, x);
      r = plte[3 * i] / 255; g = plte[3 * i + 1] / 255; b = plte[3 * i + 2] / 255;
      if (trns) a = i < trns.length ? trns[i] / 255 : 1;
    } else if (colourType === 0 || colourType === 4) {
      const v = sample(y, s);
      r = g = b = v / top;
      if (colourType === 4) a = sample(y, s + 1) / top;
      else if (key) a = v === key[0] ? 0 : 1;
    } else {
      const vr = sample(y, s), vg = sample(y, s + 1), vb = sample(y, s + 2);
      r = vr / top; g = vg / top; b = vb / top;
      if (colourType === 6) a = sample(y, s + 3) / top;
      else if (key) a = vr === key[0] && vg === key[1] && vb === key[2] ? 0 : 1;
    }
    rgb[p] = r; rgb[n + p] = g; rgb[2 * n + p] = b;
    if (alpha) alpha[p] = a;
  }
  return {width, height, rgb, alpha, grey: colourType === 0 || colourType === 4, bits: depth === 16 ? 16 : 8};
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; t[n] = c >>> 0; }
  return t;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const out = new Uint8Array(12 + data.length), v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

async function encodePNG(pixels, width, height, channels) {
  // A PNG file (Blob) of 8-bit interleaved `pixels` with 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels; rows Sub-filtered.
  const stride = width * channels, raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1), row = y * stride;
    raw[o] = 1;                                          // Sub: a photo's neighbours are alike, so it deflates well
    for (let x = 0; x < stride; x++) raw[o + 1 + x] = (pixels[row + x] - (x >= channels ? pixels[row + x - channels] : 0)) & 255;
  }
  const ihdr = new Uint8Array(13), v = new DataView(ihdr.buffer);
  v.setUint32(0, width); v.setUint32(4, height);
  ihdr[8] = 8; ihdr[9] = {1: 0, 2: 4, 3: 2, 4: 6}[channels];
  return new Blob([new Uint8Array(PNG_SIGNATURE), pngChunk('IHDR', ihdr), pngChunk('IDAT', await deflate(raw)),
                   pngChunk('IEND', new Uint8Array(0))], {type: 'image/png'});
}
