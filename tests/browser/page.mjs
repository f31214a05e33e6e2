// Browser tests of the page as a new user meets it (issue 10): the simple controls and the first run's
// choice, "Advanced" and the links that open it, the before/after split, 1:1 and this visit's results,
// the phone size and the keyboard, and offline use: a second visit without a network, and a new version
// that replaces the cached one only whole. Headless Debian Chromium (SwiftShader WebGPU), as e2e.mjs.
//
//   ./build.sh && node tests/browser/page.mjs
//
// Screenshots go to test-results/page-*.png (look at them). Prints `N passed, M failed`.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { check, finish, results, test } from './runner.mjs';
import { serve } from './serve.mjs';
import { decodePng, meanAbsDiff, pngSize, rgbStdDev } from './png.mjs';
import { ROOT, WWW, RESULTS, CHROMIUM, IMAGES, STYLE, evaluate, launch, openPage, messagesOf, shot, waitRunState, setControls } from './harness.mjs';

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true };

/** Runs the page until `steps` steps are done, then presses Stop (from inside the loop, so exactly). */
async function runSteps(page, steps, timeout = 300000) {
  await evaluate(page, (n) => {
    window.stylizeApp.afterStep = async (p) => { if (p.step === n) document.getElementById('btn-stop').click(); };
  }, steps);
  await page.click('#btn-start');
  if (await page.locator('#long-run').isVisible()) await page.click('#btn-start-anyway');
  await waitRunState(page, ['done', 'stopped', 'idle'], timeout);
  await evaluate(page, () => { window.stylizeApp.afterStep = null; });
}

/** The accessible name a control gets from its label, aria-label or text; the ones without one. */
const unlabelled = (page) => evaluate(page, () => {
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const nameOf = (el) => {
    if (el.getAttribute('aria-label')) return el.getAttribute('aria-label');
    const by = el.getAttribute('aria-labelledby');
    if (by) return by.split(' ').map((id) => document.getElementById(id)?.textContent || '').join(' ');
    if (el.labels && el.labels.length) return [...el.labels].map((l) => l.textContent).join(' ');
    if (el.tagName === 'BUTTON' || el.tagName === 'SUMMARY') return el.textContent;
    return '';
  };
  return [...document.querySelectorAll('input, select, textarea, button, summary, [tabindex]')]
    .filter((el) => visible(el) || (el.type === 'file' && visible(el.closest('label'))))
    .filter((el) => nameOf(el).trim() === '')
    .map((el) => el.id || el.outerHTML.slice(0, 80));
});

const noHorizontalScroll = (page) => evaluate(page, () => document.documentElement.scrollWidth <= window.innerWidth);

