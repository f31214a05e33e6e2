// The inputs: content, style and initial images from files, drag and drop, paste, the sample buttons and
// URLs; the list of style images with their blend sliders.

import { decodeImage, fetchImage, drawPixels, ImageError } from './images.js';
import { app, $, runActive } from './state.js';
import { say, clearMessage, errorText } from './ui.js';
import { settingsChanged } from './settings.js';

/** Photos shipped with the page (scikit-image data: public domain / CC0; see samples/README.md). */
export const CONTENT_SAMPLES = [
  { label: 'Cat', url: 'samples/chelsea.png', thumb: 'samples/thumbs/chelsea.jpg',
    credit: 'Chelsea the cat, Stefan van der Walt, CC0 (scikit-image)' },
  { label: 'Astronaut', url: 'samples/astronaut.png', thumb: 'samples/thumbs/astronaut.jpg',
    credit: 'Eileen Collins, NASA, public domain (scikit-image)' },
  { label: 'Coffee', url: 'samples/coffee.png', thumb: 'samples/thumbs/coffee.jpg',
    credit: 'A cup of coffee, Rachel Michetti, CC0 (scikit-image)' },
];

/** Paintings shipped with the page (photographs of public-domain works, downscaled; samples/README.md):
 *  they load offline and never depend on another host. */
export const STYLE_SAMPLES = [
  { label: 'The Starry Night', url: 'samples/starry_night.jpg', thumb: 'samples/thumbs/starry_night.jpg',
    credit: 'Vincent van Gogh, The Starry Night (1889), public domain' },
  { label: 'The Scream', url: 'samples/the_scream.jpg', thumb: 'samples/thumbs/the_scream.jpg',
    credit: 'Edvard Munch, The Scream (1893), public domain' },
  { label: 'The Shipwreck', url: 'samples/shipwreck.jpg', thumb: 'samples/thumbs/shipwreck.jpg',
    credit: 'J. M. W. Turner, The Shipwreck (1805), public domain' },
  { label: 'Woman with a Hat', url: 'samples/woman-with-hat-matisse.jpg', thumb: 'samples/thumbs/woman-with-hat-matisse.jpg',
    credit: 'Henri Matisse, Woman with a Hat (1905), public domain' },
];

/** A sample's URL as links and the style list keep it: absolute, so that a link names the file. */
export const sampleUrl = (sample) => new URL(sample.url, location.href).href;

let nextStyleId = 1;

/** An input changed while a run is going: the run keeps what it was started with, so say so. */
function noteNextRun(what) {
  if (!runActive()) return;
  const uses = app.run.inputs ? `"${app.run.inputs.content.name}" with ${app.run.inputs.styles.length} style image(s)` : 'its own images';
  say('info', `${what} applies to the next run; this run keeps using ${uses}.`, 'next-run');
}

export function setupInputs() {
  for (const sample of CONTENT_SAMPLES) {
    $('content-samples').append(sampleButton(sample, () => loadContentSample(sample)));
  }
  for (const sample of STYLE_SAMPLES) {
    $('style-samples').append(sampleButton(sample, (e) => toggleStyleSample(sample, e.shiftKey),
      `${sample.credit}. Shift+click blends it with the painting(s) chosen already.`));
  }
  $('content-file').addEventListener('change', (e) => {
    if (e.target.files[0]) setContentFromBlob(e.target.files[0], e.target.files[0].name);
    e.target.value = '';
  });
  $('style-file').addEventListener('change', (e) => {
    for (const file of e.target.files) addStyleFromBlob(file, file.name);
    e.target.value = '';
  });
  $('init-file').addEventListener('change', (e) => {
    if (e.target.files[0]) setInitFromBlob(e.target.files[0], e.target.files[0].name);
    e.target.value = '';
  });
  $('init-clear').addEventListener('click', () => {
    app.init = null;
    $('init-thumb').hidden = true;
    $('init-clear').hidden = true;
  });
  $('style-url-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const url = $('style-url').value.trim();
    if (url) addStyleFromUrl(url, null).then((ok) => { if (ok) $('style-url').value = ''; });
  });
  for (const zone of document.querySelectorAll('.dropzone')) {
    const target = zone.dataset.target;
    zone.addEventListener('focus', () => { app.pasteTarget = target; });
    zone.addEventListener('click', () => { app.pasteTarget = target; });
    zone.addEventListener('dragover', (e) => {
      e.preventDefault();
      zone.classList.add('over');
    });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (e) => {
      e.preventDefault();
      zone.classList.remove('over');
      const files = [...(e.dataTransfer.files || [])];
      if (files.length === 0) {
        const url = e.dataTransfer.getData('text/uri-list') || e.dataTransfer.getData('text/plain');
        if (url && target === 'style') addStyleFromUrl(url.trim(), null);
        else say('warn', 'Nothing to use was dropped: drop an image file.', 'input');
        return;
      }
      acceptFiles(files, target);
    });
  }
  document.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData ? e.clipboardData.files : [])];
    if (files.length === 0) return; // plain text pastes into inputs as usual
    e.preventDefault();
    acceptFiles(files, app.pasteTarget);
  });
  // Dropping a file anywhere else must not navigate away from the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());
}

