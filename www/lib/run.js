// The run: Start, Pause, Resume, Stop, Reset and Download; the step loop, its stats and loss plot, the
// recovery snapshots, a failed or stuck step, and a new engine after a lost GPU device.

import { StyleTransfer } from '../pkg/stylize.js';
import { encodePng } from './images.js';
import { LossPlot } from './plot.js';
import { app, $, engine } from './state.js';
import { say, clearMessage, errorText, withTimeout, nextTask, formatDuration } from './ui.js';
import { startBlocker, updateButtons } from './buttons.js';
import { currentSettings, planFor, updateEstimate, measuredGflops, memoryBudget, runSeconds } from './settings.js';
import { copyLink, openPendingLink } from './links.js';
import { LONG_RUN_SECONDS } from './choices.js';
import { addResult } from './results.js';
import { showResult, stageChanged } from './compare.js';

/** Every this many steps the current image is read back, so that a lost device can resume from it
 *  (every step for small images, whose readback costs next to nothing). */
const SNAPSHOT_EVERY = 20;
const SNAPSHOT_ALWAYS_PIXELS = 128 * 128;

export const plot = new LossPlot($('loss-plot'));

export function setupRunButtons() {
  $('btn-start').addEventListener('click', () => start());
  $('btn-start-anyway').addEventListener('click', () => start({ confirmed: true }));
  $('btn-long-cancel').addEventListener('click', () => { $('long-run').hidden = true; $('btn-start').focus(); });
  $('btn-pause').addEventListener('click', () => pause());
  $('btn-resume').addEventListener('click', () => resume());
  $('btn-stop').addEventListener('click', () => stop());
  $('btn-reset').addEventListener('click', () => reset());
  $('btn-download').addEventListener('click', () => downloadImage());
  $('btn-link').addEventListener('click', () => copyLink());
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

async function start({ confirmed = false } = {}) {
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
  let plan;
  try {
    plan = planFor(settings.raw);
  } catch (e) {
    say('error', `Cannot start: ${errorText(e)}`, 'run');
    return;
  }
  const seconds = runSeconds(plan);
  if (!confirmed && seconds > LONG_RUN_SECONDS) {
    // Asked beside Start (the current image stays until the answer): a first click must not start hours
    // of work on a slow GPU. Cancel has the focus, so that a held Enter does not start it.
    $('long-run-text').textContent = `This run would take about ${formatDuration(seconds)} on this GPU. A smaller size ` +
      'or a faster quality finishes sooner.';
    $('long-run').hidden = false;
    $('btn-long-cancel').focus();
    return;
  }
  $('long-run').hidden = true;
  const run = app.run;
  // A Stop just before: let the old loop finish its last step (and keep its result) first.
  if (run.looping) await run.loopPromise;
  try {
    pushInputs(inputs);
    app.st.reset();
  } catch (e) {
    say('error', `Cannot start: ${errorText(e)}`, 'run');
    return;
  }
  Object.assign(run, { state: 'running', total: plan.total_steps, done: 0, stepSeconds: NaN, scale: 0,
    snapshot: null, inputs, schedule: plan.schedule, offset: 0, timedFlops: 0, timedSeconds: 0, recorded: false,
    startedAt: performance.now(), runSeconds: 0 });
  showResult(null);
  $('stat-scale').textContent = plan.schedule.length > 1 ? `1 of ${plan.schedule.length}` : '–';
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
  if (!app.run.looping) {
    // Paused, so no loop is left to record it.
    if (wasActive) recordResult();
    openPendingLink();
  }
}

/** Ends and clears the run (the Reset button): the benchmark needs the GPU to itself. */
export async function clearRun() {
  await reset();
}

async function reset() {
  app.run.state = 'idle';
  if (app.run.looping) await app.run.loopPromise;
  await app.engineQueue;
  if (app.st) app.st.reset();
  Object.assign(app.run, { done: 0, total: 0, snapshot: null, stepSeconds: NaN });
  plot.clear();
  showResult(null);
  $('output-canvas').classList.add('blank');
  $('canvas-empty').hidden = false;
  for (const id of ['stat-step', 'stat-scale', 'stat-rate', 'stat-left', 'stat-loss']) $(id).textContent = '–';
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
        // A tiled step can take minutes: the counter shows its tile, and the watchdog waits for
        // any finished GPU work (a tile pass, a part of the run's setup) rather than the whole step.
        // The first step on a GPU also times the conv kernel variants ("tuning for this GPU…").
        const tiles = () => {
          const p = st.tileProgress() || st.tuning();
          if (p) $('stat-step').textContent = `${run.done + 1} / ${run.total} · ${p.text}`;
          return st.gpuProgress();
        };
        losses = await engine(() => withTimeout(st.step(), app.stepTimeoutMs, `Step ${run.done + 1}`, tiles));
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
      timeStep(run, losses, seconds);
      if (run.done === 1) {
        canvas.classList.remove('blank');
        $('canvas-empty').hidden = true;
      }
      if (run.width !== app.st.width || run.height !== app.st.height) {
        run.width = app.st.width;
        run.height = app.st.height;
        stageChanged();
      }
      const point = { step: run.done, content: losses.content, style: losses.style, tv: losses.tv, total: losses.total };
      run.lastLosses = { ...point, scale: losses.scale, scales: losses.scales, width: losses.width, height: losses.height };
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
    if (run.state === 'done' || run.state === 'stopped') await recordResult();
  } finally {
    run.looping = false;
    // Resume clicked while this loop was leaving (its pause readback): go on.
    if (run.state === 'running' && !app.recovering) startLoop();
    updateButtons();
    openPendingLink();
  }
}

