// The page: wires the inputs, the settings form and the run loop to the wasm engine (StyleTransfer).
//
// Rules kept throughout: every error ends up in the page (#messages), never only in the console; no
// value from a link or a file name is ever inserted as HTML (textContent only); the page stays responsive
// during a run (one awaited step at a time, yielding to the event loop between steps).
//
// This file is the start-up (engine, GPU, weights, settings form); the rest is in lib/: state.js (the
// `app` object), ui.js (messages, formatting), buttons.js, settings.js (reading the form, the estimate),
// choices.js and simple.js (the simple controls, "Advanced"), inputs.js, run.js (the step loop, device
// loss, download), compare.js (the canvas's stage: fit, 1:1, before/after), results.js (this visit's
// results), links.js (share links), offline.js (the service worker), benchmark.js ("Benchmark this
// GPU") and wakelock.js.

import init, { StyleTransfer } from './pkg/stylize.js';
import { setInputPixelCap } from './lib/images.js';
import { fetchWeights, forgetWeights } from './lib/weights.js';
import { SettingsForm } from './lib/controls.js';
import { setupStrength } from './lib/strength.js';
import { app, $ } from './lib/state.js';
import { say, clearMessage, errorText, withTimeout, formatBytes } from './lib/ui.js';
import { updateButtons } from './lib/buttons.js';
import { settingsChanged, updateEstimate } from './lib/settings.js';
import { CONTENT_SAMPLES, setupInputs, loadContentSample } from './lib/inputs.js';
import { plot, setupRunButtons, onDeviceLost } from './lib/run.js';
import { applyLink, watchLinks } from './lib/links.js';
import { setupSimple, chooseFirstRun } from './lib/simple.js';
import { setupStage } from './lib/compare.js';
import { setupOffline, showOfflineStatus } from './lib/offline.js';
import { setupBenchmark } from './lib/benchmark.js';

const WEIGHTS_URL = 'weights/vgg19.q8.bin';

// ---------------------------------------------------------------------------------------------
// Start-up

async function main() {
  await setupOffline();
  try {
    await init();
  } catch (e) {
    say('error', `The engine (www/pkg) could not be loaded: ${errorText(e)}. If you built the site yourself, ` +
      'run ./build.sh first.');
    return;
  }
  setInputPixelCap(StyleTransfer.limits().maxInputPixels);
  setupForm();
  setupSimple();
  setupInputs();
  setupRunButtons();
  setupStage();
  setupBenchmark();
  plot.draw();
  const linked = location.hash.length > 1 ? applyLink(location.hash) : null;
  watchLinks();
  await setupGpu();
  if (app.st) await loadWeights();
  await linked;
  if (!app.content) await loadContentSample(CONTENT_SAMPLES[0], { quiet: true });
  chooseFirstRun();
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
  showOfflineStatus();
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
      app.weightsCached = fetched.cached;
      showOfflineStatus();
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
  app.syncStrength = setupStrength({
    slider: $('style-strength'), output: $('style-strength-value'), alphaInput: app.form.element('content_weight'),
    betaInput: app.form.element('style_weight'), defaults, changed: () => settingsChanged(),
  });
  $('settings-form').addEventListener('change', (e) => {
    if (e.target && e.target.id === 'set-preset') applyPreset(e.target.value);
  });
  $('settings-form').addEventListener('input', () => {
    app.userChose = true; // the first run's choice from the GPU's speed leaves the user's values alone
    settingsChanged();
  });
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

main().catch((e) => say('error', `The page failed to start: ${errorText(e)}`));