async function main() {
  fs.mkdirSync(RESULTS, { recursive: true });
  for (const [file, why] of [[path.join(WWW, 'pkg/stylize.js'), 'run ./build.sh first'],
    [path.join(WWW, 'precache.js'), 'run ./build.sh first (it writes the service worker\'s list)'],
    [path.join(WWW, 'weights/vgg19.q8.bin'), 'run ./build.sh first'], [CHROMIUM, 'apt-get install chromium']]) {
    if (!fs.existsSync(file)) {
      console.log(`FAIL setup: ${file} is missing: ${why}\n0 passed, 1 failed`);
      process.exit(1);
    }
  }
  const site = await serve(WWW);
  const url = `${site.url}/`;
  const log = [];

  // -------------------------------------------------------------------------------------------
  // Desktop: the simple level, a run, the split view, the results strip, Advanced and links.
  const desk = await launch(true);
  let page;
  try {
    await test('first screen: simple controls, Advanced folded, samples shipped, why Start waits is said beside it', async () => {
      page = await openPage(desk.context, url, log);
      check(!(await page.locator('#advanced').evaluate((d) => d.open)), 'Advanced is open on a first visit');
      check(await page.locator('#set-lr').isHidden(), 'the full form shows without opening Advanced');
      for (const id of ['style-strength', 'simple-size', 'simple-quality', 'simple-colours', 'btn-start']) {
        check(await page.locator(`#${id}`).isVisible(), `#${id} is not on the first screen`);
      }
      const sizes = await evaluate(page, () => [...document.querySelectorAll('#simple-size option')].filter((o) => !o.hidden).map((o) => o.value));
      for (const s of ['preview', 'standard', 'large']) check(sizes.includes(s), `no size "${s}": ${sizes}`);
      const qualities = await evaluate(page, () => [...document.querySelectorAll('#simple-quality option')].filter((o) => !o.hidden).map((o) => o.value));
      check(['fast', 'balanced', 'best'].every((q) => qualities.includes(q)), `qualities: ${qualities}`);
      const paintings = await evaluate(page, () => [...document.querySelectorAll('#style-samples button')].map((b) => b.dataset.sample));
      check(paintings.length === 4 && paintings.every((u) => u.startsWith(new URL(url).origin)), `sample paintings: ${paintings}`);
      const reason = await page.locator('#start-reason').textContent();
      check(await page.locator('#btn-start').isDisabled() && /choose a painting/.test(reason), `beside Start: "${reason}"`);
      // SwiftShader is a software adapter (about 2 GFLOP/s): the first run is the smallest and quickest.
      const choice = await evaluate(page, () => [document.getElementById('simple-size').value, document.getElementById('simple-quality').value]);
      check(choice.join() === 'small,fast', `first run on a software adapter: ${choice}`);
      check((await messagesOf(page, 'warn')).some((m) => /This GPU is slow/.test(m)), 'no word that this GPU is slow');
      check((await messagesOf(page, 'error')).length === 0, `errors: ${(await messagesOf(page, 'error')).join(' | ')}`);
    });

    await test('a measured fast GPU gets Standard size and Balanced quality on its first run', async () => {
      const p = await desk.context.newPage();
      await p.goto(url);
      await p.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 120000 });
      // What a run on a real GPU leaves behind: its measured speed, here 5 TFLOP/s.
      await evaluate(p, () => localStorage.setItem(`stylize.gflops.${window.stylizeApp.adapterName}`, '5000'));
      await p.reload();
      await p.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 120000 });
      const choice = await evaluate(p, () => [document.getElementById('simple-size').value, document.getElementById('simple-quality').value]);
      check(choice.join() === 'standard,balanced', `first run at 5000 GFLOP/s: ${choice}`);
      const estimate = await p.locator('#run-estimate').textContent();
      check(/^512×341 px, about [0-9.]+ s on this GPU$/.test(estimate), `estimate beside Start: "${estimate}"`);
      await evaluate(p, () => localStorage.clear());
      await p.close();
    });

    await test('simple mode: a sample painting and the cat, a long run is asked about, then a run forms an image', async () => {
      await page.click('#style-samples button:has-text("The Starry Night")');
      await page.waitForFunction(() => window.stylizeApp.styles.length === 1, null, { timeout: 10000 });
      check(await page.locator('#style-samples button:has-text("The Starry Night")').getAttribute('aria-pressed') === 'true', 'the chosen sample is not marked');
      check(await page.locator('#start-reason').isHidden(), 'Start still says it waits');
      // Another sample replaces it (one painting is the simple case).
      await page.click('#style-samples button:has-text("The Scream")');
      await page.waitForFunction(() => window.stylizeApp.styles.length === 1 && window.stylizeApp.styles[0].name === 'The Scream', null, { timeout: 10000 });
      await page.click('#style-samples button:has-text("The Starry Night")');
      await page.waitForFunction(() => window.stylizeApp.styles.length === 1 && window.stylizeApp.styles[0].name === 'The Starry Night', null, { timeout: 10000 });
      // Large on a software adapter: hours. Start asks, beside it; Cancel starts nothing.
      await page.selectOption('#simple-size', 'large');
      check(await evaluate(page, () => document.getElementById('set-size').value) === '1024', 'Large did not set the size');
      await page.click('#btn-start');
      check(await page.locator('#long-run').isVisible(), 'no question before a run of hours');
      check(await evaluate(page, () => document.activeElement?.id) === 'btn-long-cancel', 'the question does not focus Cancel');
      check(/about [0-9.]+ h on this GPU/.test(await page.locator('#long-run-text').textContent()), 'the question names no time');
      await page.click('#btn-long-cancel');
      check(await page.locator('#long-run').isHidden() && await evaluate(page, () => document.body.dataset.runState) === 'idle', 'Cancel started a run');
      // Small and Fast: the quality writes steps and schedule into the form.
      await page.selectOption('#simple-size', 'small');
      await page.selectOption('#simple-quality', 'fast');
      const form = await evaluate(page, () => ['size', 'steps', 'scales', 'min_size', 'scale_steps'].map((k) => document.getElementById(`set-${k}`).value));
      check(form.join() === '128,80,auto,128,50', `Small + Fast wrote ${form}`);
      await evaluate(page, () => {
        window.__shots = [];
        window.__wake = [];
      });
      await evaluate(page, () => {
        window.stylizeApp.afterStep = async (p) => {
          window.__wake.push(document.body.dataset.wakeLock);
          window.__shots.push(Array.from(await window.stylizeApp.st.image()));
          if (p.step === 3) document.getElementById('btn-stop').click();
        };
      });
      await page.click('#btn-start');
      check(await page.locator('#long-run').isHidden(), 'Small + Fast was asked about as a long run');
      await waitRunState(page, ['stopped', 'done', 'idle'], 300000);
      const errors = await messagesOf(page, 'error');
      check(errors.length === 0, `errors: ${errors.join(' | ')}`);
      const images = await evaluate(page, () => window.__shots);
      check(images.length === 3, `${images.length} steps ran`);
      check(meanAbsDiff(images[2], images[0]) > 0, 'the image did not change');
      check(rgbStdDev(images[2]) > 10, 'the image is blank');
      // The run's messages are beside Start and the canvas, not at the top of the page.
      const stopped = await evaluate(page, () => document.querySelector('#run-messages .msg[data-key="done"]')?.textContent || '');
      check(/Stopped at step 3/.test(stopped), `beside Start: "${stopped}"`);
      const wake = await evaluate(page, () => window.__wake);
      check(wake.every((w) => ['held', 'refused', 'unsupported'].includes(w)), `wake lock during the run: ${wake}`);
      check(await evaluate(page, () => document.body.dataset.wakeLock) !== 'held', 'the wake lock is still held after the run');
      await evaluate(page, () => { window.stylizeApp.afterStep = null; });
      await page.waitForFunction(() => document.querySelectorAll('#results li').length >= 1, null, { timeout: 30000 }).catch(() => {});
      check(await page.locator('#results li').count() === 1, 'the run is not in the results strip');
    });

    await test('before/after: the split shows the photo left of the handle, moved by keyboard and by dragging', async () => {
      check(await page.locator('#view-controls').isVisible(), 'no view controls after a run');
      const stage = page.locator('#stage');
      const grab = async () => decodePng(await stage.screenshot());
      const result = await grab();
      await page.check('#compare-toggle');
      await page.locator('#compare-split').fill('100');
      const photo = await grab();
      check(meanAbsDiff(photo.rgba, result.rgba) > 3, 'the photo and the result look the same');
      await page.locator('#compare-split').fill('50');
      const half = await grab();
      // Columns well inside each half: the left one matches the photo, the right one the result.
      const column = (img, x0, x1) => {
        const out = [];
        for (let y = 0; y < img.height; y++) for (let x = x0; x < x1; x++) out.push(...img.rgba.slice((y * img.width + x) * 4, (y * img.width + x) * 4 + 4));
        return out;
      };
      const w = half.width;
      const [l0, l1, r0, r1] = [Math.round(w * 0.1), Math.round(w * 0.4), Math.round(w * 0.6), Math.round(w * 0.9)];
      check(meanAbsDiff(column(half, l0, l1), column(photo, l0, l1)) < 1, 'the left half is not the photo');
      check(meanAbsDiff(column(half, r0, r1), column(result, r0, r1)) < 1, 'the right half is not the result');
      await page.focus('#compare-split');
      for (let i = 0; i < 10; i++) await page.keyboard.press('ArrowLeft');
      check(await page.locator('#compare-split').inputValue() === '40', `arrow keys: ${await page.locator('#compare-split').inputValue()}`);
      check(/inset\(0(px)? 60%/.test(await evaluate(page, () => document.getElementById('before-canvas').style.clipPath)), 'the photo is not cut at 40%');
      const box = await stage.boundingBox();
      await page.mouse.move(box.x + box.width * 0.25, box.y + box.height / 2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.75, box.y + box.height / 2, { steps: 5 });
      await page.mouse.up();
      const dragged = Number(await page.locator('#compare-split').inputValue());
      check(Math.abs(dragged - 75) <= 2, `dragging to 75% gave ${dragged}`);
      await shot(page, 'page-desktop-compare');
      await page.uncheck('#compare-toggle');
      check(await page.locator('#before-canvas').isHidden(), 'the photo stays over the result');
    });

    await test('removing a painting keeps the keyboard in the list, then on the drop zone', async () => {
      const p = await openPage(desk.context, url, log);
      await p.setInputFiles('#style-file', [STYLE, path.join(IMAGES, 'style/the_scream.jpg')]);
      await p.waitForFunction(() => window.stylizeApp.styles.length === 2, null, { timeout: 10000 });
      // (the two files load in either order)
      const labels = await evaluate(p, () => [...document.querySelectorAll('#style-list .style-item button')].map((b) => b.getAttribute('aria-label')));
      await p.focus('#style-list .style-item button');
      await p.keyboard.press('Enter');
      await p.waitForFunction(() => window.stylizeApp.styles.length === 1, null, { timeout: 5000 });
      const next = await evaluate(p, () => document.activeElement && document.activeElement.getAttribute('aria-label'));
      check(labels.length === 2 && next === labels[1], `focus after the first remove: ${next} (the list was ${labels})`);
      await p.keyboard.press('Enter');
      await p.waitForFunction(() => window.stylizeApp.styles.length === 0, null, { timeout: 5000 });
      const zone = await evaluate(p, () => document.activeElement && document.activeElement.id);
      check(zone === 'style-drop', `focus after the last remove: ${zone}`);
      await p.close();
    });

    await test('Advanced opens by click; a link with advanced values opens it, one with simple values does not', async () => {
      await page.click('#advanced > summary');
      check(await page.locator('#set-lr').isVisible() && await page.locator('#set-style_layers-relu1_1').isVisible(), 'Advanced shows no form');
      // A link made from simple choices only.
      await page.click('#advanced > summary');
      await page.selectOption('#simple-size', 'preview');
      await page.selectOption('#simple-quality', 'best');
      await page.click('#btn-link');
      const simpleLink = await page.locator('#share-link').inputValue();
      const a = await openPage(desk.context, simpleLink, log);
      check(!(await a.locator('#advanced').evaluate((d) => d.open)), `a simple link opened Advanced: ${simpleLink}`);
      const choice = await evaluate(a, () => [document.getElementById('simple-size').value, document.getElementById('simple-quality').value]);
      check(choice.join() === 'preview,best', `the simple link restored ${choice}`);
      check(await a.locator('#style-samples button:has-text("The Starry Night")').getAttribute('aria-pressed') === 'true', 'the link lost the sample painting');
      await a.close();
      // And one with a total-variation weight, which only Advanced shows.
      await setControls(page, { 'set-tv_weight': '0.002' });
      await page.click('#btn-link');
      const advancedLink = await page.locator('#share-link').inputValue();
      const b = await openPage(desk.context, advancedLink, log);
      check(await b.locator('#advanced').evaluate((d) => d.open), `an advanced link left Advanced folded: ${advancedLink}`);
      check(Number(await b.locator('#set-tv_weight').inputValue()) === 0.002, `the advanced value is lost: ${await b.locator('#set-tv_weight').inputValue()}`);
      check((await messagesOf(b, 'info')).some((m) => /only "Advanced" shows \(tv_weight\)/.test(m)), 'the page does not say why Advanced is open');
      await b.close();
      await setControls(page, { 'set-tv_weight': '0' });
      await page.click('#advanced > summary');
    });

    await test("this visit's results: a second run joins the strip; one can be shown, downloaded and put back", async () => {
      await page.selectOption('#simple-size', 'small');
      await page.selectOption('#simple-quality', 'fast');
      await page.check('#simple-colours');
      check(await evaluate(page, () => document.getElementById('set-colour').value) === 'luminance', "keep the photo's colours did not set luminance");
      await runSteps(page, 2);
      // The result is kept once its image is read back, just after the run stops.
      await page.waitForFunction(() => document.querySelectorAll('#results li').length >= 2, null, { timeout: 30000 }).catch(() => {});
      check(await page.locator('#results li').count() === 2, 'two runs, not two results');
      const captions = await page.locator('#results .caption').allTextContents();
      check(/^2\. 128×85, Small, fast, stopped at 2\/\d+, photo's colours; Cat × The Starry Night/.test(captions[0]), `caption: ${captions[0]}`);
      // Stopped at step 2 of a luminance-only run, which is grey while it runs: the result has the photo's
      // colours all the same (the page finishes a stopped run).
      const chroma = await evaluate(page, async () => {
        const { keptResults } = await import('./lib/results.js');
        const rgba = keptResults()[1].rgba;
        let sum = 0;
        for (let i = 0; i < rgba.length; i += 4) sum += Math.abs(rgba[i] - rgba[i + 1]) + Math.abs(rgba[i + 1] - rgba[i + 2]);
        return sum / (rgba.length / 4);
      });
      check(chroma > 5, `the stopped run with the photo's colours is grey (mean |R-G|+|G-B| ${chroma.toFixed(2)})`);
      // Show the first result: the earlier image replaces the canvas until "back".
      await page.click('#results li[data-result="1"] button.view');
      check(await page.locator('#history-canvas').isVisible() && await page.locator('#viewing').isVisible(), 'the earlier result is not shown');
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30000 }),
        page.click('#results li[data-result="1"] button:has-text("Download")')]);
      const bytes = fs.readFileSync(await download.path());
      const size = pngSize(bytes);
      check(size.width === 128 && size.height === 85, `result 1 downloads as ${size.width}x${size.height}`);
      const kept = await evaluate(page, async () => {
        const { keptResults } = await import('./lib/results.js');
        return Array.from(keptResults()[0].rgba);
      });
      check(meanAbsDiff(decodePng(bytes).rgba, kept) < 0.01, 'the PNG is not result 1');
      check(await page.locator('#results li.viewing-this').count() === 1, 'the result shown is not marked');
      await page.click('#btn-back-to-current');
      check(await page.locator('#history-canvas').isHidden(), 'back did not go back');
      check(await page.locator('#results li.viewing-this').count() === 0, 'the strip still marks a result');
      // A long run asked about and cancelled leaves the current image alone.
      await page.selectOption('#simple-size', 'large');
      await page.click('#btn-start');
      check(await page.locator('#long-run').isVisible(), 'no question before a run of hours');
      await page.click('#btn-long-cancel');
      check(await evaluate(page, () => window.stylizeApp.st.stepsDone) === 2, 'Cancel dropped the finished image');
      // Put back result 1's settings: no colour mode, Small/Fast.
      await page.click('#results li[data-result="1"] button:has-text("Use settings")');
      check(!(await page.locator('#simple-colours').isChecked()), 'Use settings did not restore the colours');
      await shot(page, 'page-desktop-results');
    });
  } finally {
    if (log.length && results.some((r) => !r.ok)) console.log(`browser console errors:\n  ${log.join('\n  ')}`);
    await desk.close();
  }

  // -------------------------------------------------------------------------------------------
  // Phone: 390×844, keyboard only.
  const phone = await launch(true, PHONE);
  try {
    await test('phone 390×844: no horizontal scroll, every control labelled, Start reached and pressed by keyboard, canvas fits', async () => {
      const p = await openPage(phone.context, url, log);
      check(await noHorizontalScroll(p), 'the page scrolls sideways (folded)');
      check((await unlabelled(p)).length === 0, `controls without a label: ${(await unlabelled(p)).join(', ')}`);
      await p.click('#advanced > summary');
      check(await noHorizontalScroll(p), 'the page scrolls sideways with Advanced open');
      check((await unlabelled(p)).length === 0, `controls without a label in Advanced: ${(await unlabelled(p)).join(', ')}`);
      await p.click('#advanced > summary');
      // Keyboard only: Tab to the first sample painting, Enter, then Tab on to Start and Enter.
      await p.evaluate(() => document.activeElement && document.activeElement.blur());
      const tabTo = async (match, limit) => {
        for (let i = 0; i < limit; i++) {
          await p.keyboard.press('Tab');
          if (await evaluate(p, match)) return i + 1;
        }
        return null;
      };
      const toPainting = await tabTo(() => document.activeElement?.closest('#style-samples') !== null, 40);
      check(toPainting !== null, 'Tab never reaches a sample painting');
      await p.keyboard.press('Enter');
      await p.waitForFunction(() => window.stylizeApp.styles.length === 1, null, { timeout: 10000 });
      await evaluate(p, () => {
        window.stylizeApp.afterStep = async (s) => { if (s.step === 2) document.getElementById('btn-stop').click(); };
      });
      const toStart = await tabTo(() => document.activeElement?.id === 'btn-start', 60);
      check(toStart !== null, 'Tab never reaches Start');
      await p.keyboard.press('Enter');
      await waitRunState(p, ['stopped', 'done', 'idle'], 300000);
      check(await evaluate(p, () => window.stylizeApp.run.done) === 2, 'Enter on Start did not run');
      const canvas = await p.locator('#output-canvas').boundingBox();
      check(canvas.width > 300 && canvas.x >= 0 && canvas.x + canvas.width <= 390 && canvas.height <= 844,
        `the canvas does not fit the phone: ${JSON.stringify(canvas)}`);
      check(await noHorizontalScroll(p), 'the page scrolls sideways after a run');
      await p.locator('#output').scrollIntoViewIfNeeded();
      await shot(p, 'page-phone');
      await p.close();
    });

    await test('1:1 zoom: a result wider than the phone shows pixel for pixel and scrolls inside its frame', async () => {
      const p = await openPage(phone.context, url, log);
      await p.click('#style-samples button:has-text("The Shipwreck")');
      await p.waitForFunction(() => window.stylizeApp.styles.length === 1, null, { timeout: 10000 });
      // Only the first layers: a 600 px step is cheap enough for SwiftShader.
      await setControls(p, { 'set-size': '600', 'set-scales': 'off', 'set-steps': '1' });
      await evaluate(p, () => {
        for (const el of document.querySelectorAll('#settings-form .layer-grid input')) el.value = '';
        document.getElementById('set-content_layers-relu1_1').value = '1';
        document.getElementById('set-style_layers-relu1_1').value = '1';
        document.getElementById('settings-form').dispatchEvent(new Event('input', { bubbles: true }));
      });
      await runSteps(p, 1);
      const fitted = await p.locator('#stage').boundingBox();
      check(fitted.width < 390, `fitted width ${fitted.width}`);
      check(await p.locator('#btn-zoom').isEnabled(), '1:1 is disabled for a 600 px result on a phone');
      await p.click('#btn-zoom');
      const zoomed = await p.locator('#stage').boundingBox();
      // The cat, 451×300, at 600 px: 600×399.
      const [w, h] = await evaluate(p, () => [window.stylizeApp.st.width, window.stylizeApp.st.height]);
      check(w === 600 && h === 399, `the result is ${w}x${h}`);
      check(Math.round(zoomed.width) === w && Math.round(zoomed.height) === h, `1:1 is ${zoomed.width}x${zoomed.height} for ${w}x${h}`);
      check(await evaluate(p, () => { const w = document.getElementById('canvas-wrap'); return w.scrollWidth > w.clientWidth; }), 'the frame does not scroll');
      check(await noHorizontalScroll(p), 'the page itself scrolls sideways at 1:1');
      await p.click('#btn-zoom');
      check(Math.round((await p.locator('#stage').boundingBox()).width) === Math.round(fitted.width), 'Fit did not fit again');
      await p.close();
    });
  } finally {
    await phone.close();
  }
  await site.close();

  // -------------------------------------------------------------------------------------------
  // Offline and versions: a copy of www/ on its own server, so that files can change and the
  // server can go away.
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'stylize-www-'));
  fs.cpSync(WWW, copy, { recursive: true, dereference: true });
  const mirror = await serve(copy);
  const off = await launch(true);
  try {
    let p;
    const version = (pg) => evaluate(pg, () => ({
      html: document.querySelector('meta[name="test-version"]')?.content || '1',
      css: getComputedStyle(document.documentElement).getPropertyValue('--test-version').trim() || '1',
    }));
    // A reload, then the page's start-up.
    const reloadReady = async (pg) => {
      await pg.reload({ waitUntil: 'commit', timeout: 60000 });
      const until = Date.now() + 120000;
      for (;;) {
        try {
          await pg.waitForFunction(() => document.body && document.body.dataset.ready === 'true', null, { timeout: 5000 });
          return;
        } catch (e) {
          if (Date.now() > until) throw e;
        }
      }
    };
    const precache = () => {
      const r = spawnSync('bash', [path.join(ROOT, 'build.sh'), 'precache', copy], { encoding: 'utf8' });
      check(r.status === 0, `build.sh precache: ${r.stderr}`);
    };
    await test('a new version replaces the cached page whole on reload, an open page keeps its own; a half-deployed one is never used', async () => {
      p = await openPage(off.context, `${mirror.url}/`, log);
      await p.waitForFunction(() => document.body.dataset.offlineReady === 'true', null, { timeout: 60000 });
      check(/^ready/.test(await p.locator('#offline-status').textContent()), 'the page does not say it is ready offline');
      // Version 2: the page and its stylesheet both change.
      fs.writeFileSync(path.join(copy, 'index.html'), fs.readFileSync(path.join(copy, 'index.html'), 'utf8')
        .replace('<meta charset="utf-8">', '<meta charset="utf-8">\n<meta name="test-version" content="2">'));
      fs.appendFileSync(path.join(copy, 'style.css'), '\n:root { --test-version: 2; }\n');
      precache();
      await reloadReady(p);
      check(JSON.stringify(await version(p)) === '{"html":"1","css":"1"}', `while version 2 installs: ${JSON.stringify(await version(p))}`);
      await p.waitForFunction(() => document.querySelector('.msg[data-key="update"]'), null, { timeout: 60000 });
      // The open page keeps its version, though the new one has taken over: a file it asks for now
      // is still version 1's.
      const css = await evaluate(p, async () => (await fetch('style.css')).text());
      check(css.length > 1000 && !css.includes('--test-version'), 'the open page got a file of the new version');
      await reloadReady(p);
      check(JSON.stringify(await version(p)) === '{"html":"2","css":"2"}', `after a reload: ${JSON.stringify(await version(p))}`);
      // Version 3 half deployed: the list names the new page, but the stylesheet on the server is not the
      // one listed. The install must fail, and version 2 stay whole.
      fs.writeFileSync(path.join(copy, 'index.html'), fs.readFileSync(path.join(copy, 'index.html'), 'utf8').replace('content="2"', 'content="3"'));
      fs.appendFileSync(path.join(copy, 'style.css'), ':root { --test-version: 3; }\n');
      precache();
      fs.appendFileSync(path.join(copy, 'style.css'), '/* changed after the list was written */\n');
      await reloadReady(p);
      await p.waitForFunction(async () => {
        const r = await navigator.serviceWorker.getRegistration();
        return r && !r.installing;
      }, null, { timeout: 60000, polling: 500 });
      const v3 = /version: "([0-9a-f]+)"/.exec(fs.readFileSync(path.join(copy, 'precache.js'), 'utf8'))[1];
      check(!(await evaluate(p, async () => caches.keys())).includes(`stylize-app-${v3}`), 'a half-deployed version was kept');
      await reloadReady(p);
      check(JSON.stringify(await version(p)) === '{"html":"2","css":"2"}', `after a half deploy: ${JSON.stringify(await version(p))}`);
    });

    await test('offline second visit: no network and no server, reload, pick a sample painting, a run completes', async () => {
      await mirror.close();
      await off.context.setOffline(true);
      await reloadReady(p);
      check(await p.locator('#offline-badge').isVisible(), 'the page does not say it is offline');
      check(/working offline/.test(await p.locator('#offline-status').textContent()), `offline status: ${await p.locator('#offline-status').textContent()}`);
      check(/from the browser cache/.test(await p.locator('#weights-status').textContent()), 'the weights did not come from the cache');
      await p.click('#style-samples button:has-text("Woman with a Hat")');
      await p.waitForFunction(() => window.stylizeApp.styles.length === 1, null, { timeout: 10000 });
      await setControls(p, { 'set-size': '48', 'set-steps': '3', 'set-scales': 'off' });
      await p.click('#btn-start');
      await waitRunState(p, ['done', 'stopped', 'idle'], 300000);
      check(await evaluate(p, () => window.stylizeApp.run.state === 'done' && window.stylizeApp.run.done === 3), 'the offline run did not complete');
      check((await messagesOf(p, 'error')).length === 0, `errors: ${(await messagesOf(p, 'error')).join(' | ')}`);
      await shot(p, 'page-offline');
      await off.context.setOffline(false);
    });
  } finally {
    await off.close();
    await mirror.close().catch(() => {});
    fs.rmSync(copy, { recursive: true, force: true });
  }
  console.log(`screenshots in ${path.relative(process.cwd(), RESULTS) || RESULTS}/`);
  finish();
}

main().catch((e) => {
  console.log(`FAIL the test run crashed: ${(e && e.stack) || e}`);
  console.log(`${results.filter((r) => r.ok).length} passed, ${results.filter((r) => !r.ok).length + 1} failed`);
  process.exit(1);
});
