// Which run buttons are enabled, from the state alone (the page calls this after every change).

import { app, $ } from './state.js';
import { keepAwake } from './wakelock.js';
import { updateBenchmark } from './benchmark.js';

/** Why Start cannot run now, or null. */
export function startBlocker() {
  if (app.engineDead) return 'the engine crashed: reload the page';
  if (!app.st) return app.gpuError ? 'WebGPU is not available in this browser' : 'the GPU is not ready yet';
  if (!app.weightsReady) return 'the weights are not loaded yet';
  if (app.benchmarking) return 'the GPU benchmark to finish';
  if (!app.content) return 'choose a photo';
  if (app.styles.length === 0) return 'choose a painting (a sample, or your own)';
  if (app.styles.every((s) => s.weight <= 0)) return 'give at least one style a blend weight above 0';
  if (app.refusal) return app.refusal;
  return null;
}

export function updateButtons() {
  const { state } = app.run;
  const active = state === 'running' || state === 'paused' || state === 'recovering';
  const blocker = startBlocker();
  const start = $('btn-start');
  start.disabled = active || blocker !== null || app.recovering;
  start.title = blocker ? `Cannot start: ${blocker}` : 'Build the network for these images and settings, then run the steps';
  // Said beside the button, not only in its tooltip.
  const reason = $('start-reason');
  reason.hidden = blocker === null || active;
  reason.textContent = blocker ? `Start needs: ${blocker}.` : '';
  $('btn-pause').disabled = state !== 'running';
  $('btn-resume').disabled = state !== 'paused';
  $('btn-stop').disabled = !active;
  $('btn-reset').disabled = (state === 'idle' && app.run.done === 0) || app.benchmarking === true;
  $('btn-download').disabled = app.run.done === 0 || state === 'running';
  app.form.setEnabled(!active && !app.benchmarking);
  if (app.syncStrength) app.syncStrength();
  $('memory-budget').disabled = active;
  document.body.dataset.runState = state;
  keepAwake(state === 'running');
  updateBenchmark();
}
