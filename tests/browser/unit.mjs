// Unit tests of the page's plain JS (no browser, no wasm): the test server, the page's CSP, the loss plot's
// downsampling, image headers and byte caps, the seed's digits, the simple level's choices, the weights cache check.
//
//   node tests/browser/unit.mjs
//
// Prints `N passed, M failed` and exits non-zero when a test fails. The test images come from ../shared/images.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { check, finish, test } from './runner.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WWW = path.join(ROOT, 'www');
const IMAGES = path.resolve(ROOT, '../shared/images');

/** A page module (www/lib/NAME), imported inside each test: one that fails to load fails its tests only. */
const lib = (name) => import(pathToFileURL(path.join(WWW, 'lib', name)).href);

/** Calls fn and returns what it threw (or fails when it did not throw). */
function thrown(fn, what) {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error(`${what}: did not throw`);
}

// ---------------------------------------------------------------------------------------------
// 1. Static servers: malformed paths and paths outside the root.

/** Sends one raw HTTP request (the path exactly as given: no client normalises it). Resolves to
 *  {status, body}, or to 'closed' when the server dropped the connection without an answer. */
function rawGet(port, target) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.setTimeout(5000, () => {
      socket.destroy();
      reject(new Error(`no answer to GET ${target} within 5 s`));
    });
    socket.on('connect', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
    socket.on('data', (d) => { data += d.toString('latin1'); });
    socket.on('error', () => resolve('closed'));
    socket.on('close', () => {
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      resolve(m ? { status: Number(m[1]), body: data.slice(data.indexOf('\r\n\r\n') + 4) } : 'closed');
    });
  });
}

/** A temporary tree: root www/ (a file, a folder with index.html) and a sibling www2/secret.txt. */
function makeTree() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stylize-serve-'));
  fs.mkdirSync(path.join(dir, 'www/sub'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'www2'));
  fs.writeFileSync(path.join(dir, 'www/hello.txt'), 'hello');
  fs.writeFileSync(path.join(dir, 'www/sub/index.html'), '<p>sub index</p>');
  fs.writeFileSync(path.join(dir, 'www2/secret.txt'), 'SECRET');
  return dir;
}

const HOSTILE = ['/%', '/..%2fwww2/secret.txt', '/%2e%2e/www2/secret.txt', '/../www2/secret.txt', '/%2e%2e%2fwww2/secret.txt',
  '/%00', '/hello.txt%00.png', '//', '/..%5cwww2/secret.txt', '/%ff'];

/** The hostile requests: none may serve the secret, and the server must answer a normal request after each. */
async function checkServer(port, { strictStatus }) {
  for (const target of HOSTILE) {
    const r = await rawGet(port, target);
    check(r === 'closed' || !r.body.includes('SECRET'), `GET ${target} served the sibling folder's file`);
    if (strictStatus) {
      check(r !== 'closed' && [400, 403, 404].includes(r.status), `GET ${target}: ${r === 'closed' ? 'no answer' : r.status}, expected 400/403/404`);
    }
    const alive = await rawGet(port, '/hello.txt');
    check(alive !== 'closed' && alive.status === 200 && alive.body === 'hello', `the server stopped answering after GET ${target}`);
  }
  const sub = await rawGet(port, '/sub/');
  check(sub !== 'closed' && sub.status === 200 && sub.body.includes('sub index'), 'a folder does not serve its index.html');
}

/** Starts a server as a child process (a crash is then a failed test, not the end of this run) and
 *  resolves to {port, child} once it prints its port. */
