// Keeps the screen on while a run goes (the Screen Wake Lock API, where the browser has it): a phone
// that dims and locks mid-run would pause the page and may lose the GPU device.

const lock = { wanted: false, sentinel: null, pending: false };

/** Asks for (or gives back) the screen wake lock. document.body.dataset.wakeLock says what happened:
 *  held, released, refused (the browser's reason in dataset.wakeLockError) or unsupported. */
export async function keepAwake(on) {
  lock.wanted = on;
  if (!('wakeLock' in navigator)) {
    document.body.dataset.wakeLock = 'unsupported';
    return;
  }
  if (on && !lock.sentinel && !lock.pending && document.visibilityState === 'visible') {
    lock.pending = true;
    try {
      const sentinel = await navigator.wakeLock.request('screen');
      sentinel.addEventListener('release', () => {
        if (lock.sentinel === sentinel) lock.sentinel = null;
        document.body.dataset.wakeLock = 'released';
      });
      lock.sentinel = sentinel;
      document.body.dataset.wakeLock = 'held';
      // The run ended while the request was pending.
      if (!lock.wanted) await release();
    } catch (e) {
      // Refused (battery saver, a permissions policy): the run goes on, the screen may dim.
      document.body.dataset.wakeLock = 'refused';
      document.body.dataset.wakeLockError = e && e.message ? e.message : String(e);
    } finally {
      lock.pending = false;
    }
  } else if (!on && lock.sentinel) {
    await release();
  }
}

async function release() {
  const sentinel = lock.sentinel;
  lock.sentinel = null;
  try {
    await sentinel.release();
  } catch {
    // Already released by the browser.
  }
  document.body.dataset.wakeLock = 'released';
}

// The browser drops the lock when the page is hidden: take it again when the page is back.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && lock.wanted) keepAwake(true);
});
