// The simple controls on the first screen (size, quality, "keep the photo's colours"; the style-strength
// slider is strength.js) and the folded "Advanced" part. They write into the settings form, which stays
// the values of record (share links and presets read it), and they follow it when it changes.

import { StyleTransfer } from '../pkg/stylize.js';
import { app, $ } from './state.js';
import { say, formatDuration } from './ui.js';
import { SIZES, QUALITIES, DEFAULT_CHOICE, settingsOf, choiceOf, advancedKeys, firstRunChoice } from './choices.js';
import { settingsChanged, timeOf } from './settings.js';

const CUSTOM = 'custom';

export function setupSimple() {
  const size = $('simple-size');
  const quality = $('simple-quality');
  for (const s of SIZES) size.append(option(s.name, `${s.label} · ${s.size} px`));
  size.append(option(CUSTOM, 'Custom (see Advanced)'));
  for (const q of QUALITIES) {
    const o = option(q.name, qualityLabel(q));
    const s = q.settings;
    o.title = `${s.steps} steps at the final size, after ${s.scale_steps} at each smaller scale from ${s.min_size} px`;
    quality.append(o);
  }
  quality.append(option(CUSTOM, 'Custom (see Advanced)'));
  size.addEventListener('change', () => choose({ size: size.value }));
  quality.addEventListener('change', () => choose({ quality: quality.value }));
  $('simple-colours').addEventListener('change', (e) => choose({ keepColours: e.target.checked }));
  app.syncSimple = syncSimple;
  app.form.write(settingsOf({ ...DEFAULT_CHOICE }));
  syncSimple();
}

function option(value, text) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  return o;
}

function qualityLabel(q) {
  return `${q.label} · ${q.settings.steps} steps`;
}

/** A simple control changed: write its settings into the form. */
function choose(choice) {
  if (choice.size === CUSTOM || choice.quality === CUSTOM) {
    $('advanced').open = true;
    syncSimple();
    return;
  }
  app.userChose = true;
  app.form.write(settingsOf(choice));
  settingsChanged();
}

/** Shows the form's values in the simple controls, with each size's fit and time. */
export function syncSimple() {
  let settings;
  try {
    settings = StyleTransfer.resolveSettings(JSON.stringify(app.form.read()));
  } catch {
    return; // a malformed field: the form's message says which
  }
  const choice = choiceOf(settings);
  const size = $('simple-size');
  const quality = $('simple-quality');
  size.value = choice.size;
  quality.value = choice.quality;
  for (const [select, value] of [[size, choice.size], [quality, choice.quality]]) {
    const custom = select.querySelector(`option[value="${CUSTOM}"]`);
    custom.hidden = value !== CUSTOM;
    custom.textContent = select === size && value === CUSTOM ? `Custom: ${settings.size} px (see Advanced)` : 'Custom (see Advanced)';
  }
  const colours = $('simple-colours');
  colours.checked = choice.keepColours === true;
  colours.indeterminate = choice.keepColours === null;
  colours.title = choice.keepColours === null
    ? `Colours are set to "${settings.colour}" under Advanced`
    : "Only the painting's brushwork and light: the result keeps the photo's colours (lightness transfer; the image stays grey while it runs)";
  markSizes();
}

/** Each size option says when it cannot run (memory budget) and how long it takes; "Huge" shows only
 *  where it fits. */
function markSizes() {
  const busy = app.run.state === 'running';
  for (const o of $('simple-size').options) {
    const s = SIZES.find((x) => x.name === o.value);
    if (!s) continue;
    const t = busy || !app.st ? undefined : timeOf({ size: s.size });
    const fits = t !== null;
    o.disabled = !fits && o.value !== $('simple-size').value;
    o.hidden = s.onlyWhenItFits && !fits && t !== undefined;
    o.textContent = `${s.label} · ${s.size} px` + (t === undefined ? '' : fits ? ` · about ${formatDuration(t.seconds)}` : ' · does not fit the GPU memory budget');
    if (!fits && t !== undefined) o.title = 'Over the GPU memory budget (see Advanced)';
  }
}

/** The first visit's size and quality, from the GPU's speed: about a minute's run. Only when neither a
 *  link nor the user chose already. */
export function chooseFirstRun() {
  if (app.userChose || app.linkOpened || !app.st || !app.content) return;
  const keep = { keepColours: $('simple-colours').checked };
  const pick = firstRunChoice((size, quality) => {
    const t = timeOf(settingsOf({ size, quality, ...keep }));
    return t ? t.seconds : null;
  });
  if (!pick) return;
  app.form.write(settingsOf({ size: pick.size, quality: pick.quality }));
  if (pick.slow) {
    say('warn', `This GPU is slow (${app.adapterFallback ? 'a software adapter' : 'measured'}): even the smallest size ` +
      `takes about ${formatDuration(pick.seconds)}. Start asks before long runs.`, 'slow-gpu');
  }
  settingsChanged();
}

/** A link or preset set values the simple controls cannot show: open "Advanced" so they are seen. */
export function openAdvancedFor(settings) {
  const keys = advancedKeys(settings, StyleTransfer.defaults());
  if (keys.length) $('advanced').open = true;
  return keys;
}
