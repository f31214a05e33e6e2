// Share links: Copy link writes the settings and style URLs into the fragment; a link opened (on load or
// by a hashchange) restores them, or waits for the end of a run that is going.

import { StyleTransfer } from '../pkg/stylize.js';
import { app, $, runActive } from './state.js';
import { say, clearMessage, errorText, withTimeout } from './ui.js';
import { currentSettings, settingsChanged } from './settings.js';
import { loadContentUrl, addStyleFromUrl, renderStyleList } from './inputs.js';
import { openAdvancedFor } from './simple.js';

/** Opens a link put in the address bar later (a run that is going keeps its inputs: then it waits). */
export function watchLinks() {
  window.addEventListener('hashchange', () => {
    if (location.hash.length <= 1 || location.hash === app.lastLinkWritten) return;
    if (runActive()) {
      // The running job keeps its own inputs: the link opens when it ends.
      app.pendingLink = location.hash;
      say('info', 'The new link opens when this run ends (Stop to open it now); the run keeps its settings and images.',
        'next-run');
      return;
    }
    applyLink(location.hash);
  });
}

/** A link opened during the run: open it now that the run is over. */
export function openPendingLink() {
  if (!app.pendingLink || runActive()) return;
  const hash = app.pendingLink;
  app.pendingLink = null;
  clearMessage('next-run');
  applyLink(hash);
}

export async function copyLink() {
  const settings = currentSettings();
  if (!settings) return;
  await copyLinkOf({ settingsRaw: settings.raw, content: app.content, styles: app.styles });
}

/** Copies the link of a run's settings, photo and paintings (the current ones, or an earlier result's). */
export async function copyLinkOf({ settingsRaw, content, styles: allStyles }) {
  let fragment;
  try {
    const styles = allStyles.filter((s) => s.url).map((s) => ({ url: s.url, weight: s.weight }));
    const contentUrl = content && content.url ? content.url : undefined;
    fragment = StyleTransfer.makeLink(JSON.stringify(settingsRaw), JSON.stringify(styles), contentUrl);
  } catch (e) {
    say('error', `Cannot make a link: ${errorText(e)}`, 'link');
    return;
  }
  const url = `${location.href.split('#')[0]}#${fragment}`;
  app.lastLinkWritten = `#${fragment}`;
  history.replaceState(null, '', url);
  const field = $('share-link');
  field.hidden = false;
  field.value = url;
  const uploads = allStyles.filter((s) => !s.url).length + (content && !content.url ? 1 : 0);
  const left = uploads ? ` ${uploads} image(s) you uploaded are not in it (uploads never leave this computer).` : '';
  try {
    // Some browsers leave the promise pending while they ask for permission: do not wait for ever.
    await withTimeout(navigator.clipboard.writeText(url), 2000, 'Copying to the clipboard');
    say('info', `Link copied to the clipboard.${left}`, 'link');
  } catch {
    field.select();
    say('info', `Link ready below: copy it with Ctrl+C.${left}`, 'link');
  }
}

/** Restores settings (and style/content URLs) from a share link. Values only ever reach the form
 *  through the Rust parser and element.value/textContent: never as HTML. */
export async function applyLink(hash) {
  const link = StyleTransfer.parseLink(hash);
  for (const w of link.warnings) say('warn', `Share link: ${w}`);
  if (!['content', 'noise', 'style'].includes(link.settings.init)) {
    // A file path: meaningless (and never opened) in a browser.
    say('warn', 'Share link: init names a file, which a page cannot open (ignored; use "Initial image").');
    link.settings.init = 'content';
  }
  app.linkOpened = true;
  app.form.write(link.settings);
  const advanced = openAdvancedFor(link.settings);
  if (advanced.length) say('info', `This link sets values that only "Advanced" shows (${advanced.join(', ')}): it is open.`, 'link-advanced');
  else clearMessage('link-advanced');
  if (link.settings.preset) {
    const preset = app.presets.find((p) => p.name === link.settings.preset);
    if (preset) say('info', `Link uses the preset "${preset.name}": ${preset.description}`, 'preset');
  }
  settingsChanged();
  const jobs = [];
  if (link.content) jobs.push(loadContentUrl(link.content));
  if (link.styles.length) {
    app.styles = [];
    renderStyleList();
    for (const s of link.styles) jobs.push(addStyleFromUrl(s.url, null, s.weight));
  }
  await Promise.all(jobs);
  // Keep the link's order of styles (fetches finish in any order).
  const order = link.styles.map((s) => s.url);
  app.styles.sort((a, b) => order.indexOf(a.url) - order.indexOf(b.url));
  renderStyleList();
  settingsChanged();
}
