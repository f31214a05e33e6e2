// The service worker: it keeps this build of the page (HTML, CSS, scripts, the wasm engine, icons and
// samples) in one cache per version, so that the page opens and runs without a network. The weights are
// kept by the page itself (lib/weights.js, its own cache). precache.js, written by ./build.sh, lists
// every file with its SHA-256 and names the version.
//
// A new version never mixes with the old one:
// - it is installed only when every file the server sends matches the list (a deploy half done fails
//   the install, and the old version stays);
// - once whole, it takes over at once, but every open page is pinned to the version its HTML came
//   from, and all its later requests are answered from that version's cache. New loads get the new
//   version; a version's cache goes once no open page is pinned to it.

importScripts('precache.js');

const { version, files } = self.PRECACHE;
const CACHE_PREFIX = 'stylize-app-';
const CACHE = `${CACHE_PREFIX}${version}`;
const PATHS = new Set(files.map((f) => f.url));

const hex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
const urlOf = (path) => new URL(path, self.registration.scope).href;

// ---------------------------------------------------------------------------------------------
// Pins: page (client id) -> version, one entry each in a cache of their own (the old and the new
// worker both read and write them, and a worker's memory goes when it stops; one entry per page needs
// no read-modify-write).

const PINS_CACHE = 'stylize-pins';
const pinUrl = (id) => urlOf(`__pin__/${encodeURIComponent(id)}`);
/** A page being opened is not among the clients yet: its pin stays this long before it can go. */
const PIN_GRACE_MS = 60000;

async function setPin(id) {
  const pins = await caches.open(PINS_CACHE);
  await pins.put(pinUrl(id), new Response(JSON.stringify({ version, at: Date.now() })));
}

/** The version a page was loaded from, or null. */
async function pinOf(id) {
  try {
    const response = await (await caches.open(PINS_CACHE)).match(pinUrl(id));
    const pin = response ? await response.json() : null;
    return pin && typeof pin.version === 'string' ? pin.version : null;
  } catch {
    return null;
  }
}

/** Drops the pins of closed pages and the caches of versions no open page uses (this one stays). */
async function prune() {
  const open = new Set((await self.clients.matchAll({ includeUncontrolled: true })).map((c) => pinUrl(c.id)));
  const pins = await caches.open(PINS_CACHE);
  const used = new Set([version]);
  const now = Date.now();
  for (const request of await pins.keys()) {
    let pin = null;
    try {
      pin = await (await pins.match(request)).json();
    } catch {
      // unreadable: dropped below
    }
    if (pin && typeof pin.version === 'string' && (open.has(request.url) || now - pin.at < PIN_GRACE_MS)) used.add(pin.version);
    else await pins.delete(request);
  }
  for (const name of await caches.keys()) {
    if (name.startsWith(CACHE_PREFIX) && !used.has(name.slice(CACHE_PREFIX.length))) await caches.delete(name);
  }
}

// ---------------------------------------------------------------------------------------------

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    try {
      for (const { url, sha256 } of files) {
        // Past the HTTP cache: the bytes must be this version's.
        const response = await fetch(new Request(urlOf(url), { cache: 'reload' }));
        if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
        const digest = hex(await crypto.subtle.digest('SHA-256', await response.clone().arrayBuffer()));
        if (digest !== sha256) throw new Error(`${url} is not the file of version ${version} (a deploy in progress?)`);
        await cache.put(urlOf(url), response);
      }
    } catch (e) {
      await caches.delete(CACHE);
      throw e;
    }
    // Whole: take over at once. Open pages keep their own version (pins); new loads get this one.
    await self.skipWaiting();
  })());
});

// Old caches go at a later page load (prune), not in 'activate': activation must not wait for the
// list of clients, which may wait for a page whose navigation waits for this activation.

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  const scope = new URL(self.registration.scope);
  if (url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return;
  let path;
  try {
    path = decodeURIComponent(url.pathname.slice(scope.pathname.length));
  } catch {
    return; // a malformed escape: not one of ours
  }
  const navigation = request.mode === 'navigate';
  if (navigation && (path === '' || path === 'index.html')) path = 'index.html';
  // Anything not in this version (the weights, style URLs, HEAD requests) goes to the network as usual.
  if (!PATHS.has(path)) return;
  event.respondWith((async () => {
    let from = version;
    if (navigation) {
      // A new page: this version's, from now on. Stored before the HTML goes out, so that a newer worker
      // that takes over meanwhile finds it for the page's first request.
      const id = event.resultingClientId;
      if (id) {
        await setPin(id);
        // Not before the answer: listing the clients may wait for this very page.
        event.waitUntil(prune());
      }
    } else if (event.clientId) {
      const pinned = await pinOf(event.clientId);
      if (pinned && (await caches.has(`${CACHE_PREFIX}${pinned}`))) from = pinned;
    }
    const cached = await caches.match(urlOf(path), { cacheName: `${CACHE_PREFIX}${from}` });
    return cached || fetch(request);
  })());
});
