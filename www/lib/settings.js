// The settings form read through the Rust settings code, the engine's plan for them (GPU memory, FLOPs,
// refusals), the estimate shown under the form, and the GPU memory budget.

import { StyleTransfer } from '../pkg/stylize.js';
import { app, $ } from './state.js';
import { say, clearMessage, errorText, formatBytes, formatDuration } from './ui.js';
import { updateButtons } from './buttons.js';
import { LONG_RUN_SECONDS } from './choices.js';

/** The form's settings checked by the Rust settings code; null (with a message shown) when invalid. */
export function currentSettings() {
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

export function settingsChanged() {
  $('long-run').hidden = true; // it asked about other settings
  updateEstimate();
  if (app.syncSimple) app.syncSimple();
  updateButtons();
}

/** The engine's plan for the form's settings and the images loaded now (the one place sizes, bytes
 *  and FLOPs are worked out; the page never counts them itself). Throws with the reason. */
export function planFor(settingsRaw, { content, styles } = { content: app.content, styles: app.styles }) {
  app.st.setMemoryBudget(memoryBudget());
  const request = { settings: settingsRaw };
  if (content) request.content = [content.width, content.height];
  if (styles.length) request.styles = styles.map((s) => [s.width, s.height, s.weight]);
  return app.st.plan(JSON.stringify(request));
}

export function measuredGflops() {
  const stored = Number(localStorage.getItem(`stylize.gflops.${app.adapterName}`));
  return Number.isFinite(stored) && stored > 0 ? stored : null;
}

/** The GPU's speed in GFLOP/s: measured by an earlier run in this browser, else a guess (software
 *  adapters do about 2, a real GPU with these kernels far more). */
export function gpuSpeed() {
  const measured = measuredGflops();
  return { gflops: measured || (app.adapterFallback ? 2 : 200), measured: measured !== null };
}

/** Seconds a planned run takes at `gflops`: every scale's steps at its own cost. */
export function runSeconds(plan, gflops = gpuSpeed().gflops) {
  return plan.schedule.reduce((t, s) => t + s.steps * s.flops_per_step, 0) / (gflops * 1e9);
}

/** The form's settings with `overrides`, planned and timed: {plan, seconds}, or null when the engine
 *  cannot plan them or they do not fit. */
export function timeOf(overrides) {
  if (!app.st) return null;
  try {
    const raw = { ...app.form.read(), ...overrides };
    const plan = planFor(raw);
    return plan.fits ? { plan, seconds: runSeconds(plan) } : null;
  } catch {
    return null;
  }
}

export function updateEstimate() {
  const el = $('estimate');
  const brief = $('run-estimate');
  app.refusal = null;
  brief.textContent = '';
  brief.classList.remove('refuse');
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
  const steps = est.total_steps;
  const { gflops, measured } = gpuSpeed();
  const perStep = est.flops_per_step / (gflops * 1e9);
  const total = runSeconds(est, gflops);
  const scales = est.schedule.length > 1 ? ` over ${est.schedule.length} scales (${est.schedule.map((s) => s.size).join(', ')} px)` : '';
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
    `${formatDuration(total)} for ${steps} steps${scales} ` +
    (measured ? `(at ${gflops.toFixed(1)} GFLOP/s measured on this GPU).` : `(a guess: ${gflops} GFLOP/s; measured after a run).`);
  brief.textContent = `${w}×${h} px, about ${formatDuration(total)} on this GPU` + (measured ? '' : ' (a guess until a run has measured it)');
  brief.classList.toggle('refuse', total > LONG_RUN_SECONDS);
}

/** The GPU memory budget: the advanced setting (MiB, kept in localStorage), else the engine's default. */
export function memoryBudget() {
  const field = $('memory-budget');
  const mib = field ? Number(field.value) : NaN;
  return Number.isFinite(mib) && mib >= 16 ? mib * 1048576 : StyleTransfer.limits().defaultMemoryBudget;
}
