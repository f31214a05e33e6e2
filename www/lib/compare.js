// The result's stage: the output canvas fitted to the panel (small runs scaled up, large ones down),
// a 1:1 zoom, an earlier result of this visit shown in its place, and the before/after split: the photo
// over the result, cut at a handle dragged by pointer or moved by the arrow keys (a range input).

import { drawPixels } from './images.js';
import { app, $ } from './state.js';

const view = {
  zoomed: false,
  comparing: false,
  showing: null, // an earlier result ({rgba, width, height, content}) or null: the current run's image
  beforeOf: null, // the content image drawn into the before canvas
};

export function setupStage() {
  const stage = $('stage');
  $('compare-toggle').addEventListener('change', (e) => setComparing(e.target.checked));
  $('compare-split').addEventListener('input', () => showSplit());
  $('btn-zoom').addEventListener('click', () => {
    view.zoomed = !view.zoomed;
    fit();
  });
  $('btn-back-to-current').addEventListener('click', () => showResult(null));
  let dragging = false;
  const moveTo = (e) => {
    const box = stage.getBoundingClientRect();
    const at = Math.round((100 * (e.clientX - box.left)) / box.width);
    $('compare-split').value = String(Math.min(100, Math.max(0, at)));
    showSplit();
  };
  stage.addEventListener('pointerdown', (e) => {
    if (!view.comparing) return;
    dragging = true;
    stage.setPointerCapture(e.pointerId);
    moveTo(e);
  });
  stage.addEventListener('pointermove', (e) => { if (dragging) moveTo(e); });
  const end = () => { dragging = false; };
  stage.addEventListener('pointerup', end);
  stage.addEventListener('pointercancel', end);
  // Only a new width refits, in the next frame: fitting changes the wrap's height, and refitting inside
  // the observer's callback would loop.
  let width = 0;
  new ResizeObserver(() => {
    const now = $('canvas-wrap').clientWidth;
    if (now !== width) {
      width = now;
      requestAnimationFrame(() => fit());
    }
  }).observe($('canvas-wrap'));
  window.addEventListener('resize', () => fit());
}

/** The image on the stage: [width, height], or null when there is none. */
function shownSize() {
  if (view.showing) return [view.showing.width, view.showing.height];
  return app.run.done > 0 && app.run.width ? [app.run.width, app.run.height] : null;
}

/** Sizes the stage: fitted into the panel's width and 75% of the window's height, or 1:1 when zoomed. */
export function fit() {
  const size = shownSize();
  const stage = $('stage');
  const wrap = $('canvas-wrap');
  $('view-controls').hidden = size === null;
  if (!size) {
    stage.style.width = '';
    stage.style.height = '';
    return;
  }
  const [w, h] = size;
  const room = Math.max(64, wrap.clientWidth || 256);
  const scale = Math.min(room / w, (0.75 * window.innerHeight) / h);
  const natural = 1 / (window.devicePixelRatio || 1);
  // 1:1 only means something when the fitted view shrinks the image.
  const zoomable = scale < natural;
  const zoom = $('btn-zoom');
  zoom.disabled = !zoomable;
  if (!zoomable) view.zoomed = false;
  zoom.setAttribute('aria-pressed', String(view.zoomed));
  zoom.textContent = view.zoomed ? 'Fit' : '1:1';
  const s = view.zoomed ? natural : scale;
  stage.style.width = `${Math.round(w * s)}px`;
  stage.style.height = `${Math.round(h * s)}px`;
  wrap.classList.toggle('zoomed', view.zoomed);
}

function setComparing(on) {
  view.comparing = on;
  $('compare-split').disabled = !on;
  $('stage').classList.toggle('comparing', on);
  drawBefore();
  showSplit();
}

/** Draws the photo of the image shown (the run's own content, or the earlier result's) at its size. */
function drawBefore() {
  const before = $('before-canvas');
  const size = shownSize();
  const content = view.showing ? view.showing.content : app.run.inputs && app.run.inputs.content;
  if (!view.comparing || !size || !content) {
    before.hidden = true;
    return;
  }
  if (view.beforeOf !== content || before.width !== size[0] || before.height !== size[1]) {
    const full = document.createElement('canvas');
    drawPixels(full, content.rgba, content.width, content.height);
    before.width = size[0];
    before.height = size[1];
    const ctx = before.getContext('2d');
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(full, 0, 0, size[0], size[1]);
    view.beforeOf = content;
  }
  before.hidden = false;
}

function showSplit() {
  const at = Number($('compare-split').value);
  const line = $('split-line');
  line.hidden = !view.comparing || $('before-canvas').hidden;
  line.style.left = `${at}%`;
  // The photo on the left of the handle, the result on the right.
  $('before-canvas').style.clipPath = `inset(0 ${100 - at}% 0 0)`;
}

/** Shows an earlier result of this visit on the stage (null: back to the current run's image). */
export function showResult(result) {
  view.showing = result;
  const history = $('history-canvas');
  if (result) drawPixels(history, result.rgba, result.width, result.height);
  history.hidden = !result;
  $('output-canvas').style.visibility = result ? 'hidden' : '';
  $('output-canvas').style.position = result ? 'absolute' : '';
  $('viewing').hidden = !result;
  if (result) {
    $('canvas-empty').hidden = true;
    $('viewing-text').textContent = `Showing result ${result.number} of this visit (${result.caption}).`;
  } else {
    $('canvas-empty').hidden = app.run.done > 0;
  }
  stageChanged();
  // The results strip marks the one shown (results.js listens: it imports this module, not the reverse).
  document.dispatchEvent(new CustomEvent('stylize:shown'));
}

/** The run's image appeared or changed size, or a result was chosen: fit and redraw the photo. */
export function stageChanged() {
  fit();
  if (view.comparing) {
    drawBefore();
    showSplit();
  }
}

/** Which result the stage shows (null: the current image). */
export const shownResult = () => view.showing;
