// Turning whatever the user gives us (a file, a pasted blob, a URL) into RGBA8 pixels for the engine.
//
// Rules: never reject an image for being large (downscale it), give a plain reason for everything that
// is not a usable image, honour EXIF orientation, and composite transparency over white (the network
// sees RGB only; white is what a transparent PNG looks like on a page).

/** Longest side kept from an input. The engine resizes again to the chosen output size; this only
 *  bounds memory (a 6000x4000 photo would be 96 MB of RGBA) and the upload to the GPU. */
export const MAX_INPUT_SIDE = 2048;

/** Inputs declaring more pixels than this are refused before any decode: a small file can declare
 *  16384x16384 (1 GiB of RGBA), and the browser may decode at full size even when asked for less. */
export const MAX_INPUT_PIXELS = 50_000_000;
/** The cap in force: the page sets it from the engine's own limit (StyleTransfer.limits().maxInputPixels)
 *  at start, so that the page and the CLI refuse the same images; the constant above is for node tests. */
let inputPixelCap = MAX_INPUT_PIXELS;
export function setInputPixelCap(pixels) {
  if (Number.isFinite(pixels) && pixels > 0) inputPixelCap = pixels;
}

/** Bytes read from a URL (or a file) at most: a link must not make the page download without end. */
export const MAX_FETCH_BYTES = 64 * 1024 * 1024;

/** An input problem worded for the person who chose the file. */
export class ImageError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ImageError';
  }
}

