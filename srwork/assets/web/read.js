
// ---- reading an image file as srwork does: channels, alpha, grey, and the size limit before any decoding ----
function checkSize(width, height, name, maxPixels) {
  if (!(width > 0 && height > 0)) throw new Error(`${name}: the image is empty (${width}x${height})`);
  if (width * height > maxPixels)
    throw new Error(`${name}: ${width}x${height} px (${(width * height / 1e6).toFixed(1)} Mpx) is over this page's limit of ` +
                    `${(maxPixels / 1e6).toFixed(1)} Mpx (its result would not fit a browser tab's memory): upscale it with srwork upscale`);
}

function jpegInfo(bytes) {
  // (width, height, components) from a JPEG's frame header: a 1-component JPEG is grey, as PIL reads it ('L')
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  for (let pos = 2; pos + 9 < bytes.length;) {
    if (bytes[pos] !== 0xff) { pos++; continue; }
    const marker = bytes[pos + 1];
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0xff) { pos += marker === 0xff ? 1 : 2; continue; }
    const len = (bytes[pos + 2] << 8) | bytes[pos + 3];
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker))
      return {height: (bytes[pos + 5] << 8) | bytes[pos + 6], width: (bytes[pos + 7] << 8) | bytes[pos + 8], components: bytes[pos + 9]};
    pos += 2 + len;
  }
  return null;
}

async function decodeWithBrowser(blob, name, maxPixels, grey) {
  // Formats other than PNG (and interlaced PNGs): the browser decodes; no colour conversion, EXIF orientation applied as srwork does
  let bitmap;
  try { bitmap = await createImageBitmap(blob, {colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image'}); }
  catch (e) { throw new Error(`${name}: unreadable image: the browser can't decode it (${blob.type || 'unknown type'}, ${blob.size} bytes)`); }
  const {width, height} = bitmap;
  checkSize(width, height, name, maxPixels);
  const canvas = new OffscreenCanvas(width, height), ctx = canvas.getContext('2d', {willReadFrequently: true});
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const data = ctx.getImageData(0, 0, width, height).data, n = width * height;
  const rgb = new Float32Array(3 * n);
  let translucent = false;
  for (let p = 0; p < n; p++) {
    rgb[p] = data[4 * p] / 255; rgb[n + p] = data[4 * p + 1] / 255; rgb[2 * n + p] = data[4 * p + 2] / 255;
    if (data[4 * p + 3] !== 255) translucent = true;
  }
  let alpha = null;
  if (translucent) { alpha = new Float32Array(n); for (let p = 0; p < n; p++) alpha[p] = data[4 * p + 3] / 255; }
  return {width, height, rgb, alpha, grey, bits: 8};
}

async function readImage(blob, name, maxPixels) {
  // {width, height, rgb, alpha, grey}: PNG read here exactly; JPEG, WebP, GIF, BMP by the browser; size checked from the header first
  const bytes = new Uint8Array(await blob.arrayBuffer());
  if (!bytes.length) throw new Error(`${name}: the file is empty`);
  const png = pngHeader(bytes, name);
  if (png) { const img = await decodePNG(bytes, name, maxPixels); if (img) return img; }
  const jpeg = jpegInfo(bytes);
  if (jpeg) checkSize(jpeg.width, jpeg.height, name, maxPixels);
  if (bytes[0] === 0x47 && bytes[1] === 0x49 && bytes[2] === 0x46) {          // GIF: refuse animations, as srwork does
    const frames = gifFrames(bytes);
    if (frames > 1) throw new Error(`${name}: an animated GIF (${frames} frames): upscale its frames one by one`);
  }
  return decodeWithBrowser(new Blob([bytes], {type: blob.type}), name, maxPixels, jpeg ? jpeg.components === 1 : false);
}

function gifFrames(b) {
  // How many images a GIF holds (image descriptors after its header and colour table)
  let pos = 13 + ((b[10] & 0x80) ? 3 * (2 << (b[10] & 7)) : 0), frames = 0;
  const skipBlocks = () => { while (pos < b.length && b[pos] !== 0) pos += b[pos] + 1; pos++; };
  while (pos < b.length) {
    const t = b[pos];
    if (t === 0x2c) {
      frames++;
      const packed = b[pos + 9];
      pos += 10 + ((packed & 0x80) ? 3 * (2 << (packed & 7)) : 0) + 1;      // descriptor, local colour table, LZW size
      skipBlocks();
    } else if (t === 0x21) { pos += 2; skipBlocks(); }
    else break;
  }
  return frames;
}