/** A thumbnail button; aria-pressed says whether the sample is in use (markSamples). */
function sampleButton(sample, onClick, title = sample.credit) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'sample';
  b.title = title;
  b.dataset.sample = sampleUrl(sample);
  b.setAttribute('aria-pressed', 'false');
  const img = document.createElement('img');
  img.src = sample.thumb;
  img.alt = '';
  img.decoding = 'async';
  const name = document.createElement('span');
  name.textContent = sample.label;
  b.append(img, name);
  b.addEventListener('click', onClick);
  return b;
}

/** A sample painting's button adds it, or takes it out when it is in the list already. A click on
 *  another sample while only a sample is chosen replaces it (the simple case is one painting); with
 *  Shift it is added, to blend them. */
function toggleStyleSample(sample, blend) {
  const url = sampleUrl(sample);
  const present = app.styles.find((s) => s.url === url);
  if (present) {
    app.styles = app.styles.filter((s) => s !== present);
    renderStyleList();
    settingsChanged();
    return;
  }
  const samples = new Set(STYLE_SAMPLES.map(sampleUrl));
  if (!blend && app.styles.length === 1 && samples.has(app.styles[0].url)) {
    app.styles = [];
    renderStyleList();
  }
  addStyleFromUrl(url, sample.label);
}

/** Shows which samples are in use. */
function markSamples() {
  const contentUrl = app.content && app.content.url;
  for (const b of $('content-samples').querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.sample === contentUrl));
  for (const b of $('style-samples').querySelectorAll('button')) {
    b.setAttribute('aria-pressed', String(app.styles.some((s) => s.url === b.dataset.sample)));
  }
}

/** Puts back the photo and paintings of an earlier run (results.js). */
export function restoreInputs(content, styles) {
  showContent(content, content.name);
  app.styles = styles.map((s) => ({ ...s, id: nextStyleId++ }));
  renderStyleList();
  settingsChanged();
}

function acceptFiles(files, target) {
  if (target === 'content') setContentFromBlob(files[0], files[0].name || 'pasted image');
  else if (target === 'init') setInitFromBlob(files[0], files[0].name || 'pasted image');
  else for (const f of files) addStyleFromBlob(f, f.name || 'pasted image');
}

function describeNotes(image) {
  return image.notes.length ? ` (${image.notes.join('; ')})` : '';
}

function showContent(content, name) {
  app.content = content;
  drawPixels($('content-thumb'), content.rgba, content.width, content.height);
  $('content-thumb').hidden = false;
  $('content-meta').textContent = `${name}: ${content.originalWidth}x${content.originalHeight}${describeNotes(content)}`;
  markSamples();
}

async function setContentFromBlob(blob, name, url = null) {
  try {
    const image = await decodeImage(blob, name);
    showContent({ ...image, url }, name);
    clearMessage('input');
    noteNextRun(`The content image "${name}"`);
    if (image.notes.length) say('info', `Content "${name}": ${image.notes.join('; ')}.`, 'content-notes');
    else clearMessage('content-notes');
    settingsChanged();
    return true;
  } catch (e) {
    say('error', inputErrorText(e, 'content'), 'input');
    return false;
  }
}

