// Offline use: registers the service worker (sw.js), offers "Reload now" when a new version of the page
// is saved (it is used from the next load), and says in the page whether it works offline.

import { app, $, runActive } from './state.js';
import { say, errorText } from './ui.js';

const offline = { state: 'checking', reason: '' };

/** Registers the worker and watches for a new version. */
export async function setupOffline() {
  window.addEventListener('online', showOfflineStatus);
  window.addEventListener('offline', showOfflineStatus);
  if (!('serviceWorker' in navigator)) {
    setState('unavailable', 'this browser has no service workers' + (window.isSecureContext ? '' : ' here (the page is not on https or localhost)'));
    return;
  }
  let registration;
  try {
    // The worker's own file never changes between versions, only precache.js: the update check must
    // not read it from the HTTP cache.
    registration = await navigator.serviceWorker.register('sw.js', { updateViaCache: 'none' });
  } catch (e) {
    setState('unavailable', `the service worker could not be registered: ${errorText(e)}`);
    return;
  }
  // A page loaded from a saved version keeps it (sw.js answers it from that version); a newer one,
  // installed whole, is used from the next load.
  const loadedFromSaved = Boolean(navigator.serviceWorker.controller);
  const watch = (worker) => {
    if (!worker) return;
    worker.addEventListener('statechange', () => {
      if (worker.state === 'activated') {
        setState('ready');
        if (loadedFromSaved) {
          say('info', 'A new version of this page is saved: it is used from the next reload.', 'update',
            { label: 'Reload now', run: reloadNow });
        }
      } else if (worker.state === 'redundant' && !registration.active) {
        setState('unavailable', 'the files for offline use could not be saved (see the console)');
      }
    });
  };
  registration.addEventListener('updatefound', () => watch(registration.installing));
  watch(registration.installing);
  setState(registration.active ? 'ready' : 'installing');
}

function reloadNow() {
  if (runActive()) {
    say('info', 'A run is going: stop it first, or reload later (the next load uses the new version).', 'update',
      { label: 'Reload now', run: reloadNow });
    return;
  }
  location.reload();
}

function setState(state, reason = '') {
  offline.state = state;
  offline.reason = reason;
  showOfflineStatus();
}

/** The status line and the header's badge (called again when the weights are in). */
export function showOfflineStatus() {
  const online = navigator.onLine;
  $('offline-badge').hidden = online;
  document.body.dataset.offline = online ? 'no' : 'yes';
  document.body.dataset.offlineReady = String(offline.state === 'ready' && app.weightsCached === true);
  const el = $('offline-status');
  if (offline.state === 'unavailable') {
    el.textContent = `not available: ${offline.reason}`;
  } else if (offline.state === 'installing' || offline.state === 'checking') {
    el.textContent = 'saving the page for offline use…';
  } else if (!online) {
    el.textContent = app.weightsCached
      ? 'working offline: the page, the engine and the weights come from this browser'
      : 'working offline: the page comes from this browser, but the weights were not saved (they need a network)';
  } else if (app.weightsCached) {
    el.textContent = 'ready: the page, the engine, the samples and the weights are saved in this browser';
  } else {
    el.textContent = 'the page is saved; the weights are not (yet): they are needed once online';
  }
}