const SIGNATURES = [
  ['PNG', [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  ['JPEG', [0xff, 0xd8, 0xff]],
  ['GIF', [0x47, 0x49, 0x46, 0x38]],
  ['BMP', [0x42, 0x4d]],
  ['ICO', [0x00, 0x00, 0x01, 0x00]],
];

/** The image format named by the file's first bytes, or null (we do not trust extensions or MIME types). */
export function sniffFormat(bytes) {
  for (const [name, sig] of SIGNATURES) {
    if (bytes.length >= sig.length && sig.every((b, i) => bytes[i] === b)) return name;
  }
  const ascii = (from, to) => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'WebP';
  if (bytes.length >= 12 && ascii(4, 8) === 'ftyp' && /avi[fs]|mif1|heic|heix/.test(ascii(8, 12))) return 'AVIF/HEIF';
  const head = ascii(0, Math.min(bytes.length, 256)).trimStart().toLowerCase();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) return 'SVG';
  return null;
}

/** EXIF orientation (1..8) of a JPEG, or 1 when there is none. Only used to tell the user what happened:
 *  the browser applies it (createImageBitmap with imageOrientation 'from-image'). */
export function exifOrientation(bytes) {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 2;
  while (pos + 4 <= bytes.length && bytes[pos] === 0xff) {
    const marker = bytes[pos + 1];
    const length = view.getUint16(pos + 2);
    if (marker === 0xda || length < 2) break; // start of scan: no more metadata
    const exif = pos + 4;
    if (marker === 0xe1 && exif + 14 <= bytes.length &&
        String.fromCharCode(...bytes.subarray(exif, exif + 4)) === 'Exif') {
      const tiff = exif + 6;
      const little = bytes[tiff] === 0x49; // "II" little endian, "MM" big endian
      const u16 = (o) => view.getUint16(o, little);
      const u32 = (o) => view.getUint32(o, little);
      if (tiff + 8 > bytes.length) return 1;
      const ifd = tiff + u32(tiff + 4);
      if (ifd + 2 > bytes.length) return 1;
      const entries = u16(ifd);
      for (let i = 0; i < entries; i++) {
        const entry = ifd + 2 + i * 12;
        if (entry + 12 > bytes.length) return 1;
        if (u16(entry) === 0x0112) {
          const value = u16(entry + 8);
          return value >= 1 && value <= 8 ? value : 1;
        }
      }
      return 1;
    }
    pos += 2 + length;
  }
  return 1;
}

const ORIENTATION_WORDS = {
  2: 'mirrored', 3: 'rotated 180°', 4: 'flipped vertically', 5: 'mirrored and rotated 90°',
  6: 'rotated 90° clockwise', 7: 'mirrored and rotated 270°', 8: 'rotated 90° counter-clockwise',
};

const megapixels = (n) => `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} megapixels`;

/**
 * The size an image declares in its header, read before any decode: {format, width, height}, or null for
 * SVG (no pixel size; browsers refuse SVG in createImageBitmap anyway). Throws an ImageError when the
 * format is unknown, the size is zero or the header is truncated or damaged (worded to follow the file's
 * name: "has zero width…"); never reads past the bytes given.
 */
export function imageHeaderSize(bytes, format = sniffFormat(bytes)) {
  if (!format) throw new ImageError('is not a PNG, JPEG, WebP, GIF, BMP or AVIF file (unknown first bytes)');
  if (format === 'SVG') return null;
  const damaged = (why) => new ImageError(`has a ${format} header that is ${why}: the file is damaged or truncated`);
  const need = (end) => {
    if (end > bytes.length) throw damaged(`cut short (${bytes.length} bytes)`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at) => String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
  let width;
  let height;
  if (format === 'PNG') {
    // IHDR is the first chunk: width and height as big-endian u32.
    need(24);
    if (tag(12) !== 'IHDR') throw damaged('missing its IHDR chunk');
    width = view.getUint32(16);
    height = view.getUint32(20);
  } else if (format === 'JPEG') {
    [width, height] = jpegSize(bytes, view, need, damaged);
  } else if (format === 'GIF') {
    need(10); // the logical screen, little-endian u16
    width = view.getUint16(6, true);
    height = view.getUint16(8, true);
  } else if (format === 'WebP') {
    need(16);
    const chunk = tag(12);
    need(chunk === 'VP8L' ? 25 : 30);
    if (chunk === 'VP8 ') {
      // Lossy: a 3-byte frame tag, the start code 9d 01 2a, then 14-bit width and height.
      if (bytes[23] !== 0x9d || bytes[24] !== 0x01 || bytes[25] !== 0x2a) throw damaged('missing the VP8 start code');
      width = view.getUint16(26, true) & 0x3fff;
      height = view.getUint16(28, true) & 0x3fff;
    } else if (chunk === 'VP8L') {
      // Lossless: signature 0x2f, then width-1 and height-1 in 14 bits each.
      if (bytes[20] !== 0x2f) throw damaged('missing the VP8L signature');
      const bits = view.getUint32(21, true);
      width = (bits & 0x3fff) + 1;
      height = ((bits >>> 14) & 0x3fff) + 1;
    } else if (chunk === 'VP8X') {
      // Extended: the canvas width-1 and height-1 as 24-bit numbers.
      width = (bytes[24] | (bytes[25] << 8) | (bytes[26] << 16)) + 1;
      height = (bytes[27] | (bytes[28] << 8) | (bytes[29] << 16)) + 1;
    } else {
      throw damaged(`starting with an unknown chunk "${chunk.replace(/[^ -~]/g, '?')}"`);
    }
  } else if (format === 'BMP') {
    need(26);
    if (view.getUint32(14, true) === 12) {
      width = view.getUint16(18, true); // the old OS/2 header
      height = view.getUint16(20, true);
    } else {
      width = Math.abs(view.getInt32(18, true));
      height = Math.abs(view.getInt32(22, true)); // negative: stored top-down
    }
  } else if (format === 'ICO') {
    [width, height] = icoSize(bytes, view, need, damaged);
  } else {
    [width, height] = ispeSize(bytes, view, tag, damaged); // AVIF/HEIF
  }
  if (width === 0 || height === 0) {
    throw new ImageError(`has zero width or height (${width}x${height})`);
  }
  return { format, width, height };
}

/** A JPEG's size from its first SOFn marker (segments before it are skipped by their lengths). */
function jpegSize(bytes, view, need, damaged) {
  let pos = 2;
  for (;;) {
    need(pos + 2);
    if (bytes[pos] !== 0xff) throw damaged(`broken at byte ${pos} (no marker)`);
    const marker = bytes[pos + 1];
    if (marker === 0xff) {
      pos += 1; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      pos += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) throw damaged('without a frame size (no SOF marker before the image data)');
    need(pos + 4);
    const length = view.getUint16(pos + 2);
    if (length < 2) throw damaged(`broken at byte ${pos} (segment length ${length})`);
    // SOF0..SOF15 except DHT (c4), JPG (c8) and DAC (cc): precision, height, width.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      need(pos + 9);
      return [view.getUint16(pos + 7), view.getUint16(pos + 5)];
    }
    pos += 2 + length;
  }
}

/** The largest image of an icon file (an entry may be a whole PNG, with its own IHDR). */
function icoSize(bytes, view, need, damaged) {
  need(6);
  const count = view.getUint16(4, true);
  if (count === 0) throw damaged('listing no images');
  let best = [0, 0];
  for (let i = 0; i < count; i++) {
    const entry = 6 + 16 * i;
    need(entry + 16);
    let size = [bytes[entry] || 256, bytes[entry + 1] || 256];
    const offset = view.getUint32(entry + 12, true);
    const inner = bytes.subarray(Math.min(offset, bytes.length));
    if (sniffFormat(inner) === 'PNG') {
      const png = imageHeaderSize(inner, 'PNG');
      size = [png.width, png.height];
    }
    if (size[0] * size[1] > best[0] * best[1]) best = size;
  }
  return best;
}

/** AVIF/HEIF: the largest 'ispe' (image spatial extents) property; a grid image's is the whole picture. */
function ispeSize(bytes, view, tag, damaged) {
  let best = null;
  for (let at = 4; at + 16 <= bytes.length; at++) {
    if (bytes[at] !== 0x69 || tag(at) !== 'ispe') continue; // 'i' first: a cheap scan
    const size = [view.getUint32(at + 8), view.getUint32(at + 12)];
    if (!best || size[0] * size[1] > best[0] * best[1]) best = size;
  }
  if (!best) throw damaged('missing its image size (no ispe box)');
  return best;
}

/**
 * The body of a fetch response, refusing more than `cap` bytes: at once when Content-Length says so,
 * otherwise by counting while reading (the stream is cancelled as soon as it is over). `what` names
 * the source in the message; `onProgress(received, total)` follows the download (total: 0 when unknown).
 */
export async function readCapped(response, cap, what, onProgress = () => {}) {
  const limit = cap % 1048576 === 0 ? `${cap / 1048576} MiB` : `${cap} bytes`;
  const tooBig = (size) => new ImageError(`${what} ${size}, more than the ${limit} the page reads from a URL: ` +
    'use a smaller image.');
  const declared = Number(response.headers.get('Content-Length'));
  // A compressed body is longer than its Content-Length once decoded, never shorter: the early refusal holds.
  if (declared > cap) {
    if (response.body) response.body.cancel().catch(() => {});
    throw tooBig(`is ${declared} bytes`);
  }
  if (!response.body || !response.body.getReader) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length > cap) throw tooBig(`is ${bytes.length} bytes`);
    onProgress(bytes.length, bytes.length);
    return bytes;
  }
  // A compressed body's Content-Length is not its decoded length: no total then.
  const total = response.headers.get('Content-Encoding') ? 0 : declared || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    received += value.length;
    onProgress(received, total);
    if (received > cap) {
      reader.cancel().catch(() => {});
      throw tooBig(`is larger (stopped after ${received} bytes)`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** The file name a URL ends with, for messages: decoded when it can be, as written when it holds a
 *  malformed escape such as a bare "%" (decodeURIComponent would throw). */
export function nameFromUrl(parsed) {
  const last = parsed.pathname.split('/').pop() || parsed.hostname;
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/**
 * Decodes an image blob into RGBA8 pixels, downscaled to at most `maxSide` on the longest side.
 * Resolves to {name, width, height, originalWidth, originalHeight, rgba, notes}; `notes` says in words what
 * was done to the image (downscaled, rotated, transparency). Rejects with an ImageError that says why the
 * file cannot be used.
 */
export async function decodeImage(blob, name, maxSide = MAX_INPUT_SIDE) {
  const label = `"${name}"`;
  if (!blob || blob.size === 0) {
    throw new ImageError(`${label} is empty (0 bytes): choose another file.`);
  }
  if (blob.size > MAX_FETCH_BYTES) {
    throw new ImageError(`${label} is ${blob.size} bytes, more than the ${MAX_FETCH_BYTES / 1048576} MiB the page ` +
      'reads: use a smaller file.');
  }
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const format = sniffFormat(bytes);
  if (!format) {
    const type = blob.type ? ` (its type is ${blob.type})` : '';
    throw new ImageError(`${label} is not an image${type}: use a PNG, JPEG, WebP, GIF, BMP or AVIF file.`);
  }
  // The size from the header first: a decompression bomb is refused before the browser decodes it.
  let declared;
  try {
    declared = imageHeaderSize(bytes, format);
  } catch (e) {
    throw new ImageError(`${label} ${e.message}: choose another image.`);
  }
  const options = { imageOrientation: 'from-image', premultiplyAlpha: 'none' };
  let resizedFrom = null; // [width, height] of the picture decoded straight to a smaller size
  if (declared) {
    const pixels = declared.width * declared.height;
    if (pixels > inputPixelCap) {
      throw new ImageError(`${label} is ${declared.width}x${declared.height} (${megapixels(pixels)}), more than the ` +
        `${megapixels(inputPixelCap)} the page accepts: downscale it first.`);
    }
    // EXIF orientations 5..8 turn the picture by 90°; the resize applies to the turned picture.
    const turned = format === 'JPEG' && exifOrientation(bytes) >= 5;
    const [w, h] = turned ? [declared.height, declared.width] : [declared.width, declared.height];
    const scale = maxSide / Math.max(w, h);
    if (scale < 1) {
      // Decoded straight to the kept size: the full-size bitmap never exists in the page.
      options.resizeWidth = Math.max(1, Math.round(w * scale));
      options.resizeHeight = Math.max(1, Math.round(h * scale));
      options.resizeQuality = 'high';
      resizedFrom = [w, h];
    }
  }
  let bitmap;
  try {
    const typed = new Blob([bytes], { type: blob.type || '' });
    bitmap = await createImageBitmap(typed, options);
  } catch (e) {
    throw new ImageError(`${label} looks like a ${format} file but the browser could not decode it: ` +
      `it is damaged, truncated or has zero size (${e && e.message ? e.message : e}).`);
  }
  const notes = [];
  try {
    if (bitmap.width === 0 || bitmap.height === 0) {
      throw new ImageError(`${label} has zero width or height (${bitmap.width}x${bitmap.height}): choose another image.`);
    }
    const orientation = format === 'JPEG' ? exifOrientation(bytes) : 1;
    if (orientation !== 1) notes.push(`${ORIENTATION_WORDS[orientation]} as its EXIF orientation says`);
    // Already decoded at the kept size when the header told the size; otherwise (SVG) scaled here.
    const [originalWidth, originalHeight] = resizedFrom || [bitmap.width, bitmap.height];
    const scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    if (width !== originalWidth || height !== originalHeight) {
      notes.push(`downscaled from ${originalWidth}x${originalHeight} to ${width}x${height}`);
    }
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bitmap, 0, 0, width, height);
    const rgba = ctx.getImageData(0, 0, width, height).data;
    if (compositeOverWhite(rgba)) notes.push('transparent areas were placed on white');
    return { name, width, height, originalWidth, originalHeight, rgba, notes };
  } finally {
    bitmap.close();
  }
}

/** Blends every pixel with alpha < 255 over white, in place, and makes it opaque. Returns whether any was. */
export function compositeOverWhite(rgba) {
  let any = false;
  for (let i = 3; i < rgba.length; i += 4) {
    const a = rgba[i];
    if (a === 255) continue;
    any = true;
    const keep = a / 255;
    const white = 255 * (1 - keep);
    rgba[i - 3] = Math.round(rgba[i - 3] * keep + white);
    rgba[i - 2] = Math.round(rgba[i - 2] * keep + white);
    rgba[i - 1] = Math.round(rgba[i - 1] * keep + white);
    rgba[i] = 255;
  }
  return any;
}

/** Fetches an image URL with CORS (as a share link's style URL) and decodes it. */
export async function fetchImage(url, maxSide = MAX_INPUT_SIDE) {
  let parsed;
  try {
    parsed = new URL(url, location.href);
  } catch {
    throw new ImageError(`"${url}" is not a valid URL.`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new ImageError(`"${url}" is not an http(s) URL.`);
  }
  // The page's Content-Security-Policy (index.html) lets plain http through only from this site and localhost.
  const local = parsed.hostname === 'localhost' || parsed.hostname === '127.0.0.1' || parsed.origin === location.origin;
  if (parsed.protocol === 'http:' && !local) {
    throw new ImageError(`"${url}" is a plain http URL: the page fetches images over https only (or from localhost).`);
  }
  let response;
  try {
    response = await fetch(parsed.href, { mode: 'cors', credentials: 'omit', referrerPolicy: 'no-referrer' });
  } catch (e) {
    throw new ImageError(`could not fetch ${parsed.href}: the server is unreachable or does not allow ` +
      `cross-origin (CORS) requests (${e.message}).`);
  }
  if (!response.ok) {
    throw new ImageError(`could not fetch ${parsed.href}: HTTP ${response.status} ${response.statusText}.`);
  }
  const bytes = await readCapped(response, MAX_FETCH_BYTES, parsed.href);
  const blob = new Blob([bytes], { type: response.headers.get('Content-Type') || '' });
  return decodeImage(blob, nameFromUrl(parsed), maxSide);
}

/** Draws RGBA8 pixels into a (2D) canvas at their own size; CSS scales it for display. */
export function drawPixels(canvas, rgba, width, height) {
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  ctx.putImageData(new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, width * height * 4), width, height), 0, 0);
}

/** Encodes RGBA8 pixels as a PNG blob. */
export async function encodePng(rgba, width, height) {
  const canvas = document.createElement('canvas');
  drawPixels(canvas, rgba, width, height);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
  if (!blob) throw new Error('the browser could not encode the PNG');
  return blob;
}
