// The page: wires the inputs, the settings form and the run loop to the wasm engine (StyleTransfer).
//
// Rules kept throughout: every error ends up in the page (#messages), never only in the console; no
// value from a link or a file name is ever inserted as HTML (textContent only); the page stays responsive
// during a run (one awaited step at a time, yielding to the event loop between steps).

import init, { StyleTransfer } from './pkg/stylize.js';
import { decodeImage, fetchImage, drawPixels, encodePng, ImageError, MAX_INPUT_SIDE, setInputPixelCap } from './lib/images.js';
import { fetchWeights, forgetWeights } from './lib/weights.js';
import { LossPlot } from './lib/plot.js';
import { SettingsForm } from './lib/controls.js';
import { MessageList } from './lib/messages.js';

const WEIGHTS_URL = 'weights/vgg19.q8.bin';

/** Content samples shipped with the page (scikit-image data: public domain / CC0; see samples/README.md). */
const CONTENT_SAMPLES = [
  { label: 'Cat', url: 'samples/chelsea.png', credit: 'Chelsea the cat, Stefan van der Walt, CC0 (scikit-image)' },
  { label: 'Astronaut', url: 'samples/astronaut.png', credit: 'Eileen Collins, NASA, public domain (scikit-image)' },
  { label: 'Coffee', url: 'samples/coffee.png', credit: 'A cup of coffee, Rachel Michetti, CC0 (scikit-image)' },
];

/** Public-domain paintings, loaded from Wikimedia Commons with CORS when clicked (not shipped). */
const COMMONS = 'https://upload.wikimedia.org/wikipedia/commons/thumb/';
const commons = (path, file) => `${COMMONS}${path}/${encodeURIComponent(file)}/960px-${encodeURIComponent(file)}`;
const STYLE_SAMPLES = [
  { label: 'The Starry Night', credit: 'Vincent van Gogh, The Starry Night (1889), public domain, Wikimedia Commons',
    url: commons('e/ea', 'Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg') },
  { label: 'The Great Wave', credit: 'Katsushika Hokusai, The Great Wave off Kanagawa (c. 1831), public domain, Wikimedia Commons',
    url: commons('a/a5', 'Tsunami_by_hokusai_19th_century.jpg') },
  { label: 'Composition VII', credit: 'Wassily Kandinsky, Composition VII (1913), public domain, Wikimedia Commons',
    url: commons('b/b4', 'Vassily_Kandinsky,_1913_-_Composition_7.jpg') },
  { label: 'The Scream', credit: 'Edvard Munch, The Scream (1893), public domain, Wikimedia Commons',
    url: commons('9/9d', 'The_Scream_by_Edvard_Munch,_1893_-_Nasjonalgalleriet.png') },
  { label: 'Impression, Sunrise', credit: 'Claude Monet, Impression, Sunrise (1872), public domain, Wikimedia Commons',
    url: commons('5/54', 'Claude_Monet,_Impression,_soleil_levant.jpg') },
];

/** A GPU-side step that takes longer than this is treated as hung (the page says so instead of freezing). */
// A step that takes longer is taken as a stuck GPU (app.stepTimeoutMs: the tests shorten it).
const STEP_TIMEOUT_MS = 180000;
/** Every this many steps the current image is read back, so that a lost device can resume from it
 *  (every step for small images, whose readback costs next to nothing). */
const SNAPSHOT_EVERY = 20;
const SNAPSHOT_ALWAYS_PIXELS = 128 * 128;

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// Messages

const messages = $('messages');
/** Messages kept at most (the oldest go): enough for one warning per bad value of a hostile link. */
const MAX_MESSAGES = 8;
const shown = new MessageList(MAX_MESSAGES, (item) => item.el && item.el.remove());

/** Shows a message in the page. It replaces an earlier one with the same `key` or the same text. */
function say(kind, text, key = null) {
  const item = shown.add(kind, text, key);
  const p = document.createElement('p');
  item.el = p;
  p.className = `msg ${kind}`;
  p.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  if (key) p.dataset.key = key;
  p.textContent = text; // never innerHTML: texts may hold file names and link values
  const close = document.createElement('button');
  close.className = 'close';
  close.type = 'button';
  close.title = 'dismiss';
  close.textContent = '×';
  close.addEventListener('click', () => shown.drop(item));
  p.append(close);
  messages.append(p);
  if (kind === 'error') console.error(text);
  return p;
}

function clearMessage(key) {
  shown.remove(key);
}

function errorText(e) {
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}

// One key: an error thrown every frame (its text may change) shows as one message, the latest.
window.addEventListener('error', (e) => unexpected(e.error || e.message));
window.addEventListener('unhandledrejection', (e) => unexpected(e.reason));

