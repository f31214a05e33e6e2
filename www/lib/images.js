// Turning whatever the user gives us (a file, a pasted blob, a URL) into RGBA8 pixels for the engine.
//
// Rules: never reject an image for being large (downscale it), give a plain reason for everything that
// is not a usable image, honour EXIF orientation, and composite transparency over white (the network
// sees RGB only; white is what a transparent PNG looks like on a page).

/** Longest side kept from an input. The engine resizes again to the chosen output size; this only
 *  bounds memory (a 6000x4000 photo would be 96 MB of RGBA) and the upload to the GPU. */
export const MAX_INPUT_SIDE = 2048;

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
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const format = sniffFormat(bytes);
  if (!format) {
    const type = blob.type ? ` (its type is ${blob.type})` : '';
    throw new ImageError(`${label} is not an image${type}: use a PNG, JPEG, WebP, GIF, BMP or AVIF file.`);
  }
  let bitmap;
  try {
    const typed = new Blob([bytes], { type: blob.type || '' });
    bitmap = await createImageBitmap(typed, { imageOrientation: 'from-image', premultiplyAlpha: 'none' });
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
    const scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    if (scale < 1) notes.push(`downscaled from ${bitmap.width}x${bitmap.height} to ${width}x${height}`);
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bitmap, 0, 0, width, height);
    const rgba = ctx.getImageData(0, 0, width, height).data;
    if (compositeOverWhite(rgba)) notes.push('transparent areas were placed on white');
    return { name, width, height, originalWidth: bitmap.width, originalHeight: bitmap.height, rgba, notes };
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
  const blob = await response.blob();
  const name = decodeURIComponent(parsed.pathname.split('/').pop() || parsed.hostname);
  return decodeImage(blob, name, maxSide);
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
