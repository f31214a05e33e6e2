// "Benchmark this GPU": every conv kernel variant per layer shape and the whole step, timed by the
// engine (st.benchmark), shown as tables and as text to copy into a report.

import { app, $, engine, runActive } from './state.js';
import { say, clearMessage, errorText, withTimeout } from './ui.js';
import { clearRun } from './run.js';
import { updateButtons } from './buttons.js';

export function setupBenchmark() {
  $('btn-bench-open').addEventListener('click', () => {
    $('gpu-bench').hidden = false;
    updateBenchmark();
    $('btn-bench-run').focus();
  });
  $('btn-bench-close').addEventListener('click', () => {
    $('gpu-bench').hidden = true;
    $('btn-bench-open').focus();
  });
  $('btn-bench-run').addEventListener('click', () => runBenchmark());
  $('btn-bench-copy').addEventListener('click', () => copyFigures());
}

/** Shows the open button once the engine can run, and disables Run during a run or a benchmark. */
export function updateBenchmark() {
  const ready = Boolean(app.st && app.weightsReady && !app.engineDead);
  $('btn-bench-open').hidden = !ready;
  const run = $('btn-bench-run');
  run.disabled = !ready || runActive() || app.benchmarking === true;
  run.title = runActive() ? 'Stop the run first: the benchmark needs the GPU to itself' : 'Time the kernels and the steps on this GPU';
}

async function runBenchmark() {
  const sizes = $('bench-sizes').value.split(',').map(Number);
  const status = $('bench-status');
  app.benchmarking = true;
  updateButtons(); // Start, Reset and the settings wait for the benchmark
  clearMessage('benchmark');
  status.textContent = `Running at ${sizes.join(' and ')} px: timing each kernel variant, then whole steps…`;
  const st = app.st;
  try {
    if (app.run.done > 0) await clearRun();
    const started = performance.now();
    const result = await engine(() => withTimeout(st.benchmark(sizes), app.stepTimeoutMs, 'The benchmark', () => st.gpuProgress()));
    showFigures(result);
    status.textContent = `Done in ${((performance.now() - started) / 1000).toFixed(1)} s. The engine keeps these choices for this GPU.`;
  } catch (e) {
    status.textContent = 'The benchmark failed.';
    say('error', `Benchmark: ${errorText(e)}`, 'benchmark');
  } finally {
    app.benchmarking = false;
    updateButtons();
  }
}

function cell(row, text, tag = 'td') {
  const el = document.createElement(tag);
  el.textContent = text;
  row.append(el);
  return el;
}

function table(el, header, rows) {
  el.textContent = '';
  const head = document.createElement('tr');
  for (const h of header) cell(head, h, 'th');
  el.append(head);
  for (const r of rows) el.append(r);
  el.hidden = false;
}

function showFigures(result) {
  const steps = result.steps.map((s) => {
    const tr = document.createElement('tr');
    cell(tr, `${s.size} px`);
    cell(tr, `${s.ms.toFixed(1)} ms`);
    return tr;
  });
  table($('bench-steps'), ['size', 'whole step'], steps);
  const layers = result.layers.map((l) => {
    const tr = document.createElement('tr');
    cell(tr, l.op);
    cell(tr, l.map);
    cell(tr, l.channels);
    result.variants.forEach((name, i) => {
      const c = l.cells[i];
      const td = cell(tr, c ? `${c.ms.toFixed(2)} ms · ${c.gflops.toFixed(1)} GFLOP/s` : '–');
      if (name === l.chosen) td.className = 'chosen';
    });
    cell(tr, l.chosen);
    return tr;
  });
  table($('bench-layers'), ['op', 'map', 'channels', ...result.variants, 'chosen'], layers);
  $('bench-text').value = result.text;
  $('bench-text-box').hidden = false;
  $('btn-bench-copy').disabled = false;
}

async function copyFigures() {
  const text = $('bench-text').value;
  try {
    await navigator.clipboard.writeText(text);
    $('bench-status').textContent = 'Copied the figures as text.';
  } catch {
    // No clipboard permission (or an old browser): leave the text selected for Ctrl+C.
    $('bench-text-box').open = true;
    $('bench-text').select();
    $('bench-status').textContent = 'The figures are selected below: press Ctrl+C (⌘C) to copy them.';
  }
}
