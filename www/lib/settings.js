// The settings form read through the Rust settings code, the engine's plan for them (GPU memory, FLOPs,
// refusals), the estimate shown under the form, and the GPU memory budget.

import { StyleTransfer } from '../pkg/stylize.js';
import { app, $ } from './state.js';
import { say, clearMessage, errorText, formatBytes, formatDuration } from './ui.js';
import { updateButtons } from './buttons.js';

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
  updateEstimate();
  updateButtons();
}

/** The engine's plan for the form's settings and the images loaded now (the one place sizes, bytes
 *  and FLOPs are worked out; the page never counts them itself). Throws with the reason. */
export function planFor(settingsRaw) {
  app.st.setMemoryBudget(memoryBudget());
  const request = { settings: settingsRaw };
  if (app.content) request.content = [app.content.width, app.content.height];
  if (app.styles.length) request.styles = app.styles.map((s) => [s.width, s.height, s.weight]);
  return app.st.plan(JSON.stringify(request));
}

export function measuredGflops() {
  const stored = Number(localStorage.getItem(`stylize.gflops.${app.adapterName}`));
  return Number.isFinite(stored) && stored > 0 ? stored : null;
}

export function updateEstimate() {
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
  const steps = est.total_steps;
  const measured = measuredGflops();
  // Without a measurement: software adapters do ~2 GFLOP/s, a real GPU with these kernels far more.
  const gflops = measured || (app.adapterFallback ? 2 : 200);
  const perStep = est.flops_per_step / (gflops * 1e9);
  // The whole schedule: every scale's steps at its own cost.
  const total = est.schedule.reduce((t, s) => t + s.steps * s.flops_per_step, 0) / (gflops * 1e9);
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
    (measured ? `(at ${measured.toFixed(1)} GFLOP/s measured on this GPU).` : `(a guess: ${gflops} GFLOP/s; measured after a run).`);
}

/** The GPU memory budget: the advanced setting (MiB, kept in localStorage), else the engine's default. */
export function memoryBudget() {
  const field = $('memory-budget');
  const mib = field ? Number(field.value) : NaN;
  return Number.isFinite(mib) && mib >= 16 ? mib * 1048576 : StyleTransfer.limits().defaultMemoryBudget;
}
