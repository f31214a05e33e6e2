// Downloading the VGG19 weights file (about 13 MB) once: a progress bar while it comes, and the Cache API
// so that the next visit starts without downloading. The file's own checksum is verified by the engine
// (Weights::from_bytes in wasm); a cached copy that fails it is dropped and fetched again.

import { MAX_FETCH_BYTES, readCapped } from './images.js';

const CACHE_NAME = 'stylize-weights-v1';

async function openCache() {
  // `caches` is missing outside secure contexts (plain http on another host) and may throw in private modes.
  try {
    return typeof caches === 'undefined' ? null : await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
}

/** How long the server may take to answer the freshness check before the cached copy is used. */
const HEAD_TIMEOUT_MS = 5000;

/** Whether a cached response still matches the file on the server; true when the server cannot say
 *  (offline, or no answer within HEAD_TIMEOUT_MS on a flaky network: the cached copy is the best we have). */
async function cacheStillFresh(cached, url) {
  let head;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), HEAD_TIMEOUT_MS);
  try {
    head = await fetch(url, { method: 'HEAD', cache: 'no-store', signal: abort.signal });
  } catch {
    return true;
  } finally {
    clearTimeout(timer);
  }
  return !head.ok || cacheIsFresh(cached.headers, head.headers);
}

/** Whether a body is sent content-encoded (gzip, br…): then Content-Length counts the encoded bytes. */
const encoded = (headers) => {
  const encoding = (headers.get('Content-Encoding') || '').trim().toLowerCase();
  return encoding !== '' && encoding !== 'identity';
};

/**
 * The freshness decision, from the cached entry's headers and those of a HEAD of the file: the first
 * validator both have decides (ETag, then Last-Modified); the length only when the HEAD is not
 * content-encoded (a compressing host sends the gzip length, never the cached decoded length). True
 * when nothing can be compared.
 */
export function cacheIsFresh(cached, head) {
  // Weak or strong, and Apache's "-gzip"-style suffix of a compressed variant: the same file.
  const etag = (h) => {
    const value = h.get('ETag');
    return value === null ? null : value.trim().replace(/^W\//, '').replace(/-(gzip|br|deflate|zstd)"$/, '"');
  };
  for (const read of [etag, (h) => h.get('Last-Modified')]) {
    const a = read(cached);
    const b = read(head);
    if (a !== null && b !== null) return a === b;
  }
  // Stored as X-Weights-Length: a synthetic Response has no meaningful Content-Length.
  const length = head.get('Content-Length');
  const cachedLength = cached.get('X-Weights-Length');
  if (length === null || cachedLength === null || encoded(head)) return true;
  return length === cachedLength;
}

/**
 * Resolves to {bytes: Uint8Array, fromCache: boolean, cached: boolean} (`cached`: a copy is in the cache now). `onProgress(received, total)` is called while
 * downloading (`total` is 0 when the server does not say).
 */
export async function fetchWeights(url, onProgress = () => {}) {
  const absolute = new URL(url, location.href).href;
  const cache = await openCache();
  if (cache) {
    const cached = await cache.match(absolute);
    if (cached && (await cacheStillFresh(cached, absolute))) {
      const bytes = new Uint8Array(await cached.arrayBuffer());
      onProgress(bytes.length, bytes.length);
      return { bytes, fromCache: true, cached: true };
    }
  }
  let response;
  try {
    response = await fetch(absolute, { cache: 'no-cache' });
  } catch (e) {
    throw new Error(`could not download the weights from ${absolute}: ${e.message}`);
  }
  if (!response.ok) {
    const hint = response.status === 404
      ? ' The file is made by ./build.sh (it copies weights/vgg19.q8.bin next to the page).'
      : '';
    throw new Error(`could not download the weights from ${absolute}: HTTP ${response.status} ${response.statusText}.${hint}`);
  }
  const bytes = await readCapped(response, MAX_FETCH_BYTES, 'the weights file', onProgress);
  let cached = false;
  if (cache) {
    const headers = new Headers({ 'Content-Type': 'application/octet-stream', 'X-Weights-Length': String(bytes.length) });
    for (const name of ['ETag', 'Last-Modified']) {
      const value = response.headers.get(name);
      if (value !== null) headers.set(name, value);
    }
    try {
      await cache.put(absolute, new Response(bytes, { headers }));
      cached = true;
    } catch {
      // Quota exceeded or storage disabled: the page still works, it downloads again next time.
    }
  }
  return { bytes, fromCache: false, cached };
}

/** Drops the cached copy (after it failed verification), so that the next load downloads it again. */
export async function forgetWeights(url) {
  const cache = await openCache();
  if (cache) await cache.delete(new URL(url, location.href).href);
}