/** The step's cost at its scale: the first step of each scale builds that scale's network, so it
 *  stays out of the speed (steps/s per scale, GFLOP/s over the run). */
function timeStep(run, losses, seconds) {
  const scale = Math.max(1, losses.scale || 1);
  const flops = (run.schedule[scale - 1] || run.schedule[run.schedule.length - 1]).flops_per_step;
  if (scale !== run.scale) {
    run.scale = scale;
    run.stepSeconds = NaN;
    return;
  }
  run.stepSeconds = Number.isNaN(run.stepSeconds) ? seconds : 0.8 * run.stepSeconds + 0.2 * seconds;
  run.timedFlops += flops;
  run.timedSeconds += seconds;
}

/** FLOPs of the steps still to run, over the whole schedule (which a recovery may have started at
 *  step `offset`). */
function flopsLeft(run) {
  const done = run.done - (run.offset || 0);
  let before = 0;
  let left = 0;
  for (const s of run.schedule) {
    left += Math.max(0, Math.min(s.steps, before + s.steps - done)) * s.flops_per_step;
    before += s.steps;
  }
  return left;
}

/** A coarse-to-fine run recovered from a snapshot below its final size: the settings whose schedule
 *  starts at the snapshot's scale (that scale runs its steps again from the snapshot, then the larger
 *  ones), and their plan. Null at the final size, where the run simply goes on to its total. */
function resumeAt(run, snap) {
  const schedule = run.schedule || [];
  const side = Math.max(snap.width, snap.height);
  if (schedule.length < 2 || side >= schedule[schedule.length - 1].size) return null;
  const settingsRaw = { ...run.inputs.settingsRaw, min_size: side };
  // A scale count keeps the sizes: as many scales as are left.
  if (/^[0-9]+$/.test(String(settingsRaw.scales))) settingsRaw.scales = String(schedule.filter((s) => s.size >= side).length);
  try {
    return { settingsRaw, plan: planFor(settingsRaw, run.inputs) };
  } catch {
    return null; // (not expected: the same images planned at Start) the schedule from its first scale
  }
}