function startServer(command, args) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${command} did not start: ${out}`)), 10000);
    const read = (d) => {
      out += d;
      const m = /(?:port |localhost:)(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), child });
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', (d) => { out += d; }); // python's request log, or a crash's stack
    child.on('exit', (code) => reject(new Error(`${command} exited (${code}): ${out}`)));
  });
}

/** Runs the hostile requests against a server started by `args(root)`, then checks that it still runs. */
async function checkServerProcess(command, args, options) {
  const dir = makeTree();
  let server;
  try {
    server = await startServer(command, args(path.join(dir, 'www')));
    let died = null;
    server.child.on('exit', (code) => { died = code; });
    await checkServer(server.port, options);
    if (options.statuses) {
      for (const [target, status] of Object.entries(options.statuses)) {
        const r = await rawGet(server.port, target);
        check(r !== 'closed' && r.status === status, `GET ${target}: ${r === 'closed' ? 'no answer' : r.status}, expected ${status}`);
      }
    }
    check(died === null, `the server died (exit code ${died})`);
  } finally {
    if (server) server.child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await test('serve.mjs: malformed and outside paths get 400/403/404, normal files and index.html are served, it never dies', async () => {
  const script = path.join(ROOT, 'tests/browser/serve.mjs');
  await checkServerProcess(process.execPath, (root) => [script, root, '0'], {
    strictStatus: true, statuses: { '/%': 400, '/%00': 400, '/..%2fwww2/secret.txt': 403, '/missing.txt': 404 },
  });
});

await test('python3 -m http.server (build.sh serve) serves nothing outside its folder and survives malformed paths', async () => {
  if (spawnSync('python3', ['--version']).status !== 0) {
    console.log('     (python3 is missing: build.sh serve uses serve.mjs, tested above)');
    return;
  }
  await checkServerProcess('python3', (root) => ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', root],
    { strictStatus: false });
});

// ---------------------------------------------------------------------------------------------
// 2. The page's Content-Security-Policy.

await test('index.html has a CSP (script-src self + wasm, object-src/base-uri none) and no inline script or handler', () => {
  const html = fs.readFileSync(path.join(WWW, 'index.html'), 'utf8');
  const meta = /<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"]+)"/i.exec(html);
  check(meta, 'no <meta http-equiv="Content-Security-Policy">');
  const policy = new Map(meta[1].split(';').map((d) => d.trim()).filter(Boolean)
    .map((d) => { const [name, ...values] = d.split(/\s+/); return [name, values]; }));
  const has = (directive, ...values) => {
    const got = policy.get(directive);
    check(got && values.every((v) => got.includes(v)), `${directive} should hold ${values.join(' ')}: ${got ? got.join(' ') : 'missing'}`);
  };
  has('script-src', "'self'", "'wasm-unsafe-eval'");
  check(!policy.get('script-src').some((v) => v === "'unsafe-inline'" || v === "'unsafe-eval'" || v === '*'),
    `script-src is too wide: ${policy.get('script-src').join(' ')}`);
  has('object-src', "'none'");
  has('base-uri', "'none'");
  has('img-src', "'self'", 'blob:', 'data:');
  has('connect-src', "'self'", 'https:');
  // It must come before the first script and stylesheet, or those load without it.
  check(html.indexOf('Content-Security-Policy') < html.search(/<script|<link rel="stylesheet"/), 'the CSP comes after a script or stylesheet');
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
    check(/\bsrc=/.test(m[1]) && m[2].trim() === '', `an inline script: ${m[0].slice(0, 80)}`);
  }
  const handler = /<[a-z][^>]*\son[a-z]+\s*=/i.exec(html);
  check(!handler, `an inline event handler: ${handler && handler[0]}`);
  check(!/javascript:/i.test(html), 'a javascript: URL');
});

// ---------------------------------------------------------------------------------------------
// 3. The loss plot's downsampling.

await test('plot: 10^6 values downsample without throwing to a bounded list that keeps the min, the max and the spikes', async () => {
  const { downsampleMinMax } = await lib('plot.js');
  const n = 1e6;
  const steps = new Float64Array(n);
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    steps[i] = i + 1;
    values[i] = 1 + Math.sin(i / 1000) * 0.5 + (i % 7) * 1e-3;
  }
  values[123457] = 1e9; // a one-step spike
  values[765432] = 1e-9; // a one-step dip
  values[500000] = NaN; // a gap is no value
  const out = downsampleMinMax(steps, values, 1000);
  check(out.steps.length === out.values.length, 'steps and values differ in length');
  check(out.values.length <= 1000, `${out.values.length} points kept, at most 1000 expected`);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of out.values) if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  check(hi === 1e9 && lo === 1e-9, `min/max not kept: ${lo}..${hi}`);
  check(out.steps.includes(123458) && out.steps.includes(765433), 'the spike and the dip are not at their steps');
  for (let i = 1; i < out.steps.length; i++) check(out.steps[i] > out.steps[i - 1], 'steps out of order');
  // Few values: kept as they are, gaps included.
  const few = downsampleMinMax([1, 2, 3], [5, NaN, 7], 1000);
  check(few.values.length === 3 && Number.isNaN(few.values[1]) && few.values[2] === 7, `few values changed: ${few.values}`);
  // Plain arrays of 400 000 values (the plot's four terms at 100 000 steps) work as well.
  const big = Array.from({ length: 400000 }, (_, i) => i + 1);
  check(downsampleMinMax(big, big, 500).values.length <= 500, 'plain arrays not bounded');
});

await test('plot: a 100 000-step run keeps and draws a bounded number of points, its spike included', async () => {
  const { LossPlot } = await lib('plot.js');
  const drawn = [];
  const ctx = new Proxy({}, {
    get: (target, name) => (name in target ? target[name]
      : name === 'measureText' ? () => ({ width: 10 })
        : name === 'lineTo' || name === 'moveTo' ? (px, py) => drawn.push(py) : () => {}),
    set: (target, name, value) => { target[name] = value; return true; },
  });
  const canvas = { clientWidth: 480, width: 480, height: 180, getContext: () => ctx };
  globalThis.window = { devicePixelRatio: 1 };
  globalThis.requestAnimationFrame = () => {};
  try {
    const plot = new LossPlot(canvas);
    for (let step = 1; step <= 100000; step++) {
      const total = step === 54321 ? 1e12 : 1e6 / step;
      plot.add({ step, total, content: total / 2, style: total / 3, tv: 0 });
    }
    plot.draw(); // threw a RangeError (Math.min over 300 000 spread values)
    check(drawn.length > 100 && drawn.length <= 4 * 2 * 2 * 480, `${drawn.length} points drawn`);
    const kept = plot.lines.reduce((n, l) => n + l.values.length, 0);
    check(kept <= 4 * 2 * 4096, `${kept} points kept`);
    check(plot.lines[0].values.includes(1e12), 'the spike was merged away');
    check(Math.min(...drawn) >= 0, 'the spike is drawn off the plot');
  } finally {
    delete globalThis.window;
    delete globalThis.requestAnimationFrame;
  }
});

// ---------------------------------------------------------------------------------------------
// 4. Messages: repeated errors replace each other.

await test('messages: the same key or the same text replaces, at most a few are kept, the oldest go first', async () => {
  const { MessageList } = await lib('messages.js');
  const list = new MessageList(4);
  const shown = () => list.items.map((m) => m.text);
  for (let i = 0; i < 1000; i++) list.add('error', 'Unexpected error: RangeError');
  check(list.items.length === 1, `a repeated text made ${list.items.length} messages`);
  for (let i = 0; i < 1000; i++) list.add('error', `Unexpected error at frame ${i}`, 'unexpected');
  check(shown().join('|') === 'Unexpected error: RangeError|Unexpected error at frame 999', `keyed: ${shown()}`);
  for (let i = 0; i < 10; i++) list.add('warn', `warning ${i}`);
  check(list.items.length === 4 && shown()[0] === 'warning 6' && shown()[3] === 'warning 9', `not capped: ${shown()}`);
  const removed = [];
  const capped = new MessageList(2, (m) => removed.push(m.text));
  capped.add('info', 'a');
  capped.add('info', 'b', 'k');
  capped.add('info', 'c', 'k');
  capped.add('info', 'd');
  check(removed.join() === 'b,a' && capped.items.map((m) => m.text).join() === 'c,d', `removals: ${removed}, left ${capped.items.map((m) => m.text)}`);
  capped.remove('k');
  check(capped.items.map((m) => m.text).join() === 'd', 'remove(key) did not remove');
});

// ---------------------------------------------------------------------------------------------
// 5. Image headers (before any decode) and byte caps on fetches.

const u32be = (n) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const u16le = (n) => [n & 255, (n >>> 8) & 255];
const u24le = (n) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255];
const ascii = (s) => [...s].map((c) => c.charCodeAt(0));
const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const png = (w, h) => new Uint8Array([...PNG_SIG, 0, 0, 0, 13, ...ascii('IHDR'), ...u32be(w), ...u32be(h), 8, 6, 0, 0, 0, 0, 0, 0, 0]);
const riff = (chunk, body) => new Uint8Array([...ascii('RIFF'), ...u32be(0).reverse(), ...ascii('WEBP'), ...ascii(chunk),
  ...u32be(body.length).reverse(), ...body]);

/** Width and height as `file` (libmagic) reads them from the header: an independent reader. */
function fileCommandSize(file) {
  const r = spawnSync('file', ['-b', file], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const m = /(\d+) ?x ?(\d+)(?!.*\d+ ?x ?\d+)/.exec(r.stdout.replace(/density \d+x\d+/, ''));
  return m ? { width: Number(m[1]), height: Number(m[2]) } : null;
}

await test('image headers: the real PNG and JPEG test images have their known sizes', async () => {
  const { imageHeaderSize } = await lib('images.js');
  // From the files' own headers (file(1) says the same); the e2e tests rely on chelsea 451x300, coffee 600x400.
  const known = {
    'content/astronaut.png': [512, 512], 'content/chelsea.png': [451, 300], 'content/coffee.png': [600, 400],
    'style/shipwreck.jpg': [960, 662], 'style/starry_night.jpg': [1024, 640], 'style/the_scream.jpg': [1200, 1528],
    'style/woman-with-hat-matisse.jpg': [591, 800],
  };
  for (const [name, [w, h]] of Object.entries(known)) {
    const file = path.join(IMAGES, name);
    const size = imageHeaderSize(new Uint8Array(fs.readFileSync(file)));
    check(size.width === w && size.height === h, `${name}: ${size.width}x${size.height}, expected ${w}x${h}`);
    const other = fileCommandSize(file);
    if (other) check(other.width === w && other.height === h, `${name}: file(1) says ${other.width}x${other.height}`);
  }
});

await test('image headers: hand-made PNG/JPEG/WebP/GIF/BMP headers, the 16384² bomb, truncated files and garbage', async () => {
  const { imageHeaderSize, ImageError, MAX_INPUT_PIXELS } = await lib('images.js');
  const bomb = imageHeaderSize(png(16384, 16384));
  check(bomb.format === 'PNG' && bomb.width === 16384 && bomb.height === 16384, `PNG bomb: ${JSON.stringify(bomb)}`);
  check(bomb.width * bomb.height > MAX_INPUT_PIXELS, 'the 16384² bomb is within the pixel cap');
  // JPEG: APP0, then a DHT before the SOF2 (progressive), with a fill byte before its marker.
  const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 4, 1, 2, 0xff, 0xc4, 0, 3, 0, 0xff, 0xff, 0xc2, 0, 11, 8,
    1234 >> 8, 1234 & 255, 4321 >> 8, 4321 & 255, 1, 1, 0x11, 0, 0xff, 0xd9]);
  const j = imageHeaderSize(jpeg);
  check(j.format === 'JPEG' && j.width === 4321 && j.height === 1234, `JPEG: ${JSON.stringify(j)}`);
  const vp8 = imageHeaderSize(riff('VP8 ', [0, 0, 0, 0x9d, 0x01, 0x2a, ...u16le(300), ...u16le(200), 0, 0]));
  check(vp8.format === 'WebP' && vp8.width === 300 && vp8.height === 200, `VP8: ${JSON.stringify(vp8)}`);
  const bits = (300 - 1) | ((200 - 1) << 14);
  const vp8l = imageHeaderSize(riff('VP8L', [0x2f, bits & 255, (bits >>> 8) & 255, (bits >>> 16) & 255, (bits >>> 24) & 255]));
  check(vp8l.width === 300 && vp8l.height === 200, `VP8L: ${JSON.stringify(vp8l)}`);
  const vp8x = imageHeaderSize(riff('VP8X', [0, 0, 0, 0, ...u24le(16383), ...u24le(9999)]));
  check(vp8x.width === 16384 && vp8x.height === 10000, `VP8X: ${JSON.stringify(vp8x)}`);
  const gif = imageHeaderSize(new Uint8Array([...ascii('GIF89a'), ...u16le(640), ...u16le(480), 0, 0, 0, 0x3b]));
  check(gif.format === 'GIF' && gif.width === 640 && gif.height === 480, `GIF: ${JSON.stringify(gif)}`);
  const bmp = new Uint8Array(54);
  bmp.set(ascii('BM'));
  bmp.set([40, 0, 0, 0, ...u32be(70000).reverse(), ...u32be(-50 >>> 0).reverse()], 14);
  const b = imageHeaderSize(bmp);
  check(b.format === 'BMP' && b.width === 70000 && b.height === 50, `BMP (top-down): ${JSON.stringify(b)}`);

  // Truncated at every length, and garbage: an ImageError with a reason, never another exception.
  const real = new Uint8Array(fs.readFileSync(path.join(IMAGES, 'style/starry_night.jpg')));
  const samples = [png(100, 100), jpeg, riff('VP8X', [0, 0, 0, 0, ...u24le(9), ...u24le(9)]), gif, bmp, real.subarray(0, 700)];
  for (const whole of samples) {
    for (let n = 0; n < Math.min(whole.length, 700); n++) {
      let size = null;
      try {
        size = imageHeaderSize(whole.subarray(0, n));
      } catch (e) {
        check(e instanceof ImageError && e.message.length > 10, `${n} bytes: ${e && e.stack}`);
      }
      if (size) check(size.width > 0 && size.height > 0, `${n} bytes gave ${JSON.stringify(size)}`);
    }
  }
  let seed = 1;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 255;
  for (let i = 0; i < 2000; i++) {
    const head = [[...PNG_SIG], [0xff, 0xd8, 0xff], ascii('GIF8'), ascii('RIFF....WEBP'), [0x42, 0x4d], []][i % 6];
    const bytes = new Uint8Array([...head, ...Array.from({ length: random() % 64 }, random)]);
    try {
      imageHeaderSize(bytes);
    } catch (e) {
      check(e instanceof ImageError, `garbage ${i}: ${e && e.stack}`);
    }
  }
  check(/not a PNG, JPEG/.test(thrown(() => imageHeaderSize(new TextEncoder().encode('hello, not an image')), 'text').message), 'text');
  check(/no SOF marker/.test(thrown(() => imageHeaderSize(new Uint8Array([0xff, 0xd8, 0xff, 0xda, 0, 2])), 'no SOF').message), 'no SOF');
  check(/zero/.test(thrown(() => imageHeaderSize(png(0, 10)), '0x10 PNG').message), 'a 0x10 PNG is not refused as zero-sized');
});

/** A Response whose body comes in `chunks`; `cancelled` says whether the reader was cancelled. */
function fakeResponse(chunks, headers = {}) {
  const state = { cancelled: false, pulled: 0 };
  let i = 0;
  const body = new ReadableStream({
    pull(controller) {
      if (i < chunks.length) {
        state.pulled += 1;
        controller.enqueue(chunks[i++]);
      } else controller.close();
    },
    cancel() { state.cancelled = true; },
  });
  return { response: new Response(body, { headers }), state };
}

await test('byte cap: Content-Length over the cap is refused before reading, a stream over it is cancelled', async () => {
  const { readCapped, ImageError, MAX_FETCH_BYTES } = await lib('images.js');
  check(MAX_FETCH_BYTES === 64 * 1024 * 1024, `MAX_FETCH_BYTES is ${MAX_FETCH_BYTES}`);
  const chunk = new Uint8Array(1000).fill(7);
  const ok = await readCapped(fakeResponse([chunk, chunk, chunk]).response, 3000, 'x');
  check(ok.length === 3000 && ok[2999] === 7, `under the cap: ${ok.length} bytes`);
  const declared = fakeResponse([chunk], { 'Content-Length': '5000' });
  const e1 = await readCapped(declared.response, 3000, 'https://example.org/big.png').then(() => null, (e) => e);
  check(e1 instanceof ImageError && /5000 bytes/.test(e1.message) && /3000/.test(e1.message) && /big\.png/.test(e1.message), `Content-Length: ${e1}`);
  check(declared.state.pulled <= 1, 'the body was read although Content-Length was over the cap');
  // A server that says nothing (or lies): counted while reading, cancelled as soon as it is over.
  const endless = fakeResponse(Array.from({ length: 100 }, () => chunk), { 'Content-Length': '10' });
  const e2 = await readCapped(endless.response, 3000, 'u').then(() => null, (e) => e);
  check(e2 instanceof ImageError && /larger/.test(e2.message) && /3000 bytes/.test(e2.message), `stream: ${e2}`);
  check(endless.state.cancelled && endless.state.pulled < 10, `not cancelled at once (${endless.state.pulled} chunks read)`);
});

// ---------------------------------------------------------------------------------------------
// 6. Links: malformed escapes.

await test('a URL whose file name holds a bare % or a broken escape names it instead of throwing', async () => {
  const { nameFromUrl } = await lib('images.js');
  const name = (url) => nameFromUrl(new URL(url));
  check(name('https://example.org/a/100%25.png') === '100%.png', 'a good escape is not decoded');
  check(name('https://example.org/a/100%.png') === '100%.png', 'a bare % threw or changed');
  check(name('https://example.org/%E0%A4%A.jpg') === '%E0%A4%A.jpg', 'a broken UTF-8 escape threw or changed');
  check(name('https://example.org/') === 'example.org', 'no file name: not the host');
  // Every decodeURIComponent in the page is guarded (nameFromUrl is the one place that decodes).
  for (const file of ['app.js', ...fs.readdirSync(path.join(WWW, 'lib')).map((f) => `lib/${f}`)]) {
    const text = fs.readFileSync(path.join(WWW, file), 'utf8');
    const uses = text.match(/decodeURI(Component)?\(/g) || [];
    check(uses.length === (file === 'lib/images.js' ? 1 : 0), `${file}: ${uses.length} decodeURI(Component) calls`);
  }
});

// ---------------------------------------------------------------------------------------------
// 7. Seeds keep their digits.

/** Just enough of a DOM for SettingsForm (it builds labels, inputs and selects). */
function fakeDocument() {
  class El {
    constructor(tag) {
      this.tagName = tag.toUpperCase();
      this.children = [];
      this.options = [];
      this.value = '';
      this.dataset = {};
    }
    append(...items) {
      this.children.push(...items);
      if (this.tagName === 'SELECT') this.options.push(...items);
      if (this.tagName === 'SELECT' && this.options.length === items.length) this.value = items[0].value;
    }
    addEventListener() {}
    querySelectorAll() { return []; }
  }
  return { createElement: (tag) => new El(tag), El };
}

await test('seed: a u64 above 2^53 reaches the settings JSON with its exact digits', async () => {
  const { SettingsForm } = await lib('controls.js');
  const doc = fakeDocument();
  globalThis.document = doc;
  try {
    const defaults = { size: '512', steps: '500', seed: '0' };
    const form = new SettingsForm(doc.createElement('form'), { presets: [], defaults, layers: [{ name: 'relu1_1' }, { name: 'relu4_2' }], onChange: () => {} });
    for (const seed of ['18446744073709551615', '9007199254740993', '42']) {
      form.write({ ...defaults, seed });
      const json = JSON.stringify(form.read());
      const m = /"seed":"?(\d+)"?/.exec(json);
      check(m && m[1] === seed, `seed ${seed} became ${m ? m[1] : json}`);
    }
    form.write({ ...defaults, seed: '1.5' });
    check(/Seed/.test(thrown(() => form.read(), 'seed 1.5').message), 'a fractional seed is not refused');
    form.write({ ...defaults, seed: 'abc' });
    check(/Seed/.test(thrown(() => form.read(), 'seed abc').message), 'a text seed is not refused');
  } finally {
    delete globalThis.document;
  }
});

await test('number fields show the engine\'s shortest forms ("2e-3") as decimals, and read back the same values', async () => {
  const { SettingsForm, asDecimal } = await lib('controls.js');
  const doc = fakeDocument();
  globalThis.document = doc;
  try {
    const defaults = { size: '512', steps: '500', lr: '0.02', content_weight: '5', style_weight: '100', tv_weight: '0.001', style_layers: 'relu1_1:1' };
    const form = new SettingsForm(doc.createElement('form'), { presets: [], defaults, layers: [{ name: 'relu1_1' }, { name: 'relu4_2' }], onChange: () => {} });
    form.write({ ...defaults, lr: '2e-3', tv_weight: '1e-7', content_weight: '5', style_weight: '1e2', style_layers: 'relu1_1:2e-3' });
    const shown = (key) => form.inputs.get(key).value;
    check(shown('lr') === '0.002' && shown('tv_weight') === '1e-7' && shown('content_weight') === '5' && shown('style_weight') === '100',
      `shown: lr ${shown('lr')}, tv ${shown('tv_weight')}, content ${shown('content_weight')}, style ${shown('style_weight')}`);
    check(form.inputs.get('style_layers').get('relu1_1').value === '0.002', `layer weight: ${form.inputs.get('style_layers').get('relu1_1').value}`);
    const read = form.read();
    check(read.lr === 0.002 && read.tv_weight === 1e-7 && read.style_weight === 100, `read back: ${JSON.stringify(read)}`);
    check(asDecimal('abc') === 'abc' && asDecimal('') === '' && asDecimal('1e999') === '1e999', 'text that is not a finite number is left as it is');
  } finally {
    delete globalThis.document;
  }
});

await test('style strength: log scale of β/α around the default ratio, exact weights out, zero and junk refused', async () => {
  const { strengthOf, styleWeightAt, strengthLabel, DECADES } = await lib('strength.js');
  const ratio = 100 / 5;
  check(strengthOf(5, 100, ratio) === 0, 'the default weights are not at the middle');
  check(Math.abs(strengthOf(5, 1000, ratio) - 1) < 1e-12 && Math.abs(strengthOf(1, 2, ratio) + 1) < 1e-12, 'one decade each way');
  check(strengthOf(5, 1e9, ratio) === DECADES && strengthOf(5, 1e-9, ratio) === -DECADES, 'not clamped to the slider');
  for (const [a, b] of [[0, 100], [5, 0], [-1, 100], [NaN, 1], [5, Infinity]]) {
    check(strengthOf(a, b, ratio) === null, `α=${a} β=${b} gave a position`);
  }
  check(styleWeightAt(5, 0, ratio) === 100 && styleWeightAt(5, 1, ratio) === 1000 && styleWeightAt(2, -1, ratio) === 4, 'weights');
  check(styleWeightAt(5, 0.5, ratio) === 316, `3 significant digits: ${styleWeightAt(5, 0.5, ratio)}`);
  // Round trip: the weight written for a position puts the slider back there (within the rounding).
  for (let p = -DECADES; p <= DECADES; p += 0.05) {
    check(Math.abs(strengthOf(5, styleWeightAt(5, p, ratio), ratio) - p) < 0.003, `position ${p}`);
  }
  check(strengthLabel(0) === '×1' && strengthLabel(1) === '×10' && strengthLabel(-1) === '×0.1', 'labels');
});

await test("simple level: named choices write the form's keys and read back; other values are custom or advanced", async () => {
  const { SIZES, QUALITIES, settingsOf, choiceOf, advancedKeys, DEFAULT_CHOICE } = await lib('choices.js');
  // Every named size × quality × colour round-trips through the settings.
  for (const s of SIZES) {
    for (const q of QUALITIES) {
      for (const keepColours of [true, false]) {
        const settings = settingsOf({ size: s.name, quality: q.name, keepColours });
        const back = choiceOf(settings);
        check(back.size === s.name && back.quality === q.name && back.keepColours === keepColours,
          `${s.name}/${q.name}/${keepColours} read back as ${JSON.stringify(back)}`);
      }
    }
  }
  check(JSON.stringify(settingsOf(DEFAULT_CHOICE)) === JSON.stringify({ size: 512, ...QUALITIES.find((q) => q.name === 'balanced').settings }),
    `the default choice: ${JSON.stringify(settingsOf(DEFAULT_CHOICE))}`);
  check(!('colour' in settingsOf({ size: 'small', quality: 'fast' })), 'a choice without the checkbox wrote a colour');
  // Values no choice gives are custom; a colour mode the checkbox cannot show is null.
  const balanced = QUALITIES.find((q) => q.name === 'balanced').settings;
  const odd = choiceOf({ size: 300, ...balanced, steps: 151, colour: 'histogram' });
  check(odd.size === 'custom' && odd.quality === 'custom' && odd.keepColours === null, `custom: ${JSON.stringify(odd)}`);
  // Advanced keys: anything outside the simple level that differs from the defaults, and the custom ones.
  const defaults = { size: 512, steps: 500, lr: 0.02, tv_weight: 0, style_weight: 100, colour: 'keep-style', preset: null,
    style_layers: { relu1_1: 1 } };
  const simple = { ...defaults, ...settingsOf({ size: 'preview', quality: 'best', keepColours: true }), style_weight: 1000 };
  check(advancedKeys(simple, defaults).length === 0, `simple values counted as advanced: ${advancedKeys(simple, defaults)}`);
  const adv = advancedKeys({ ...simple, tv_weight: 0.002, style_layers: { relu1_1: 2 } }, defaults);
  check(adv.join() === 'tv_weight,style_layers', `advanced keys: ${adv}`);
  const custom = advancedKeys({ ...defaults, size: 300, colour: 'histogram' }, defaults);
  check(['size', 'steps', 'colour'].every((k) => custom.includes(k)), `custom size/steps/colour: ${custom}`);
});

await test('first run: the largest size, then the better quality, within about a minute, else the quickest, flagged slow', async () => {
  const { firstRunChoice, FIRST_RUN_SECONDS } = await lib('choices.js');
  // Seconds grow with the pixels and the quality's steps.
  const cost = { small: 1, preview: 4, standard: 16 };
  const steps = { fast: 1, balanced: 2 };
  const at = (secondsPerUnit) => (size, quality) => cost[size] * steps[quality] * secondsPerUnit;
  const fast = firstRunChoice(at(1));
  check(fast.size === 'standard' && fast.quality === 'balanced' && !fast.slow, `a fast GPU: ${JSON.stringify(fast)}`);
  const mid = firstRunChoice(at(FIRST_RUN_SECONDS / 8));
  check(mid.size === 'preview' && mid.quality === 'balanced' && !mid.slow, `a middling GPU: ${JSON.stringify(mid)}`);
  const slow = firstRunChoice(at(1000));
  check(slow.size === 'small' && slow.quality === 'fast' && slow.slow && slow.seconds === 1000, `a slow GPU: ${JSON.stringify(slow)}`);
  // Sizes that cannot run (null) or time as junk are skipped; nothing that runs gives null.
  const some = firstRunChoice((size, quality) => (size === 'standard' ? null : size === 'preview' && quality === 'balanced' ? NaN : 30));
  check(some.size === 'preview' && some.quality === 'fast', `skipping what cannot run: ${JSON.stringify(some)}`);
  check(firstRunChoice(() => null) === null, 'nothing fits, yet a choice');
});

// ---------------------------------------------------------------------------------------------
// 8. The weights cache: is the cached copy still the file on the server?

await test('weights cache: ETag, then Last-Modified, then the length (only when not content-encoded) decide', async () => {
  const { cacheIsFresh } = await lib('weights.js');
  const h = (o) => new Headers(o);
  const fresh = (cached, head) => cacheIsFresh(h(cached), h(head));
  // The case that never hit before: a compressing host (HEAD length is the gzip length).
  check(fresh({ 'X-Weights-Length': '13000000', ETag: '"abc"' }, { 'Content-Length': '9000000', 'Content-Encoding': 'gzip', ETag: '"abc"' }), 'gzip + same ETag');
  check(fresh({ 'X-Weights-Length': '13000000' }, { 'Content-Length': '9000000', 'Content-Encoding': 'br' }), 'br without validators');
  check(fresh({ ETag: '"abc"' }, { ETag: 'W/"abc"' }), 'weak and strong forms of one ETag');
  check(fresh({ ETag: '"abc"' }, { ETag: '"abc-gzip"' }), "Apache's -gzip ETag suffix");
  check(!fresh({ ETag: '"abc"', 'X-Weights-Length': '10' }, { ETag: '"def"', 'Content-Length': '10' }), 'a changed ETag');
  check(!fresh({ 'Last-Modified': 'Mon, 01 Jan 2024 00:00:00 GMT' }, { 'Last-Modified': 'Tue, 02 Jan 2024 00:00:00 GMT' }), 'a changed Last-Modified');
  check(fresh({ 'Last-Modified': 'Mon, 01 Jan 2024 00:00:00 GMT', 'X-Weights-Length': '10' },
    { 'Last-Modified': 'Mon, 01 Jan 2024 00:00:00 GMT', 'Content-Length': '99', 'Content-Encoding': 'gzip' }), 'same Last-Modified, gzip');
  check(!fresh({ 'X-Weights-Length': '10' }, { 'Content-Length': '11' }), 'a changed length, not encoded');
  check(!fresh({ 'X-Weights-Length': '10' }, { 'Content-Length': '11', 'Content-Encoding': 'identity' }), 'a changed length, identity');
  check(fresh({ 'X-Weights-Length': '10' }, { 'Content-Length': '10' }), 'the same length');
  check(fresh({}, {}), 'a server that says nothing keeps the cached copy');
});

finish();
