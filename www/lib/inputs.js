// The inputs: content, style and initial images from files, drag and drop, paste, the sample buttons and
// URLs; the list of style images with their blend sliders.

import { decodeImage, fetchImage, drawPixels, ImageError } from './images.js';
import { app, $, runActive } from './state.js';
import { say, clearMessage, errorText } from './ui.js';
import { settingsChanged } from './settings.js';

/** Content samples shipped with the page (scikit-image data: public domain / CC0; see samples/README.md). */
export const CONTENT_SAMPLES = [
  { label: 'Cat', url: 'samples/chelsea.png', credit: 'Chelsea the cat, Stefan van der Walt, CC0 (scikit-image)' },
  { label: 'Astronaut', url: 'samples/astronaut.png', credit: 'Eileen Collins, NASA, public domain (scikit-image)' },
  { label: 'Coffee', url: 'samples/coffee.png', credit: 'A cup of coffee, Rachel Michetti, CC0 (scikit-image)' },
];

/** Public-domain paintings, loaded from Wikimedia Commons with CORS when clicked (not shipped). */
const COMMONS = 'https://upload.wikimedia.org/wikipedia/commons/thumb/';
const commons = (path, file) => `${COMMONS}${path}/${encodeURIComponent(file)}/960px-${encodeURIComponent(file)}`;
const STYLE_SAMPLES = [
  { label: 'The Starry Night', credit: 'Vincent van Gogh, The Starry Night (1889), public domain, Wikimedia Commons',
    url: commons('e/ea', 'Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg') },
  { label: 'The Great Wave', credit: 'Katsushika Hokusai, The Great Wave off Kanagawa (c. 1831), public domain, Wikimedia Commons',
    url: commons('a/a5', 'Tsunami_by_hokusai_19th_century.jpg') },
  { label: 'Composition VII', credit: 'Wassily Kandinsky, Composition VII (1913), public domain, Wikimedia Commons',
    url: commons('b/b4', 'Vassily_Kandinsky,_1913_-_Composition_7.jpg') },
  { label: 'The Scream', credit: 'Edvard Munch, The Scream (1893), public domain, Wikimedia Commons',
    url: commons('9/9d', 'The_Scream_by_Edvard_Munch,_1893_-_Nasjonalgalleriet.png') },
  { label: 'Impression, Sunrise', credit: 'Claude Monet, Impression, Sunrise (1872), public domain, Wikimedia Commons',
    url: commons('5/54', 'Claude_Monet,_Impression,_soleil_levant.jpg') },
];

let nextStyleId = 1;

/** An input changed while a run is going: the run keeps what it was started with, so say so. */
function noteNextRun(what) {
  if (!runActive()) return;
  const uses = app.run.inputs ? `"${app.run.inputs.content.name}" with ${app.run.inputs.styles.length} style image(s)` : 'its own images';
  say('info', `${what} applies to the next run; this run keeps using ${uses}.`, 'next-run');
}

export function setupInputs() {
  for (const sample of CONTENT_SAMPLES) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = sample.label;
    b.title = sample.credit;
    b.dataset.sample = sample.url;
    b.addEventListener('click', () => loadContentSample(sample));
    $('content-samples').append(b);
  }
  for (const sample of STYLE_SAMPLES) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = sample.label;
    b.title = `${sample.credit} (loaded from Wikimedia Commons)`;
    b.addEventListener('click', () => addStyleFromUrl(sample.url, sample.label));
    $('style-samples').append(b);
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

function acceptFiles(files, target) {
  if (target === 'content') setContentFromBlob(files[0], files[0].name || 'pasted image');
  else if (target === 'init') setInitFromBlob(files[0], files[0].name || 'pasted image');
  else for (const f of files) addStyleFromBlob(f, f.name || 'pasted image');
}

function describeNotes(image) {
  return image.notes.length ? ` (${image.notes.join('; ')})` : '';
}

async function setContentFromBlob(blob, name, url = null) {
  try {
    const image = await decodeImage(blob, name);
    app.content = { ...image, url };
    drawPixels($('content-thumb'), image.rgba, image.width, image.height);
    $('content-thumb').hidden = false;
    $('content-meta').textContent = `${name}: ${image.originalWidth}x${image.originalHeight}${describeNotes(image)}`;
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
    return await setContentFromBlob(await response.blob(), sample.label, new URL(sample.url, location.href).href);
  } catch (e) {
    if (!quiet) say('error', `The sample "${sample.label}" could not be loaded: ${errorText(e)}`, 'input');
    return false;
  }
}

export async function loadContentUrl(url) {
  try {
    const image = await fetchImage(url);
    app.content = { ...image, url };
    drawPixels($('content-thumb'), image.rgba, image.width, image.height);
    $('content-thumb').hidden = false;
    $('content-meta').textContent = `${image.name}: ${image.originalWidth}x${image.originalHeight}${describeNotes(image)}`;
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
    middle.append(name, slider, weightLabel);
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'small';
    remove.textContent = 'remove';
    remove.title = 'Remove this style';
    remove.addEventListener('click', () => {
      app.styles = app.styles.filter((s) => s !== style);
      renderStyleList();
      settingsChanged();
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