/** A wasm trap (a Rust panic aborts the instance) leaves the engine unusable: say so and stop. */
function unexpected(error) {
  if (error instanceof WebAssembly.RuntimeError) {
    app.engineDead = true;
    app.run.state = 'stopped';
    say('error', `The engine crashed (${error.message}): this is a bug, please report it. Reload the page to ` +
      'continue; your settings are in the share link.', 'crash');
    if (app.form) updateButtons();
    return;
  }
  say('error', `Unexpected error: ${errorText(error)}`, 'unexpected');
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const e = new Error(`${what} did not finish within ${Math.round(ms / 1000)} s: ` +
        'the GPU seems stuck (try a smaller size)');
      e.timedOut = true;
      reject(e);
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

function formatBytes(n) {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(n >= 100 * 1024 ** 2 ? 0 : 1)} MiB`;
  return `${Math.round(n / 1024)} KiB`;
}

function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return '–';
  if (seconds < 1) return `${seconds.toFixed(2)} s`;
  if (seconds < 90) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

// ---------------------------------------------------------------------------------------------
// State

const app = {
  st: null, // StyleTransfer when WebGPU works
  gpuError: null, // why there is none
  weightsBytes: null, // kept to rebuild the engine after a lost device
  weightsReady: false,
  form: null,
  content: null, // {name, width, height, rgba, url|null}
  styles: [], // {id, name, width, height, rgba, weight, url|null}
  init: null,
  pasteTarget: 'content',
  run: {
    state: 'idle', // idle | running | paused | stopped | done
    total: 0, // steps asked for
    done: 0, // steps done (across a device-loss recovery)
    stepSeconds: NaN, // moving average
    lastStepAt: 0,
    snapshot: null, // {rgba, width, height, step}
    width: 0,
    height: 0,
    looping: false,
  },
  recovering: false,
  stepTimeoutMs: STEP_TIMEOUT_MS,
  pendingLink: null, // a link opened during a run, applied when it ends
  engineQueue: Promise.resolve(), // serialises calls into the engine (step, image)
};
window.stylizeApp = app; // for the browser tests and for curious people in the console

function runActive() {
  return ['running', 'paused', 'recovering'].includes(app.run.state);
}

/** An input changed while a run is going: the run keeps what it was started with, so say so. */
function noteNextRun(what) {
  if (!runActive()) return;
  const uses = app.run.inputs ? `"${app.run.inputs.content.name}" with ${app.run.inputs.styles.length} style image(s)` : 'its own images';
  say('info', `${what} applies to the next run; this run keeps using ${uses}.`, 'next-run');
}

/** Runs `fn` after every engine call queued before it (readbacks and steps never overlap). */
function engine(fn) {
  const result = app.engineQueue.then(fn, fn);
  app.engineQueue = result.catch(() => {});
  return result;
}

let nextStyleId = 1;
const plot = new LossPlot($('loss-plot'));

// ---------------------------------------------------------------------------------------------
// Start-up

async function main() {
  try {
    await init();
  } catch (e) {
    say('error', `The engine (www/pkg) could not be loaded: ${errorText(e)}. If you built the site yourself, ` +
      'run ./build.sh first.');
    return;
  }
  setInputPixelCap(StyleTransfer.limits().maxInputPixels);
  setupForm();
  setupInputs();
  setupRunButtons();
  plot.draw();
  const linked = location.hash.length > 1 ? applyLink(location.hash) : null;
  window.addEventListener('hashchange', () => {
    if (location.hash.length <= 1 || location.hash === app.lastLinkWritten) return;
    if (runActive()) {
      // The running job keeps its own inputs: the link opens when it ends.
      app.pendingLink = location.hash;
      say('info', 'The new link opens when this run ends (Stop to open it now); the run keeps its settings and images.',
        'next-run');
      return;
    }
    applyLink(location.hash);
  });
  await setupGpu();
  if (app.st) await loadWeights();
  await linked;
  if (!app.content) await loadContentSample(CONTENT_SAMPLES[0], { quiet: true });
  updateEstimate();
  updateButtons();
  document.body.dataset.ready = 'true';
}

async function setupGpu() {
  if (!navigator.gpu) {
    noWebGpu('This browser has no WebGPU (navigator.gpu is missing): it is too old, WebGPU is turned off, ' +
      (window.isSecureContext ? 'or it is not supported on this system.' : 'or the page is not served over https or localhost.'));
    return;
  }
  try {
    app.st = await withTimeout(StyleTransfer.create(), 30000, 'Opening the GPU');
  } catch (e) {
    noWebGpu(`This browser knows WebGPU but gave the page no usable GPU: the GPU may be blocklisted, or WebGPU is ` +
      `turned off for it. (Details: ${errorText(e)})`);
    return;
  }
  app.st.onDeviceLost((reason) => onDeviceLost(reason));
  await showAdapter(app.st);
}

function noWebGpu(reason) {
  app.gpuError = reason;
  $('no-webgpu').hidden = false;
  $('no-webgpu-reason').textContent = reason;
  $('gpu-name').textContent = 'no WebGPU';
  $('weights-status').textContent = 'not needed without WebGPU';
  updateButtons();
}

async function showAdapter(st) {
  const info = st.adapterInfo();
  // The JS adapter object tells vendor and architecture, which wgpu does not pass through.
  let jsInfo = null;
  try {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    jsInfo = adapter && adapter.info;
  } catch {
    // Only for display.
  }
  const parts = [info.name, jsInfo && jsInfo.vendor, jsInfo && jsInfo.architecture, jsInfo && jsInfo.description]
    .filter((p, i, all) => p && all.indexOf(p) === i);
  const name = parts.join(' · ') || 'unnamed WebGPU adapter';
  $('gpu-name').textContent = info.fallback ? `${name} (software fallback adapter: slow)` : name;
  app.adapterName = name;
  app.adapterFallback = info.fallback;
  const table = $('gpu-limits');
  table.textContent = '';
  const rows = [['backend', info.backend]];
  for (const [k, v] of Object.entries(info.limits)) {
    rows.push([k, /Size$/.test(k) && v >= 1024 * 1024 ? `${formatBytes(v)} (${v})` : String(v)]);
  }
  for (const [k, v] of rows) {
    const tr = document.createElement('tr');
    const a = document.createElement('td');
    const b = document.createElement('td');
    a.textContent = k;
    b.textContent = v;
    tr.append(a, b);
    table.append(tr);
  }
  $('gpu-details').hidden = false;
}

async function loadWeights() {
  const bar = $('weights-progress');
  const status = $('weights-status');
  const progress = (received, total) => {
    bar.max = total || 1;
    bar.value = total ? received : 0;
    if (total) bar.removeAttribute('indeterminate');
    status.textContent = total
      ? `downloading ${formatBytes(received)} of ${formatBytes(total)}`
      : `downloading ${formatBytes(received)}`;
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    let fetched;
    try {
      status.textContent = 'checking the cache';
      fetched = await fetchWeights(WEIGHTS_URL, progress);
    } catch (e) {
      status.textContent = 'failed';
      say('error', `The network weights could not be loaded: ${errorText(e)}`, 'weights');
      return;
    }
    status.textContent = 'verifying the checksum and uploading to the GPU';
    try {
      const info = await app.st.loadWeights(fetched.bytes);
      app.weightsBytes = fetched.bytes;
      app.weightsReady = true;
      app.weightsFromCache = fetched.fromCache;
      app.form.setAvailableLayers(info.availableLayers);
      bar.max = 1;
      bar.value = 1;
      status.textContent = `${formatBytes(fetched.bytes.length)}, ${info.layers} layers (${info.dtype}), checksum OK` +
        (fetched.fromCache ? ', from the browser cache' : ', downloaded');
      clearMessage('weights');
      updateButtons();
      return;
    } catch (e) {
      if (fetched.fromCache && attempt === 0) {
        // A damaged or stale cached copy: drop it and download again.
        await forgetWeights(WEIGHTS_URL);
        continue;
      }
      status.textContent = 'failed verification';
      say('error', `The network weights were downloaded but are unusable: ${errorText(e)}`, 'weights');
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Settings

function setupForm() {
  const defaults = StyleTransfer.defaults();
  const presets = StyleTransfer.presets();
  app.presets = presets;
  app.form = new SettingsForm($('settings-form'), { presets, defaults, layers: StyleTransfer.layers(), onChange: () => {} });
  app.form.write(defaults);
  $('settings-form').addEventListener('change', (e) => {
    if (e.target && e.target.id === 'set-preset') applyPreset(e.target.value);
  });
  $('settings-form').addEventListener('input', () => settingsChanged());
  const budget = $('memory-budget');
  const stored = Number(localStorage.getItem('stylize.memoryBudgetMiB'));
  budget.value = String(stored >= 16 ? stored : StyleTransfer.limits().defaultMemoryBudget / 1048576);
  budget.addEventListener('input', () => {
    if (Number(budget.value) >= 16) {
      try { localStorage.setItem('stylize.memoryBudgetMiB', budget.value); } catch { /* storage disabled */ }
    }
    settingsChanged();
  });
}

function applyPreset(name) {
  try {
    const resolved = StyleTransfer.resolveSettings(JSON.stringify({ preset: name }));
    app.form.write(resolved);
    const preset = app.presets.find((p) => p.name === name);
    if (preset) say('info', `Preset "${name}": ${preset.description}`, 'preset');
    else clearMessage('preset');
  } catch (e) {
    say('error', `Preset "${name}": ${errorText(e)}`, 'settings');
  }
  settingsChanged();
}

/** The form's settings checked by the Rust settings code; null (with a message shown) when invalid. */
function currentSettings() {
  try {
    const raw = app.form.read();
    const resolved = StyleTransfer.resolveSettings(JSON.stringify(raw));
    if (resolved.init !== 'content' && resolved.init !== 'noise' && resolved.init !== 'style') {
      throw new Error(`init: "${resolved.init}" is a file path; in the page, choose an initial image instead`);
    }
    clearMessage('settings');
    return { raw, resolved };
  } catch (e) {
    say('error', `Settings: ${errorText(e)}`, 'settings');
    return null;
  }
}

function settingsChanged() {
  updateEstimate();
  updateButtons();
}

/** The engine's plan for the form's settings and the images loaded now (the one place sizes, bytes
 *  and FLOPs are worked out; the page never counts them itself). Throws with the reason. */
function planFor(settingsRaw) {
  app.st.setMemoryBudget(memoryBudget());
  const request = { settings: settingsRaw };
  if (app.content) request.content = [app.content.width, app.content.height];
  if (app.styles.length) request.styles = app.styles.map((s) => [s.width, s.height, s.weight]);
  return app.st.plan(JSON.stringify(request));
}

function measuredGflops() {
  const stored = Number(localStorage.getItem(`stylize.gflops.${app.adapterName}`));
  return Number.isFinite(stored) && stored > 0 ? stored : null;
}

function updateEstimate() {
  const el = $('estimate');
  app.refusal = null;
  if (!app.st) {
    el.textContent = '';
    return;
  }
  const settings = currentSettings();
  if (!settings) {
    el.textContent = '';
    return;
  }
  let est;
  try {
    est = planFor(settings.raw);
  } catch (e) {
    // The engine cannot plan this run (sizes, layers): the reason says what to change.
    app.refusal = errorText(e);
    el.classList.add('refuse');
    el.textContent = `Cannot run: ${app.refusal}.`;
    return;
  }
  const steps = Number(settings.resolved.steps);
  const measured = measuredGflops();
  // Without a measurement: software adapters do ~2 GFLOP/s, a real GPU with these kernels far more.
  const gflops = measured || (app.adapterFallback ? 2 : 200);
  const perStep = est.flops_per_step / (gflops * 1e9);
  const [w, h] = [est.width, est.height];
  el.classList.toggle('refuse', !est.fits);
  if (!est.fits) {
    app.refusal = est.refusal;
    el.textContent = `${w}x${h}: ${est.refusal}.`;
    return;
  }
  clearMessage('settings');
  el.textContent = `${w}x${h}: about ${formatBytes(est.total_bytes)} of GPU memory (budget ` +
    `${formatBytes(est.memory_budget)}; largest buffer ${formatBytes(est.largest_buffer_bytes)}, this GPU allows ` +
    `${formatBytes(est.max_buffer)}); ` +
    `${(est.flops_per_step / 1e9).toFixed(1)} GFLOP per step, about ${formatDuration(perStep)} per step and ` +
    `${formatDuration(perStep * steps)} for ${steps} steps ` +
    (measured ? `(at ${measured.toFixed(1)} GFLOP/s measured on this GPU).` : `(a guess: ${gflops} GFLOP/s; measured after a run).`);
}

// ---------------------------------------------------------------------------------------------
// Inputs

function setupInputs() {
  for (const sample of CONTENT_SAMPLES) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = sample.label;
    b.title = sample.credit;
    b.dataset.sample = sample.url;
    b.addEventListener('click', () => loadContentSample(sample));
    $('content-samples').append(b);
  }
  for (const sample of STYLE_SAMPLES) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = sample.label;
    b.title = `${sample.credit} (loaded from Wikimedia Commons)`;
    b.addEventListener('click', () => addStyleFromUrl(sample.url, sample.label));
    $('style-samples').append(b);
  }
  $('content-file').addEventListener('change', (e) => {
    if (e.target.files[0]) setContentFromBlob(e.target.files[0], e.target.files[0].name);
    e.target.value = '';
  });
  $('style-file').addEventListener('change', (e) => {
    for (const file of e.target.files) addStyleFromBlob(file, file.name);
    e.target.value = '';
  });
  $('init-file').addEventListener('change', (e) => {
    if (e.target.files[0]) setInitFromBlob(e.target.files[0], e.target.files[0].name);
    e.target.value = '';
  });
  $('init-clear').addEventListener('click', () => {
    app.init = null;
    $('init-thumb').hidden = true;
    $('init-clear').hidden = true;
  });
  $('style-url-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const url = $('style-url').value.trim();
    if (url) addStyleFromUrl(url, null).then((ok) => { if (ok) $('style-url').value = ''; });
  });
  for (const zone of document.querySelectorAll('.dropzone')) {
    const target = zone.dataset.target;
    zone.addEventListener('focus', () => { app.pasteTarget = target; });
    zone.addEventListener('click', () => { app.pasteTarget = target; });
    zone.addEventListener('dragover', (e) => {
      e.preventDefault();
      zone.classList.add('over');
    });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (e) => {
      e.preventDefault();
      zone.classList.remove('over');
      const files = [...(e.dataTransfer.files || [])];
      if (files.length === 0) {
        const url = e.dataTransfer.getData('text/uri-list') || e.dataTransfer.getData('text/plain');
        if (url && target === 'style') addStyleFromUrl(url.trim(), null);
        else say('warn', 'Nothing to use was dropped: drop an image file.', 'input');
        return;
      }
      acceptFiles(files, target);
    });
  }
  document.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData ? e.clipboardData.files : [])];
    if (files.length === 0) return; // plain text pastes into inputs as usual
    e.preventDefault();
    acceptFiles(files, app.pasteTarget);
  });
  // Dropping a file anywhere else must not navigate away from the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());
}

function acceptFiles(files, target) {
  if (target === 'content') setContentFromBlob(files[0], files[0].name || 'pasted image');
  else if (target === 'init') setInitFromBlob(files[0], files[0].name || 'pasted image');
  else for (const f of files) addStyleFromBlob(f, f.name || 'pasted image');
}

function describeNotes(image) {
  return image.notes.length ? ` (${image.notes.join('; ')})` : '';
}

async function setContentFromBlob(blob, name, url = null) {
  try {
    const image = await decodeImage(blob, name);
    app.content = { ...image, url };
    drawPixels($('content-thumb'), image.rgba, image.width, image.height);
    $('content-thumb').hidden = false;
    $('content-meta').textContent = `${name}: ${image.originalWidth}x${image.originalHeight}${describeNotes(image)}`;
    clearMessage('input');
    noteNextRun(`The content image "${name}"`);
    if (image.notes.length) say('info', `Content "${name}": ${image.notes.join('; ')}.`, 'content-notes');
    else clearMessage('content-notes');
    settingsChanged();
    return true;
  } catch (e) {
    say('error', inputErrorText(e, 'content'), 'input');
    return false;
  }
}

async function loadContentSample(sample, { quiet = false } = {}) {
  try {
    const response = await fetch(sample.url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return await setContentFromBlob(await response.blob(), sample.label, new URL(sample.url, location.href).href);
  } catch (e) {
    if (!quiet) say('error', `The sample "${sample.label}" could not be loaded: ${errorText(e)}`, 'input');
    return false;
  }
}

async function loadContentUrl(url) {
  try {
    const image = await fetchImage(url);
    app.content = { ...image, url };
    drawPixels($('content-thumb'), image.rgba, image.width, image.height);
    $('content-thumb').hidden = false;
    $('content-meta').textContent = `${image.name}: ${image.originalWidth}x${image.originalHeight}${describeNotes(image)}`;
    clearMessage(`url-${url}`);
    noteNextRun(`The content image "${image.name}"`);
    settingsChanged();
  } catch (e) {
    // Keyed by the URL, not 'input': the default content loaded next must not wipe a link's failure.
    say('error', inputErrorText(e, 'content'), `url-${url}`);
  }
}

function inputErrorText(e, what) {
  return e instanceof ImageError ? `The ${what} image cannot be used: ${e.message}` : `The ${what} image failed: ${errorText(e)}`;
}

async function addStyleFromBlob(blob, name) {
  try {
    const image = await decodeImage(blob, name);
    addStyle(image, null, 1);
    return true;
  } catch (e) {
    say('error', inputErrorText(e, 'style'), 'input');
    return false;
  }
}

async function addStyleFromUrl(url, label, weight = 1) {
  // One key per URL: the failure replaces the "Fetching" note, and no other image's load clears it
  // (the default content that follows a link's failed style URL cleared 'input').
  const key = `url-${url}`;
  say('info', `Fetching the style image ${label || url} …`, key);
  try {
    const image = await fetchImage(url);
    if (label) image.name = label;
    addStyle(image, url, weight);
    clearMessage(key);
    return true;
  } catch (e) {
    say('error', inputErrorText(e, 'style'), key);
    return false;
  }
}

function addStyle(image, url, weight) {
  if (app.styles.length >= 16) {
    say('error', 'At most 16 style images can be blended.', 'input');
    return;
  }
  const style = { ...image, id: nextStyleId++, url, weight };
  app.styles.push(style);
  clearMessage('input');
  noteNextRun(`The style image "${image.name}"`);
  if (image.notes.length) say('info', `Style "${image.name}": ${image.notes.join('; ')}.`, `style-notes-${style.id}`);
  renderStyleList();
  settingsChanged();
}

function renderStyleList() {
  const list = $('style-list');
  list.textContent = '';
  for (const style of app.styles) {
    const li = document.createElement('li');
    li.className = 'style-item';
    li.dataset.styleId = String(style.id);
    const thumb = document.createElement('canvas');
    drawPixels(thumb, style.rgba, style.width, style.height);
    const middle = document.createElement('div');
    const name = document.createElement('div');
    name.className = 'name';
    name.textContent = style.name;
    name.title = style.url ? style.url : `${style.name} (your file: never uploaded, not put in links)`;
    const slider = document.createElement('input');
    slider.type = 'range';
    slider.min = '0';
    slider.max = '1';
    slider.step = '0.05';
    slider.value = String(Math.min(1, style.weight));
    slider.title = 'Blend weight of this style (weights are normalised to sum to 1)';
    slider.setAttribute('aria-label', `blend weight of ${style.name}`);
    const weightLabel = document.createElement('span');
    weightLabel.className = 'weight-label';
    const showWeight = () => {
      const sum = app.styles.reduce((s, x) => s + x.weight, 0);
      for (const item of list.querySelectorAll('.style-item')) {
        const st = app.styles.find((x) => String(x.id) === item.dataset.styleId);
        const share = sum > 0 ? Math.round((100 * st.weight) / sum) : 0;
        item.querySelector('.weight-label').textContent = `weight ${st.weight} (${share}%)`;
      }
    };
    slider.addEventListener('input', () => {
      style.weight = Number(slider.value);
      showWeight();
    });
    middle.append(name, slider, weightLabel);
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'small';
    remove.textContent = 'remove';
    remove.title = 'Remove this style';
    remove.addEventListener('click', () => {
      app.styles = app.styles.filter((s) => s !== style);
      renderStyleList();
      settingsChanged();
    });
    li.append(thumb, middle, remove);
    list.append(li);
    queueMicrotask(showWeight);
  }
}

async function setInitFromBlob(blob, name) {
  try {
    const image = await decodeImage(blob, name);
    app.init = image;
    drawPixels($('init-thumb'), image.rgba, image.width, image.height);
    $('init-thumb').hidden = false;
    $('init-clear').hidden = false;
    clearMessage('input');
  } catch (e) {
    say('error', inputErrorText(e, 'initial'), 'input');
  }
}

// ---------------------------------------------------------------------------------------------
// Run

function setupRunButtons() {
  $('btn-start').addEventListener('click', () => start());
  $('btn-pause').addEventListener('click', () => pause());
  $('btn-resume').addEventListener('click', () => resume());
  $('btn-stop').addEventListener('click', () => stop());
  $('btn-reset').addEventListener('click', () => reset());
  $('btn-download').addEventListener('click', () => download());
  $('btn-link').addEventListener('click', () => copyLink());
}

/** Why Start cannot run now, or null. */
function startBlocker() {
  if (app.engineDead) return 'the engine crashed: reload the page';
  if (!app.st) return app.gpuError ? 'WebGPU is not available in this browser' : 'the GPU is not ready yet';
  if (!app.weightsReady) return 'the weights are not loaded yet';
  if (!app.content) return 'choose a content image';
  if (app.styles.length === 0) return 'add at least one style image';
  if (app.styles.every((s) => s.weight <= 0)) return 'give at least one style a blend weight above 0';
  if (app.refusal) return app.refusal;
  return null;
}

function updateButtons() {
  const { state } = app.run;
  const active = state === 'running' || state === 'paused' || state === 'recovering';
  const blocker = startBlocker();
  const start = $('btn-start');
  start.disabled = active || blocker !== null || app.recovering;
  start.title = blocker ? `Cannot start: ${blocker}` : 'Build the network for these images and settings, then run the steps';
  $('btn-pause').disabled = state !== 'running';
  $('btn-resume').disabled = state !== 'paused';
  $('btn-stop').disabled = !active;
  $('btn-reset').disabled = state === 'idle' && app.run.done === 0;
  $('btn-download').disabled = app.run.done === 0 || state === 'running';
  app.form.setEnabled(!active);
  $('memory-budget').disabled = active;
  document.body.dataset.runState = state;
}

/** What a run is started with, kept for its whole life (device-loss recovery rebuilds from it,
 *  whatever the panels show by then). */
function runInputs(settingsRaw) {
  return {
    settingsRaw,
    content: app.content,
    styles: app.styles.map((s) => ({ ...s })),
    init: app.init,
  };
}

/** Hands a run's images and settings to the engine (it rebuilds the run on the next step);
 *  `startImage` replaces the run's init image (a recovery snapshot). */
function pushInputs(inputs, startImage = inputs.init) {
  const st = app.st;
  st.setMemoryBudget(memoryBudget());
  st.configure(JSON.stringify(inputs.settingsRaw));
  st.setContent(inputs.content.rgba, inputs.content.width, inputs.content.height);
  st.clearStyles();
  for (const s of inputs.styles) st.addStyle(s.rgba, s.width, s.height, s.weight);
  if (startImage) st.setInit(startImage.rgba, startImage.width, startImage.height);
  else st.clearInit();
}

/** The GPU memory budget: the advanced setting (MiB, kept in localStorage), else the engine's default. */
function memoryBudget() {
  const field = $('memory-budget');
  const mib = field ? Number(field.value) : NaN;
  return Number.isFinite(mib) && mib >= 16 ? mib * 1048576 : StyleTransfer.limits().defaultMemoryBudget;
}

async function start() {
  const blocker = startBlocker();
  if (blocker) {
    say('error', `Cannot start: ${blocker}.`, 'run');
    return;
  }
  const settings = currentSettings();
  if (!settings) return;
  clearMessage('run');
  clearMessage('done');
  clearMessage('next-run');
  const inputs = runInputs(settings.raw);
  let flopsPerStep = 0;
  try {
    pushInputs(inputs);
    app.st.reset();
    flopsPerStep = planFor(settings.raw).flops_per_step;
  } catch (e) {
    say('error', `Cannot start: ${errorText(e)}`, 'run');
    return;
  }
  const run = app.run;
  // A Stop just before: let the old loop finish its last step first.
  if (run.looping) await run.loopPromise;
  Object.assign(run, { state: 'running', total: Number(settings.resolved.steps), done: 0, stepSeconds: NaN,
    snapshot: null, inputs, flopsPerStep, startedAt: performance.now(), runSeconds: 0 });
  plot.clear();
  $('stat-step').textContent = `0 / ${run.total}`;
  $('stat-rate').textContent = '–';
  $('stat-left').textContent = '–';
  $('stat-loss').textContent = 'building…';
  updateButtons();
  startLoop();
}

/** Starts the step loop unless one is still finishing its last step (then it continues with that one). */
function startLoop() {
  if (!app.run.looping) app.run.loopPromise = loop();
}

function pause() {
  if (app.run.state === 'running') app.run.state = 'paused';
  updateButtons();
}

function resume() {
  if (app.run.state !== 'paused') return;
  app.run.state = 'running';
  updateButtons();
  startLoop();
}

function stop() {
  const wasActive = app.run.state === 'running' || app.run.state === 'paused';
  app.run.state = 'stopped';
  if (wasActive) say('info', `Stopped at step ${app.run.done}. The image stays for download; Start begins a new run.`, 'done');
  updateButtons();
  if (!app.run.looping) openPendingLink();
}

async function reset() {
  app.run.state = 'idle';
  await app.engineQueue;
  if (app.st) app.st.reset();
  Object.assign(app.run, { done: 0, total: 0, snapshot: null, stepSeconds: NaN });
  plot.clear();
  $('output-canvas').classList.add('blank');
  $('canvas-empty').hidden = false;
  for (const id of ['stat-step', 'stat-rate', 'stat-left', 'stat-loss']) $(id).textContent = '–';
  clearMessage('run');
  clearMessage('done');
  updateButtons();
}

async function loop() {
  const run = app.run;
  run.looping = true;
  const canvas = $('output-canvas');
  try {
    while (run.state === 'running' && run.done < run.total) {
      const t0 = performance.now();
      const st = app.st;
      let losses;
      try {
        losses = await engine(() => withTimeout(st.step(), app.stepTimeoutMs, `Step ${run.done + 1}`));
        st.render(canvas);
      } catch (e) {
        if (app.recovering || st !== app.st) return; // the device-lost recovery takes over
        await runFailed(e);
        return;
      }
      if (st !== app.st || run.state === 'recovering') return;
      const seconds = (performance.now() - t0) / 1000;
      run.done += 1;
      run.runSeconds += seconds;
      // The first step includes building the run: keep it out of the speed.
      if (run.done > 1) run.stepSeconds = Number.isNaN(run.stepSeconds) ? seconds : 0.8 * run.stepSeconds + 0.2 * seconds;
      if (run.done === 1) {
        canvas.classList.remove('blank');
        $('canvas-empty').hidden = true;
        run.width = app.st.width;
        run.height = app.st.height;
      }
      const point = { step: run.done, content: losses.content, style: losses.style, tv: losses.tv, total: losses.total };
      run.lastLosses = point;
      plot.add(point);
      showStats();
      if (run.done % SNAPSHOT_EVERY === 0 || run.width * run.height <= SNAPSHOT_ALWAYS_PIXELS) await snapshot();
      // Test hook: the browser tests look at the canvas after each step.
      if (app.afterStep) await app.afterStep(point);
      await nextTask(); // let the page breathe: clicks, scrolling, drawing the plot
    }
    if (run.state === 'running' && run.done >= run.total) {
      run.state = 'done';
      await snapshot();
      rememberSpeed();
      say('info', `Done: ${run.total} steps in ${formatDuration(run.runSeconds)}. Download the PNG, or change ` +
        'settings and Start again.', 'done');
    }
    if (run.state === 'paused') await snapshot();
  } finally {
    run.looping = false;
    updateButtons();
    openPendingLink();
  }
}

/** A link opened during the run: open it now that the run is over. */
function openPendingLink() {
  if (!app.pendingLink || runActive()) return;
  const hash = app.pendingLink;
  app.pendingLink = null;
  clearMessage('next-run');
  applyLink(hash);
}

function showStats() {
  const run = app.run;
  const l = run.lastLosses;
  $('stat-step').textContent = `${run.done} / ${run.total}`;
  if (run.stepSeconds > 0) {
    $('stat-rate').textContent = (1 / run.stepSeconds).toFixed(run.stepSeconds > 1 ? 2 : 1);
    $('stat-left').textContent = formatDuration((run.total - run.done) * run.stepSeconds);
  }
  $('stat-loss').textContent = `${l.total.toExponential(3)} (content ${l.content.toExponential(2)}, ` +
    `style ${l.style.toExponential(2)}, tv ${l.tv.toExponential(2)})`;
}

function rememberSpeed() {
  const run = app.run;
  if (!(run.stepSeconds > 0) || !run.flopsPerStep || !app.adapterName) return;
  // Tiny runs are dominated by per-dispatch overhead: they would make big sizes look slower than they
  // are, so they only count while nothing better is known.
  if (run.width * run.height < 96 * 96 && measuredGflops() !== null) return;
  const gflops = run.flopsPerStep / run.stepSeconds / 1e9;
  try {
    localStorage.setItem(`stylize.gflops.${app.adapterName}`, gflops.toPrecision(3));
  } catch {
    // Storage disabled: the estimate stays a guess.
  }
  updateEstimate();
}

/** Reads the current image back (rarely): the state a lost device can resume from. */
async function snapshot() {
  if (!app.st || app.run.done === 0) return;
  try {
    const rgba = await engine(() => app.st.image());
    app.run.snapshot = { rgba, width: app.st.width, height: app.st.height, step: app.run.done };
  } catch (e) {
    if (!app.st.lostReason()) say('warn', `Could not save a recovery image: ${errorText(e)}`, 'snapshot');
  }
}

async function runFailed(e) {
  const run = app.run;
  // A lost device fails the pending readback first and reports the loss a moment later.
  if (app.st && !app.st.lostReason()) await new Promise((resolve) => setTimeout(resolve, 100));
  if (app.recovering) return;
  if (app.st && app.st.lostReason()) {
    run.looping = false; // this loop ends here; the recovery starts a new one
    onDeviceLost(app.st.lostReason());
    return;
  }
  run.state = run.done > 0 ? 'stopped' : 'idle';
  say('error', `The run stopped at step ${run.done}: ${errorText(e)}`, 'run');
  if (e && e.timedOut) {
    // The step never came back: the engine still counts it as running. A fresh engine makes Start work again.
    run.looping = false;
    try {
      await restartEngine();
    } catch (restartError) {
      say('error', `The GPU could not be opened again: ${errorText(restartError)}. Reload the page.`, 'lost');
      return;
    }
    run.done = 0;
    run.state = 'idle';
    updateButtons();
    if (app.st) say('error', `The run stopped at step ${run.done}: ${errorText(e)}. The engine was restarted: ` +
      'Start runs again (the image of this run is gone).', 'run');
    return;
  }
  // A diverged run put its last finite image back: show it.
  try { app.st.render($('output-canvas')); } catch { /* nothing to draw */ }
}

/** Replaces the engine with a fresh one on a new device (the weights are kept in memory). */
async function restartEngine() {
  const old = app.st;
  if (old) {
    old.destroyedByUs = true;
    try { old.destroy(); } catch { /* already gone */ }
  }
  app.engineQueue = Promise.resolve();
  app.st = null;
  try {
    app.st = await withTimeout(StyleTransfer.create(), 30000, 'Opening the GPU again');
    app.st.onDeviceLost((r) => onDeviceLost(r));
    await app.st.loadWeights(app.weightsBytes);
  } catch (e) {
    app.st = null;
    throw e;
  } finally {
    updateButtons();
  }
}

/** The GPU device is gone (driver reset, GPU process crash, tab in the background too long…):
 *  make a new engine and, when a run was going, continue it from the last saved image. */
async function onDeviceLost(reason) {
  if (app.recovering || !app.st || app.st.destroyedByUs) return;
  app.recovering = true;
  const run = app.run;
  const wasRunning = run.state === 'running';
  const wasActive = wasRunning || run.state === 'paused';
  if (wasActive) run.state = 'recovering'; // makes the loop leave after its pending step fails
  updateButtons();
  say('warn', `The GPU device was lost (${reason}). Restarting the engine…`, 'lost');
  try {
    const old = app.st;
    old.destroyedByUs = true;
    try { old.destroy(); } catch { /* already gone */ }
    // The old loop's pending step fails now that its device is gone; wait for it to leave.
    if (run.looping && run.loopPromise) await withTimeout(run.loopPromise, app.stepTimeoutMs, 'The interrupted step');
    await restartEngine();
    if (wasActive) {
      const snap = run.snapshot;
      // The run's own inputs (taken at Start), not what the panels hold now.
      pushInputs(run.inputs, snap || run.inputs.init);
      if (snap) {
        // The saved image already holds `snap.step` steps of work: only the rest remains.
        run.done = snap.step;
        say('warn', `The GPU device was lost (${reason}). The engine restarted and the run continues from step ` +
          `${snap.step}, the last saved image.`, 'lost');
      } else {
        run.done = 0;
        plot.clear();
        say('warn', `The GPU device was lost (${reason}). The engine restarted; no image had been saved yet, so ` +
          'the run starts again from the beginning.', 'lost');
      }
      run.state = wasRunning ? 'running' : 'paused';
    } else {
      if (run.done > 0) run.done = 0; // the old image was on the lost device
      say('warn', `The GPU device was lost (${reason}); the engine restarted and is ready.`, 'lost');
    }
  } catch (e) {
    app.st = null;
    run.state = 'idle';
    say('error', `The GPU device was lost (${reason}) and could not be restarted: ${errorText(e)}. ` +
      'Reload the page to try again.', 'lost');
  } finally {
    app.recovering = false;
    updateButtons();
  }
  if (app.run.state === 'running') startLoop();
}

// ---------------------------------------------------------------------------------------------
// Output

async function download() {
  try {
    const rgba = await engine(() => app.st.image());
    const width = app.st.width;
    const height = app.st.height;
    const blob = await encodePng(rgba, width, height);
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    const base = (app.content && app.content.name ? app.content.name : 'image').replace(/\.[a-z0-9]+$/i, '')
      .replace(/[^a-z0-9_-]+/gi, '-');
    a.download = `stylized-${base}-${width}x${height}.png`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  } catch (e) {
    say('error', `Download failed: ${errorText(e)}`, 'download');
  }
}

async function copyLink() {
  const settings = currentSettings();
  if (!settings) return;
  let fragment;
  try {
    const styles = app.styles.filter((s) => s.url).map((s) => ({ url: s.url, weight: s.weight }));
    const contentUrl = app.content && app.content.url ? app.content.url : undefined;
    fragment = StyleTransfer.makeLink(JSON.stringify(settings.raw), JSON.stringify(styles), contentUrl);
  } catch (e) {
    say('error', `Cannot make a link: ${errorText(e)}`, 'link');
    return;
  }
  const url = `${location.href.split('#')[0]}#${fragment}`;
  app.lastLinkWritten = `#${fragment}`;
  history.replaceState(null, '', url);
  const field = $('share-link');
  field.hidden = false;
  field.value = url;
  const uploads = app.styles.filter((s) => !s.url).length + (app.content && !app.content.url ? 1 : 0);
  const left = uploads ? ` ${uploads} image(s) you uploaded are not in it (uploads never leave this computer).` : '';
  try {
    // Some browsers leave the promise pending while they ask for permission: do not wait for ever.
    await withTimeout(navigator.clipboard.writeText(url), 2000, 'Copying to the clipboard');
    say('info', `Link copied to the clipboard.${left}`, 'link');
  } catch {
    field.select();
    say('info', `Link ready below: copy it with Ctrl+C.${left}`, 'link');
  }
}