export async function loadContentSample(sample, { quiet = false } = {}) {
  try {
    const response = await fetch(sample.url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return await setContentFromBlob(await response.blob(), sample.label, sampleUrl(sample));
  } catch (e) {
    if (!quiet) say('error', `The sample "${sample.label}" could not be loaded: ${errorText(e)}`, 'input');
    return false;
  }
}

export async function loadContentUrl(url) {
  try {
    const image = await fetchImage(url);
    showContent({ ...image, url }, image.name);
    clearMessage(`url-${url}`);
    noteNextRun(`The content image "${image.name}"`);
    settingsChanged();
  } catch (e) {
    // Keyed by the URL, not 'input': the default content loaded next must not wipe a link's failure.
    say('error', inputErrorText(e, 'content'), `url-${url}`);
  }
}

function inputErrorText(e, what) {
  return e instanceof ImageError ? `The ${what} image cannot be used: ${e.message}` : `The ${what} image failed: ${errorText(e)}`;
}

async function addStyleFromBlob(blob, name) {
  try {
    const image = await decodeImage(blob, name);
    addStyle(image, null, 1);
    return true;
  } catch (e) {
    say('error', inputErrorText(e, 'style'), 'input');
    return false;
  }
}

export async function addStyleFromUrl(url, label, weight = 1) {
  // One key per URL: the failure replaces the "Fetching" note, and no other image's load clears it
  // (the default content that follows a link's failed style URL cleared 'input').
  const key = `url-${url}`;
  say('info', `Fetching the style image ${label || url} …`, key);
  try {
    const image = await fetchImage(url);
    if (label) image.name = label;
    addStyle(image, url, weight);
    clearMessage(key);
    return true;
  } catch (e) {
    say('error', inputErrorText(e, 'style'), key);
    return false;
  }
}

function addStyle(image, url, weight) {
  if (app.styles.length >= 16) {
    say('error', 'At most 16 style images can be blended.', 'input');
    return;
  }
  const style = { ...image, id: nextStyleId++, url, weight };
  app.styles.push(style);
  clearMessage('input');
  noteNextRun(`The style image "${image.name}"`);
  if (image.notes.length) say('info', `Style "${image.name}": ${image.notes.join('; ')}.`, `style-notes-${style.id}`);
  renderStyleList();
  settingsChanged();
}

export function renderStyleList() {
  const list = $('style-list');
  list.textContent = '';
  markSamples();
  for (const style of app.styles) {
    const li = document.createElement('li');
    li.className = 'style-item';
    li.dataset.styleId = String(style.id);
    const thumb = document.createElement('canvas');
    drawPixels(thumb, style.rgba, style.width, style.height);
    const middle = document.createElement('div');
    const name = document.createElement('div');
    name.className = 'name';
    name.textContent = style.name;
    name.title = style.url ? style.url : `${style.name} (your file: never uploaded, not put in links)`;
    const slider = document.createElement('input');
    slider.type = 'range';
    slider.min = '0';
    slider.max = '1';
    slider.step = '0.05';
    slider.value = String(Math.min(1, style.weight));
    slider.title = 'Blend weight of this style (weights are normalised to sum to 1)';
    slider.setAttribute('aria-label', `blend weight of ${style.name}`);
    const weightLabel = document.createElement('span');
    weightLabel.className = 'weight-label';
    const showWeight = () => {
      const sum = app.styles.reduce((s, x) => s + x.weight, 0);
      for (const item of list.querySelectorAll('.style-item')) {
        const st = app.styles.find((x) => String(x.id) === item.dataset.styleId);
        const share = sum > 0 ? Math.round((100 * st.weight) / sum) : 0;
        item.querySelector('.weight-label').textContent = `weight ${st.weight} (${share}%)`;
      }
    };
    slider.addEventListener('input', () => {
      style.weight = Number(slider.value);
      showWeight();
    });
    // Start's state and reason depend on the weights (all at 0 cannot run).
    slider.addEventListener('change', () => settingsChanged());
    middle.append(name, slider, weightLabel);
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'small';
    remove.textContent = 'remove';
    remove.title = 'Remove this style';
    remove.setAttribute('aria-label', `remove ${style.name}`);
    remove.addEventListener('click', () => {
      const index = app.styles.indexOf(style);
      app.styles = app.styles.filter((s) => s !== style);
      renderStyleList();
      settingsChanged();
      // The list was rebuilt: keep the keyboard there (the next painting's remove, else the drop zone).
      const buttons = list.querySelectorAll('.style-item button');
      (buttons[Math.min(index, buttons.length - 1)] || $('style-drop')).focus();
    });
    li.append(thumb, middle, remove);
    list.append(li);
    queueMicrotask(showWeight);
  }
}

async function setInitFromBlob(blob, name) {
  try {
    const image = await decodeImage(blob, name);
    app.init = image;
    drawPixels($('init-thumb'), image.rgba, image.width, image.height);
    $('init-thumb').hidden = false;
    $('init-clear').hidden = false;
    clearMessage('input');
  } catch (e) {
    say('error', inputErrorText(e, 'initial'), 'input');
  }
}