function showStats() {
  const run = app.run;
  const l = run.lastLosses;
  $('stat-step').textContent = `${run.done} / ${run.total}`;
  if (l.scales > 1) $('stat-scale').textContent = `${l.scale} of ${l.scales} · ${l.width}×${l.height}`;
  if (run.stepSeconds > 0) {
    $('stat-rate').textContent = (1 / run.stepSeconds).toFixed(run.stepSeconds > 1 ? 2 : 1);
  }
  if (run.timedSeconds > 0) {
    $('stat-left').textContent = formatDuration(flopsLeft(run) / (run.timedFlops / run.timedSeconds));
  }
  $('stat-loss').textContent = `${l.total.toExponential(3)} (content ${l.content.toExponential(2)}, ` +
    `style ${l.style.toExponential(2)}, tv ${l.tv.toExponential(2)})`;
}

function rememberSpeed() {
  const run = app.run;
  if (!(run.timedSeconds > 0) || !app.adapterName) return;
  // Tiny runs are dominated by per-dispatch overhead: they would make big sizes look slower than they
  // are, so they only count while nothing better is known.
  if (run.width * run.height < 96 * 96 && measuredGflops() !== null) return;
  const gflops = run.timedFlops / run.timedSeconds / 1e9;
  try {
    localStorage.setItem(`stylize.gflops.${app.adapterName}`, gflops.toPrecision(3));
  } catch {
    // Storage disabled: the estimate stays a guess.
  }
  updateEstimate();
}

/** Keeps the run's image and what made it in this visit's results (once per run). */
async function recordResult() {
  const run = app.run;
  if (run.recorded || run.done === 0 || !app.st || !run.inputs) return;
  run.recorded = true;
  try {
    if (run.state === 'stopped') {
      // Stopped before its last step: the colour mode puts the photo's colours in now (the last step
      // does it by itself), so that the canvas, the download and the results show them.
      await engine(() => app.st.finish());
      app.st.render($('output-canvas'));
    }
    const rgba = await engine(() => app.st.image());
    const { inputs } = run;
    addResult({ rgba, width: app.st.width, height: app.st.height, steps: run.done, totalSteps: run.total,
      settingsRaw: inputs.settingsRaw, content: inputs.content, styles: inputs.styles });
  } catch (e) {
    if (!app.st || !app.st.lostReason()) say('warn', `This run's image could not be kept in the results: ${errorText(e)}`, 'result');
  }
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
    const at = run.done;
    run.done = 0;
    run.state = 'idle';
    updateButtons();
    if (app.st) say('error', `The run stopped at step ${at}: ${errorText(e)}. The engine was restarted: ` +
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
export async function onDeviceLost(reason) {
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
    // Stop or Reset pressed while it recovered: the run stays ended.
    if (wasActive && run.state !== 'recovering') {
      updateButtons();
      return;
    }
    if (wasActive) {
      const snap = run.snapshot;
      // The run's own inputs (taken at Start), not what the panels hold now; a coarse-to-fine run goes on
      // at the snapshot's scale.
      const resumed = snap ? resumeAt(run, snap) : null;
      pushInputs(resumed ? { ...run.inputs, settingsRaw: resumed.settingsRaw } : run.inputs, snap || run.inputs.init);
      if (snap) {
        // The saved image already holds `snap.step` steps of work: only the rest remains.
        run.done = snap.step;
        if (resumed) Object.assign(run, { total: snap.step + resumed.plan.total_steps, schedule: resumed.plan.schedule, offset: snap.step });
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

/** Saves the current image, or an earlier result of this visit, as a PNG at full size. */
export async function downloadImage(result = null) {
  try {
    const rgba = result ? result.rgba : await engine(() => app.st.image());
    const width = result ? result.width : app.st.width;
    const height = result ? result.height : app.st.height;
    const content = result ? result.content : app.run.inputs ? app.run.inputs.content : app.content;
    const blob = await encodePng(rgba, width, height);
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    const base = (content && content.name ? content.name : 'image').replace(/\.[a-z0-9]+$/i, '')
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