/** Restores settings (and style/content URLs) from a share link. Values only ever reach the form
 *  through the Rust parser and element.value/textContent: never as HTML. */
async function applyLink(hash) {
  const link = StyleTransfer.parseLink(hash);
  for (const w of link.warnings) say('warn', `Share link: ${w}`);
  if (!['content', 'noise', 'style'].includes(link.settings.init)) {
    // A file path: meaningless (and never opened) in a browser.
    say('warn', 'Share link: init names a file, which a page cannot open (ignored; use "Initial image").');
    link.settings.init = 'content';
  }
  app.form.write(link.settings);
  if (link.settings.preset) {
    const preset = app.presets.find((p) => p.name === link.settings.preset);
    if (preset) say('info', `Link uses the preset "${preset.name}": ${preset.description}`, 'preset');
  }
  settingsChanged();
  const jobs = [];
  if (link.content) jobs.push(loadContentUrl(link.content));
  if (link.styles.length) {
    app.styles = [];
    renderStyleList();
    for (const s of link.styles) jobs.push(addStyleFromUrl(s.url, null, s.weight));
  }
  await Promise.all(jobs);
  // Keep the link's order of styles (fetches finish in any order).
  const order = link.styles.map((s) => s.url);
  app.styles.sort((a, b) => order.indexOf(a.url) - order.indexOf(b.url));
  renderStyleList();
  settingsChanged();
}

main().catch((e) => say('error', `The page failed to start: ${errorText(e)}`));
