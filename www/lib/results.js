// This visit's results: each finished or stopped run leaves its image and what made it (settings,
// photo, paintings) in a strip under the canvas, to look at again, download, share, or start from.
// Kept in memory only (a reload forgets them, as nothing is stored without asking).

import { drawPixels } from './images.js';
import { app, $, runActive } from './state.js';
import { say } from './ui.js';
import { showResult, shownResult } from './compare.js';
import { choiceOf, SIZES, QUALITIES } from './choices.js';
import { StyleTransfer } from '../pkg/stylize.js';
import { downloadImage } from './run.js';
import { copyLinkOf } from './links.js';
import { restoreInputs } from './inputs.js';

/** At most this many results are kept (the oldest go): each holds its full-size pixels. */
export const MAX_RESULTS = 12;

const results = [];
let numbered = 0;

// Marks the result the stage shows (none when it shows the current run).
document.addEventListener('stylize:shown', () => {
  for (const li of $('results').children) li.classList.toggle('viewing-this', shownResult()?.number === Number(li.dataset.result));
});

/** `record`: {rgba, width, height, steps, settingsRaw, content, styles}. Returns the kept result. */
export function addResult(record) {
  let settings = record.settingsRaw;
  try {
    settings = StyleTransfer.resolveSettings(JSON.stringify(record.settingsRaw));
  } catch {
    // Checked when the run started; keep the raw values.
  }
  const result = { ...record, number: ++numbered, caption: captionOf(settings, record), thumb: thumbnailOf(record) };
  results.push(result);
  while (results.length > MAX_RESULTS) results.shift();
  render();
  return result;
}

function captionOf(settings, record) {
  const choice = choiceOf(settings);
  const size = SIZES.find((s) => s.name === choice.size);
  const quality = QUALITIES.find((q) => q.name === choice.quality);
  const parts = [`${record.width}×${record.height}`, size ? size.label : 'custom size',
    quality ? quality.label.toLowerCase() : `${settings.steps} steps`];
  if (record.steps < record.totalSteps) parts.push(`stopped at ${record.steps}/${record.totalSteps}`);
  if (choice.keepColours) parts.push("photo's colours");
  const styles = record.styles.map((s) => s.name).join(' + ');
  return `${parts.join(', ')}; ${record.content.name} × ${styles}`;
}

/** The strip's picture of a result: drawn once, at most THUMB px, so that redrawing the strip never
 *  makes full-size canvases again. */
const THUMB = 160;
function thumbnailOf({ rgba, width, height }) {
  const full = document.createElement('canvas');
  drawPixels(full, rgba, width, height);
  const scale = Math.min(1, THUMB / Math.max(width, height));
  const thumb = document.createElement('canvas');
  thumb.width = Math.max(1, Math.round(width * scale));
  thumb.height = Math.max(1, Math.round(height * scale));
  const ctx = thumb.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(full, 0, 0, thumb.width, thumb.height);
  full.width = 0; // its pixels can go now
  return thumb;
}

/** Redraws the strip; `focus`: the number of the result whose "show" button keeps the keyboard focus. */
function render(focus = null) {
  const list = $('results');
  list.textContent = '';
  $('results-panel').hidden = results.length === 0;
  for (const result of [...results].reverse()) {
    const li = document.createElement('li');
    li.dataset.result = String(result.number);
    li.classList.toggle('viewing-this', shownResult() === result);
    const look = document.createElement('button');
    look.type = 'button';
    look.className = 'view';
    look.title = 'Show this result on the canvas';
    look.setAttribute('aria-label', `show result ${result.number}: ${result.caption}`);
    look.append(result.thumb);
    look.addEventListener('click', () => {
      showResult(result);
      render(result.number);
    });
    const caption = document.createElement('span');
    caption.className = 'caption';
    caption.textContent = `${result.number}. ${result.caption}`;
    const actions = document.createElement('span');
    actions.className = 'actions';
    actions.append(
      button('Download', `download result ${result.number} as PNG`, () => downloadImage(result)),
      button('Link', `copy a link to the settings of result ${result.number}`, () => copyLinkOf(result)),
      button('Use settings', `put the settings, photo and paintings of result ${result.number} back`, () => restore(result)),
    );
    li.append(look, caption, actions);
    list.append(li);
    if (focus === result.number) look.focus();
  }
}

function button(text, label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

/** Puts a result's settings, photo and paintings back in the panels: the next Start repeats it. */
function restore(result) {
  if (runActive()) {
    say('info', 'A run is going: stop it first to go back to an earlier result\'s settings.', 'result');
    return;
  }
  app.form.write(result.settingsRaw);
  restoreInputs(result.content, result.styles);
  say('info', `The settings, photo and paintings of result ${result.number} are back: Start runs them again.`, 'result');
}

/** The results kept now, oldest first (for the tests). */
export const keptResults = () => results.slice();
