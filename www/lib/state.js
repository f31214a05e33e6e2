// The page's shared state: the `app` object (window.stylizeApp, which the browser tests read), the `$`
// helper, and the queue that serialises calls into the engine. No imports and no DOM work at import, so
// every other module can take it first.

/** A GPU-side step that takes longer than this is treated as hung (the page says so instead of freezing). */
// A step that takes longer is taken as a stuck GPU (app.stepTimeoutMs: the tests shorten it).
export const STEP_TIMEOUT_MS = 180000;

export const $ = (id) => document.getElementById(id);

export const app = {
  st: null, // StyleTransfer when WebGPU works
  gpuError: null, // why there is none
  weightsBytes: null, // kept to rebuild the engine after a lost device
  weightsReady: false,
  form: null,
  syncStrength: null, // moves the style-strength slider to the form's weights (lib/strength.js)
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

export function runActive() {
  return ['running', 'paused', 'recovering'].includes(app.run.state);
}

/** Runs `fn` after every engine call queued before it (readbacks and steps never overlap). */
export function engine(fn) {
  const result = app.engineQueue.then(fn, fn);
  app.engineQueue = result.catch(() => {});
  return result;
}
