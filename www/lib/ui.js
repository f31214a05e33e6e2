// Messages in the page (#messages; see messages.js for which ones stay), error texts, unexpected
// errors and wasm traps, timeouts, and the formatting of bytes and durations.

import { MessageList } from './messages.js';
import { app, $ } from './state.js';
import { updateButtons } from './buttons.js';

/** Messages kept at most (the oldest go): enough for one warning per bad value of a hostile link. */
const MAX_MESSAGES = 8;
const shown = new MessageList(MAX_MESSAGES, (item) => item.el && item.el.remove());

/** The keys of messages about the run: they show beside Start and the canvas (#run-messages), the
 *  others at the top of the page. */
const RUN_KEYS = new Set(['run', 'done', 'lost', 'next-run', 'snapshot', 'download', 'link', 'crash', 'result',
  'slow-gpu']);

/** Shows a message in the page. It replaces an earlier one with the same `key` or the same text.
 *  `action` ({label, run}) adds a button to it. */
export function say(kind, text, key = null, action = null) {
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
  close.setAttribute('aria-label', 'dismiss this message');
  close.textContent = '×';
  close.addEventListener('click', () => shown.drop(item));
  if (action) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'action small';
    b.textContent = action.label;
    b.addEventListener('click', () => action.run());
    p.append(b);
  }
  p.append(close);
  $(RUN_KEYS.has(key) ? 'run-messages' : 'messages').append(p);
  if (kind === 'error') console.error(text);
  return p;
}

export function clearMessage(key) {
  shown.remove(key);
}

export function errorText(e) {
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

/** Rejects when `promise` takes longer than `ms`; with `progress` (a function returning a count that
 *  grows while the work advances, polled four times a second), only when it stops advancing for `ms`. */
export function withTimeout(promise, ms, what, progress = null) {
  let timer;
  const timeout = new Promise((_, reject) => {
    let seen = progress ? progress() : null;
    let deadline = performance.now() + ms;
    const check = () => {
      if (progress) {
        const now = progress();
        if (now !== seen) {
          seen = now;
          deadline = performance.now() + ms;
        }
      }
      const left = deadline - performance.now();
      if (left > 0) {
        timer = setTimeout(check, progress ? Math.min(250, left) : left);
        return;
      }
      const e = new Error(`${what} did not finish within ${Math.round(ms / 1000)} s: ` +
        'the GPU seems stuck (try a smaller size)');
      e.timedOut = true;
      reject(e);
    };
    timer = setTimeout(check, progress ? Math.min(250, ms) : ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

export function formatBytes(n) {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(n >= 100 * 1024 ** 2 ? 0 : 1)} MiB`;
  return `${Math.round(n / 1024)} KiB`;
}

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return '–';
  if (seconds < 1) return `${seconds.toFixed(2)} s`;
  if (seconds < 90) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
