// Browser end-to-end tests of the web page: headless Debian Chromium (SwiftShader WebGPU) driven by
// playwright-core, the page served from www/ by a local static server.
//
//   ./build.sh && node tests/browser/e2e.mjs
//
// Needs: www/pkg (./build.sh), www/weights/vgg19.q8.bin (./build.sh copies it), the test images in
// ../shared/images, /usr/bin/chromium (or $CHROMIUM). Screenshots go to test-results/ (look at them).
// Prints `N passed, M failed` and exits non-zero when a test fails.

import fs from 'node:fs';
import path from 'node:path';
import { check, finish, results, test } from './runner.mjs';
import { serve } from './serve.mjs';
import { encodePng, decodePng, pngSize, meanAbsDiff, rgbStdDev } from './png.mjs';

import { ROOT, WWW, IMAGES, RESULTS, CHROMIUM, CONTENT, STYLE, evaluate, launch, openPage, messagesOf, shot,
  waitRunState, setControls } from './harness.mjs';

// ---------------------------------------------------------------------------------------------

async function main() {
  fs.mkdirSync(RESULTS, { recursive: true });
  for (const [file, why] of [[path.join(WWW, 'pkg/stylize.js'), 'run ./build.sh first'],
    [path.join(WWW, 'weights/vgg19.q8.bin'), 'run ./build.sh first (it copies weights/vgg19.q8.bin)'],
    [CONTENT, 'the test images come from ../shared/images'], [CHROMIUM, 'apt-get install chromium']]) {
    if (!fs.existsSync(file)) {
      console.log(`FAIL setup: ${file} is missing: ${why}\n0 passed, 1 failed`);
      process.exit(1);
    }
  }
  const site = await serve(WWW);
  // A second origin that allows CORS: share links name style images by URL, fetched cross-origin.
  const corsSite = await serve(path.join(IMAGES, 'style'), { cors: true });
  const url = `${site.url}/`;
  const log = [];
  const gpu = await launch(true);
  // Every Content-Security-Policy violation of every page, checked after the runs.
  await gpu.context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
    // A w×h RGBA test image of waves (its phase makes a style image differ from the content).
    window.__wavyImage = (w, h, phase) => {
      const rgba = new Uint8Array(w * h * 4);
      for (let i = 0; i < w * h; i++) {
        const x = i % w, y = Math.floor(i / w);
        rgba.set([128 + 120 * Math.sin(x / 5 + phase), 128 + 120 * Math.cos(y / 4 - phase), (x * y + 50 * phase) % 256, 255], i * 4);
      }
      return rgba;
    };
  });
  let page;
  try {
    await test('the page starts: WebGPU adapter shown, weights downloaded and verified, no errors', async () => {
      page = await openPage(gpu.context, url, log);
      const gpuName = await page.locator('#gpu-name').textContent();
      check(!/no WebGPU|checking/.test(gpuName), `adapter not shown: "${gpuName}"`);
      const limits = await page.locator('#gpu-limits').textContent();
      check(/maxStorageBufferBindingSize/.test(limits), 'adapter limits not listed');
      const status = await page.locator('#weights-status').textContent();
      check(/checksum OK/.test(status) && /downloaded/.test(status), `weights status: "${status}"`);
      const errors = await messagesOf(page, 'error');
      check(errors.length === 0, `error messages: ${errors.join(' | ')}`);
      check(await page.locator('#no-webgpu').isHidden(), 'the no-WebGPU explanation is shown with WebGPU');
      await shot(page, '01-start');
    });

    await test('a second visit takes the weights from the Cache API (no second download)', async () => {
      await page.reload();
      await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 120000 });
      const status = await page.locator('#weights-status').textContent();
      check(/from the browser cache/.test(status) && /checksum OK/.test(status), `weights status: "${status}"`);
      const downloads = site.requests.filter((r) => r === 'GET /weights/vgg19.q8.bin').length;
      check(downloads === 1, `the weights were downloaded ${downloads} times`);
    });

    await test('non-image, broken, empty and zero-size files get a clear message', async () => {
      const cases = [
        [{ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello, not an image') }, /"notes\.txt" is not an image/],
        [{ name: 'broken.png', mimeType: 'image/png', buffer: fs.readFileSync(CONTENT).subarray(0, 3000) }, /"broken\.png" looks like a PNG file but the browser could not decode it/],
        [{ name: 'empty.jpg', mimeType: 'image/jpeg', buffer: Buffer.alloc(0) }, /"empty\.jpg" is empty/],
        [{ name: 'zero.png', mimeType: 'image/png', buffer: encodePng(0, 0, Buffer.alloc(0)) }, /"zero\.png" (looks like a PNG file but the browser could not decode it|has zero width or height)/],
      ];
      for (const [file, expected] of cases) {
        await page.setInputFiles('#content-file', file);
        await page.waitForFunction(() => document.querySelector('.msg.error'), null, { timeout: 10000 });
        const errors = await messagesOf(page, 'error');
        check(errors.some((e) => expected.test(e)), `for ${file.name} expected ${expected}, got: ${errors.join(' | ')}`);
        if (file.name === 'notes.txt') await shot(page, '02-not-an-image');
        await evaluate(page, () => document.querySelectorAll('.msg').forEach((m) => m.remove()));
      }
      // The content image is still the one from before (a bad file changes nothing).
      check(await evaluate(page, () => window.stylizeApp.content !== null), 'a bad file removed the content image');
    });

    await test('EXIF rotation, transparency and large images are handled', async () => {
      // A JPEG whose EXIF says "rotate 90° clockwise": the page must show it upright (sides swapped).
      const jpeg = fs.readFileSync(STYLE);
      const exif = exifOrientationSegment(6);
      const rotated = Buffer.concat([jpeg.subarray(0, 2), exif, jpeg.subarray(2)]);
      await page.setInputFiles('#content-file', { name: 'rotated.jpg', mimeType: 'image/jpeg', buffer: rotated });
      await page.waitForFunction(() => window.stylizeApp.content && window.stylizeApp.content.name === 'rotated.jpg', null, { timeout: 10000 });
      const r = await evaluate(page, () => ({ w: window.stylizeApp.content.width, h: window.stylizeApp.content.height, notes: window.stylizeApp.content.notes }));
      check(r.h > r.w, `EXIF orientation 6 not applied: ${r.w}x${r.h} (the file is landscape)`);
      check(r.notes.some((n) => /rotated 90° clockwise/.test(n)), `no rotation note: ${r.notes}`);

      // Half-transparent pixels end up on white.
      const rgba = Buffer.alloc(8 * 8 * 4);
      for (let i = 0; i < 64; i++) rgba.set(i < 32 ? [0, 0, 0, 0] : [255, 0, 0, 128], i * 4);
      await page.setInputFiles('#content-file', { name: 'alpha.png', mimeType: 'image/png', buffer: encodePng(8, 8, rgba) });
      await page.waitForFunction(() => window.stylizeApp.content && window.stylizeApp.content.name === 'alpha.png', null, { timeout: 10000 });
      const a = await evaluate(page, () => ({ px: Array.from(window.stylizeApp.content.rgba.slice(0, 4)), last: Array.from(window.stylizeApp.content.rgba.slice(-4)), notes: window.stylizeApp.content.notes }));
      check(a.px.join() === '255,255,255,255', `a transparent pixel is not white: ${a.px}`);
      check(Math.abs(a.last[1] - 127) <= 2 && a.last[0] === 255 && a.last[3] === 255, `a half-transparent red pixel is not pink: ${a.last}`);
      check(a.notes.some((n) => /transparent/.test(n)), `no transparency note: ${a.notes}`);

      // A 3000 px wide image is downscaled, not rejected.
      const wide = Buffer.alloc(3000 * 20 * 4, 200);
      await page.setInputFiles('#style-file', { name: 'wide.png', mimeType: 'image/png', buffer: encodePng(3000, 20, wide) });
      await page.waitForFunction(() => window.stylizeApp.styles.some((s) => s.name === 'wide.png'), null, { timeout: 10000 });
      const w = await evaluate(page, () => { const s = window.stylizeApp.styles.find((x) => x.name === 'wide.png'); return { w: s.width, h: s.height, notes: s.notes }; });
      check(w.w === 2048 && w.h === 14, `3000x20 became ${w.w}x${w.h}`);
      check(w.notes.some((n) => /downscaled from 3000x20/.test(n)), `no downscale note: ${w.notes}`);
      await shot(page, '03-inputs');
      // Clean up: remove that style.
      await page.locator('.style-item', { hasText: 'wide.png' }).locator('button').click();
    });

    await test('sample buttons, drag and drop, and paste set the images', async () => {
      await page.click('#content-samples button:has-text("Astronaut")');
      await page.waitForFunction(() => window.stylizeApp.content && window.stylizeApp.content.name === 'Astronaut', null, { timeout: 10000 });
      check(await evaluate(page, () => window.stylizeApp.content.width === 512), 'the Astronaut sample did not load');
      const coffee = fs.readFileSync(path.join(IMAGES, 'content/coffee.png')).toString('base64');
      // Drop a file on the style box, then paste one while the content box is selected.
      await evaluate(page, async (b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = () => {
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], 'coffee.png', { type: 'image/png' }));
          return dt;
        };
        document.getElementById('style-drop').dispatchEvent(new DragEvent('drop', { dataTransfer: transfer(), bubbles: true, cancelable: true }));
        document.getElementById('content-drop').focus();
        document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: transfer(), bubbles: true, cancelable: true }));
      }, coffee);
      await page.waitForFunction(() => window.stylizeApp.styles.some((s) => s.name === 'coffee.png') &&
        window.stylizeApp.content.name === 'coffee.png', null, { timeout: 10000 });
      const sizes = await evaluate(page, () => [window.stylizeApp.content.width, window.stylizeApp.content.height]);
      check(sizes[0] === 600 && sizes[1] === 400, `pasted content is ${sizes}`);
      await page.locator('.style-item', { hasText: 'coffee.png' }).locator('button').click();
      check(await evaluate(page, () => window.stylizeApp.styles.length === 0), 'remove did not remove the style');
    });

    await test('the memory/time estimate refuses a size that cannot fit', async () => {
      await page.setInputFiles('#content-file', CONTENT);
      await page.waitForFunction(() => window.stylizeApp.content && window.stylizeApp.content.name === 'chelsea.png', null, { timeout: 10000 });
      await page.setInputFiles('#style-file', STYLE);
      await page.waitForFunction(() => window.stylizeApp.styles.length === 1, null, { timeout: 10000 });
      // One scale, so that the refusal is the size's own (a schedule names the first scale that fails).
      // 4096 px fits in tiles within 2 GiB: with a 1 GiB budget no tile helps (x, dL/dx and Adam's
      // moments alone are 768 MiB), and the refusal names the memory of the leanest tiled plan.
      const budget = (mib) => evaluate(page, (v) => {
        const el = document.getElementById('memory-budget');
        el.value = v;
        el.dispatchEvent(new Event('input', { bubbles: true }));
      }, mib);
      await budget('1024');
      await setControls(page, { 'set-scales': 'off', 'set-size': '4096' });
      const text = await page.locator('#estimate').textContent();
      check(/4096×2725 needs 1[0-9.]+ MiB of GPU memory, more than the memory budget of 1024\.0 MiB/.test(text) &&
        await page.locator('#estimate.refuse').count() === 1, `no refusal: "${text}"`);
      check(await page.locator('#btn-start').isDisabled(), 'Start is enabled for a size that cannot fit');
      // The default 2 GiB: it runs in tiles.
      await budget('2048');
      const tiled = await page.locator('#estimate').textContent();
      check(/^4096x2725: about 1\.[0-9]+ GiB of GPU memory/.test(tiled), `4096 px in tiles within 2 GiB: "${tiled}"`);
      // The page stops at 4096 px (the CLI goes to 8192), with the reason.
      const over = await evaluate(page, () => {
        const st = window.stylizeApp.st;
        const tryIt = (settings) => { try { st.plan(JSON.stringify({ settings })); return 'planned'; } catch (e) { return String(e.message || e); } };
        return { size: tryIt({ size: 8192 }), style: tryIt({ size: 4096, style_scale: 1.5 }), max: st.constructor.limits().maxSize };
      });
      check(/size 8192: the page runs sizes up to 4096 px/.test(over.size) && /6144 px .* up to 4096 px/.test(over.style) && over.max === 4096,
        `sizes over 4096: ${JSON.stringify(over)}`);
      await setControls(page, { 'set-size': '40', 'set-steps': '5' });
      const ok = await page.locator('#estimate').textContent();
      check(/^40x27: about .* of GPU memory/.test(ok) && /GFLOP per step/.test(ok), `estimate: "${ok}"`);
      check(await page.locator('#btn-start').isEnabled(), 'Start stays disabled');
    });

    const shots = [];
    await test('5 steps at 40 px: the loss goes down, the canvas changes every step, the result is not blank', async () => {
      await page.exposeFunction('__stepShot', async (step) => {
        shots[step] = decodePng(await page.locator('#output-canvas').screenshot());
        if (step === 3) await shot(page, '04-mid-run');
      });
      await evaluate(page, () => {
        window.__steps = [];
        window.stylizeApp.afterStep = async (p) => {
          const image = await window.stylizeApp.st.image();
          window.__steps.push({ ...p, image: Array.from(image) });
          await window.__stepShot(p.step);
        };
      });
      await page.click('#btn-start');
      await waitRunState(page, ['done', 'stopped', 'idle'], 300000);
      const errors = await messagesOf(page, 'error');
      check(errors.length === 0, `errors: ${errors.join(' | ')}`);
      const steps = await evaluate(page, () => window.__steps);
      check(steps.length === 5, `${steps.length} steps ran`);
      for (const s of steps) check(Number.isFinite(s.total) && s.total > 0, `step ${s.step}: loss ${s.total}`);
      check(steps[4].total < steps[0].total, `the loss did not go down: ${steps.map((s) => s.total.toExponential(3)).join(', ')}`);
      for (let i = 1; i < 5; i++) {
        const engineDiff = meanAbsDiff(steps[i].image, steps[i - 1].image);
        check(engineDiff > 0, `the image did not change from step ${i} to ${i + 1}`);
        const canvasDiff = meanAbsDiff(shots[i + 1].rgba, shots[i].rgba);
        check(canvasDiff > 0, `the canvas did not change from step ${i} to ${i + 1}`);
      }
      const final = steps[4].image;
      check(final.length === 40 * 27 * 4, `final image has ${final.length / 4} pixels, expected 40x27`);
      check(rgbStdDev(final) > 10, `the final image is blank (std dev ${rgbStdDev(final).toFixed(2)})`);
      check(rgbStdDev(shots[5].rgba) > 10, 'the canvas shows a blank image');
      const statStep = await page.locator('#stat-step').textContent();
      check(statStep === '5 / 5', `step counter shows "${statStep}"`);
      const csp = await evaluate(page, () => window.__csp);
      check(csp.length === 0, `Content-Security-Policy violations: ${csp.join(' | ')}`);
      check(/^[0-9.]+$/.test(await page.locator('#stat-rate').textContent()), 'no steps/s shown');
      await evaluate(page, () => { window.stylizeApp.afterStep = null; });
      await shot(page, '05-done');
    });

    await test('Download PNG gives the image at full resolution', async () => {
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30000 }), page.click('#btn-download')]);
      const file = await download.path();
      const bytes = fs.readFileSync(file);
      const size = pngSize(bytes);
      check(size.width === 40 && size.height === 27, `PNG is ${size.width}x${size.height}, expected 40x27`);
      check(download.suggestedFilename() === 'stylized-chelsea-40x27.png', `file name ${download.suggestedFilename()}`);
      const png = decodePng(bytes);
      const engine = await evaluate(page, async () => Array.from(await window.stylizeApp.st.image()));
      check(meanAbsDiff(png.rgba, engine) < 0.01, 'the PNG differs from the engine image');
      fs.copyFileSync(file, path.join(RESULTS, 'download.png'));
    });

    await test('Pause, Resume, Stop and Reset', async () => {
      await setControls(page, { 'set-size': '32', 'set-steps': '6' });
      await evaluate(page, () => {
        window.stylizeApp.afterStep = async (p) => { if (p.step === 2) document.getElementById('btn-pause').click(); };
      });
      await page.click('#btn-start');
      await waitRunState(page, ['paused'], 120000);
      const at = await evaluate(page, () => window.stylizeApp.run.done);
      await page.waitForTimeout(1500);
      check(await evaluate(page, () => window.stylizeApp.run.done) === at, 'steps ran while paused');
      check(await page.locator('#btn-resume').isEnabled() && await page.locator('#btn-pause').isDisabled(), 'buttons wrong while paused');
      await evaluate(page, () => {
        window.stylizeApp.afterStep = async (p) => { if (p.step === 4) document.getElementById('btn-stop').click(); };
      });
      await page.click('#btn-resume');
      await waitRunState(page, ['stopped'], 120000);
      const stopped = await evaluate(page, () => window.stylizeApp.run.done);
      check(stopped === 4, `stopped after ${stopped} steps, expected 4`);
      check(await page.locator('#btn-download').isEnabled(), 'Download is disabled after Stop');
      await page.click('#btn-reset');
      await waitRunState(page, ['idle'], 10000);
      check(await page.locator('#stat-step').textContent() === '–', 'Reset kept the step counter');
      check(await page.locator('#btn-download').isDisabled(), 'Download enabled after Reset');
      await evaluate(page, () => { window.stylizeApp.afterStep = null; });
    });

    await test('a lost GPU device is recovered and the run continues from the last image', async () => {
      await setControls(page, { 'set-size': '32', 'set-steps': '5' });
      await evaluate(page, () => {
        window.__lostOnce = false;
        window.stylizeApp.afterStep = async (p) => {
          if (p.step === 2 && !window.__lostOnce) {
            window.__lostOnce = true;
            // The panel's content changes during the run: the recovery must rebuild from the run's own.
            window.__runContent = window.stylizeApp.content;
            window.stylizeApp.content = { name: 'other.png', width: 64, height: 64, rgba: new Uint8Array(64 * 64 * 4).fill(128), url: null, notes: [] };
            window.stylizeApp.st.loseDeviceForTesting();
          }
        };
      });
      const before = await evaluate(page, () => window.stylizeApp.st);
      await page.click('#btn-start');
      await waitRunState(page, ['done', 'stopped', 'idle'], 300000);
      const warns = await messagesOf(page, 'warn');
      // The loss is reported asynchronously: the image saved at step 2 (or a later one, if a step still
      // finished before the device went away) is where the run continues.
      check(warns.some((w) => /device was lost .*continues from step [2-4],/.test(w)), `no recovery message: ${warns.join(' | ')}`);
      const state = await evaluate(page, () => ({ state: window.stylizeApp.run.state, done: window.stylizeApp.run.done, lost: window.stylizeApp.st.lostReason(), w: window.stylizeApp.st.width, h: window.stylizeApp.st.height }));
      // 32x21 is chelsea's shape (the run's content); the 64x64 one in the panel would give 32x32.
      check(state.state === 'done' && state.done === 5 && state.lost == null && state.w === 32 && state.h === 21, `after recovery: ${JSON.stringify(state)}`);
      await evaluate(page, () => { window.stylizeApp.content = window.__runContent; });
      const errors = await messagesOf(page, 'error');
      check(errors.length === 0, `errors: ${errors.join(' | ')}`);
      await shot(page, '06-recovered');
      await evaluate(page, () => { window.stylizeApp.afterStep = null; });
      void before;
    });

    await test('Copy link puts every setting and the style URLs in the link; opening it restores them', async () => {
      const first = await openPage(gpu.context, url, log);
      await setControls(first, {
        'set-preset': 'neural-style',
      });
      await setControls(first, {
        'set-size': '48', 'set-steps': '7', 'set-optimizer': 'adam', 'set-lr': '0.0125', 'set-lbfgs_history': '9',
        'set-content_weight': '2.5', 'set-style_weight': '1e3', 'set-tv_weight': '0.001', 'set-style_scale': '0.75',
        'set-pooling': 'avg', 'set-init': 'style', 'set-seed': '12345', 'set-loss_form': 'seed',
      });
      // Per-layer weights: clear all, then set a few.
      await evaluate(first, () => document.querySelectorAll('.layer-grid input').forEach((i) => { i.value = ''; }));
      await setControls(first, {
        'set-content_layers-relu3_2': '0.5', 'set-content_layers-relu4_2': '1',
        'set-style_layers-relu1_1': '0.3', 'set-style_layers-relu2_2': '1.5', 'set-style_layers-relu5_1': '2',
      });
      for (const [file, weight] of [['starry_night.jpg', '0.4'], ['the_scream.jpg', '0.6']]) {
        await first.fill('#style-url', `${corsSite.url}/${file}`);
        await first.click('#style-url-form button');
        await first.waitForFunction((f) => window.stylizeApp.styles.some((s) => s.url && s.url.endsWith(f)), file, { timeout: 20000 });
        await evaluate(first, ([f, w]) => {
          const style = window.stylizeApp.styles.find((s) => s.url.endsWith(f));
          const slider = document.querySelector(`.style-item[data-style-id="${style.id}"] input[type=range]`);
          slider.value = w;
          slider.dispatchEvent(new Event('input'));
        }, [file, weight]);
      }
      // Uploaded images (content and a style) must not go into the link.
      await first.setInputFiles('#style-file', STYLE);
      await first.waitForFunction(() => window.stylizeApp.styles.length === 3, null, { timeout: 10000 });
      await first.setInputFiles('#content-file', CONTENT);
      await first.waitForFunction(() => window.stylizeApp.content && !window.stylizeApp.content.url, null, { timeout: 10000 });
      const expected = await evaluate(first, () => window.stylizeApp.form.read());
      await first.click('#btn-link');
      await first.waitForFunction(() => document.querySelector('.msg[data-key="link"]'), null, { timeout: 10000 });
      const link = await first.locator('#share-link').inputValue();
      check(link.startsWith(url) && link.includes('#'), `link: ${link}`);
      check(!/blob:|data:|content=/.test(link), `the link carries an upload: ${link}`);
      check((link.match(/style=/g) || []).length === 2, `the link should hold the 2 style URLs: ${link}`);
      const info = (await messagesOf(first, 'info')).join(' | ');
      check(/2 image\(s\) you uploaded are not in it/.test(info), `no note about uploads: ${info}`);
      await first.close();

      const corsBefore = corsSite.requests.length;
      const second = await openPage(gpu.context, link, log);
      await second.waitForFunction(() => window.stylizeApp.styles.length === 2, null, { timeout: 20000 });
      const restored = await evaluate(second, () => window.stylizeApp.form.read());
      for (const key of Object.keys(expected)) {
        const same = expected[key] === restored[key] ||
          (Number.isFinite(Number(expected[key])) && Number(expected[key]) === Number(restored[key]));
        check(same, `${key}: "${restored[key]}" after the link, "${expected[key]}" before`);
      }
      const wanted = { 'set-preset': 'neural-style', 'set-size': '48', 'set-steps': '7', 'set-optimizer': 'adam',
        'set-lr': '0.0125', 'set-lbfgs_history': '9', 'set-content_weight': '2.5', 'set-tv_weight': '0.001',
        'set-style_scale': '0.75', 'set-pooling': 'avg', 'set-init': 'style', 'set-seed': '12345', 'set-loss_form': 'seed',
        'set-content_layers-relu3_2': '0.5', 'set-content_layers-relu4_2': '1', 'set-content_layers-relu4_1': '',
        'set-style_layers-relu1_1': '0.3', 'set-style_layers-relu2_2': '1.5', 'set-style_layers-relu5_1': '2',
        'set-style_layers-relu2_1': '' };
      for (const [id, value] of Object.entries(wanted)) {
        const got = await second.locator(`#${id}`).inputValue();
        // Numbers come back in their shortest exact form (0.001 may show as 1e-3): same value.
        const same = got === value || (value !== '' && got !== '' && Number(got) === Number(value));
        check(same, `#${id} shows "${got}", expected "${value}"`);
      }
      check(Number(await second.locator('#set-style_weight').inputValue()) === 1000, 'style weight not restored');
      const styles = await evaluate(second, () => window.stylizeApp.styles.map((s) => [s.url, s.weight]));
      check(styles.length === 2 && styles[0][0].endsWith('starry_night.jpg') && styles[0][1] === 0.4 &&
        styles[1][0].endsWith('the_scream.jpg') && styles[1][1] === 0.6, `styles: ${JSON.stringify(styles)}`);
      const fetched = corsSite.requests.slice(corsBefore);
      check(fetched.includes('GET /starry_night.jpg') && fetched.includes('GET /the_scream.jpg'),
        `style URLs not fetched from the CORS server: ${fetched}`);
      await shot(second, '07-link-restored');
      await second.close();
    });

    await test('hostile link values are reported and ignored, never inserted as HTML', async () => {
      const hostile = `${url}#size=abc&steps=-5&lr=1e999&bogus=${encodeURIComponent('<img src=x onerror="window.__pwned=1">')}` +
        `&style=javascript:alert(1)&style=${encodeURIComponent('0.5:data:text/html,<b>x</b>')}` +
        `&pooling=${encodeURIComponent('<script>window.__pwned=2</script>')}&init=${encodeURIComponent('/etc/passwd')}`;
      const bad = await openPage(gpu.context, hostile, log);
      await bad.waitForTimeout(500);
      const warns = await messagesOf(bad, 'warn');
      check(warns.length >= 5, `expected a warning per bad value, got ${warns.length}: ${warns.join(' | ')}`);
      check(await evaluate(bad, () => window.__pwned === undefined), 'a link value ran as code');
      check(await evaluate(bad, () => document.querySelectorAll('.msg img, .msg script, .msg b').length === 0), 'a link value became HTML');
      check(await bad.locator('#set-size').inputValue() === '512', 'a bad size was not ignored');
      // A link without v= is a version 1 link: the steps it leaves out are that version's default, 500.
      check(await bad.locator('#set-steps').inputValue() === '500', 'a bad steps value was not ignored');
      check(await bad.locator('#set-pooling').inputValue() === 'max', 'a bad pooling was not ignored');
      check(await bad.locator('#set-init').inputValue() === 'content', 'a file path init was not ignored');
      check(await evaluate(bad, () => window.stylizeApp.styles.length === 0), 'a non-http style URL was used');
      await shot(bad, '08-hostile-link');
      await bad.close();
    });

    await test('each hostile link of issue 6 in turn is refused or stopped with its message, then a normal 3-step run', async () => {
      const p = await openPage(gpu.context, url, log);
      const logStart = log.length;
      const open = async (hash) => {
        await evaluate(p, (h) => { location.hash = h; }, hash);
        await p.waitForTimeout(400);
      };
      const estimate = () => p.locator('#estimate').textContent();
      const refused = async (re, what) => {
        const text = await estimate();
        check(re.test(text) && await p.locator('#estimate.refuse').count() === 1, `${what}: no refusal: "${text}"`);
        check(await p.locator('#btn-start').isDisabled(), `${what}: Start is enabled`);
      };
      await p.setInputFiles('#style-file', STYLE);
      await p.waitForFunction(() => window.stylizeApp.styles.length === 1, null, { timeout: 10000 });
      // L-BFGS with 100 pairs at 2048 px: about 10 GB.
      await open('#optimizer=lbfgs&lbfgs_history=100&size=2048');
      await refused(/per buffer|memory budget/, 'lbfgs 100 at 2048');
      // 16-23 px with the cat: too small for relu5_1 (it used to panic in gram.rs).
      for (const size of [16, 20, 23]) {
        await open(`#size=${size}&steps=${size}`);
        await refused(/needs at least 16 px/, `size ${size}`);
      }
      // style_scale x size over the style bound: refused before any resizing.
      await open('#size=2048&style_scale=8');
      await refused(/16384 px/, 'style_scale 8');
      // A 60000x8 PNG (2048x1 once downscaled) as the content.
      const wide = Buffer.alloc(60000 * 8 * 4, 200);
      await open('#size=64');
      await p.setInputFiles('#content-file', { name: 'strip.png', mimeType: 'image/png', buffer: encodePng(60000, 8, wide) });
      await p.waitForFunction(() => window.stylizeApp.content && window.stylizeApp.content.name === 'strip.png', null, { timeout: 20000 });
      await p.waitForTimeout(300);
      await refused(/64x1|64×1/, '60000x8 content');
      await p.setInputFiles('#content-file', CONTENT);
      await p.waitForFunction(() => window.stylizeApp.content.name === 'chelsea.png', null, { timeout: 10000 });
      // Weights so large the objective overflows: the run stops with the reason, on a finite image.
      await open('#content_weight=1e38&content_layers=relu4_2:1e38&size=32&steps=6');
      await p.click('#btn-start');
      await waitRunState(p, ['stopped', 'idle', 'done'], 120000);
      const errors = await messagesOf(p, 'error');
      check(errors.some((e) => /objective became inf/.test(e) && /too large/.test(e)), `no divergence message: ${errors.join(' | ')}`);
      check(!(await messagesOf(p, 'info')).some((m) => /^Done/.test(m)), 'a diverged run says Done');
      const kept = await evaluate(p, async () => Array.from(await window.stylizeApp.st.image()));
      check(rgbStdDev(kept) > 10, 'the diverged run shows a black image');
      // A style URL that fails (an encoded %, a 404) keeps its message; a bare % in a URL is not fatal.
      await open(`#size=48&style=${encodeURIComponent(`${corsSite.url}/100%25.png`)}&style=${encodeURIComponent(`${corsSite.url}/50%.png`)}`);
      await p.waitForTimeout(1500);
      const styleErrors = await messagesOf(p, 'error');
      check(styleErrors.some((e) => /100%25\.png|100%\.png/.test(e)), `the failed style URL left no message: ${styleErrors.join(' | ')}`);
      check(await p.locator('#set-size').inputValue() === '48', "the link's other values did not apply");
      // A huge seed keeps its digits; 100 000 steps do not break the plot.
      await open('#seed=18446744073709551615&steps=100000&size=32');
      check(await p.locator('#set-seed').inputValue() === '18446744073709551615', 'the seed lost digits');
      // Then a normal run in the same page.
      await p.setInputFiles('#style-file', STYLE);
      await p.waitForFunction(() => window.stylizeApp.styles.length >= 1, null, { timeout: 10000 });
      await open('#size=32&steps=3');
      await p.click('#btn-start');
      await waitRunState(p, ['done', 'stopped', 'idle'], 120000);
      check(await evaluate(p, () => window.stylizeApp.run.done) === 3 && await evaluate(p, () => document.body.dataset.runState) === 'done',
        `the normal run did not finish: ${(await messagesOf(p, 'error')).join(' | ')}`);
      const crashes = log.slice(logStart).filter((l) => /panicked|unreachable|RuntimeError/.test(l));
      check(crashes.length === 0, `the engine panicked: ${crashes.join(' | ')}`);
      await shot(p, '10-hostile-links-then-run');
      await p.close();
    });

    await test('a step that times out resets the engine, and Start works again', async () => {
      const p = await openPage(gpu.context, `${url}#size=32&steps=3`, log);
      await p.setInputFiles('#style-file', STYLE);
      await p.waitForFunction(() => window.stylizeApp.styles.length === 1 && window.stylizeApp.content, null, { timeout: 10000 });
      await evaluate(p, () => { window.stylizeApp.stepTimeoutMs = 1; });
      await p.click('#btn-start');
      await p.waitForFunction(() => [...document.querySelectorAll('.msg.error')].some((m) => /engine was restarted/.test(m.textContent)),
        null, { timeout: 60000 });
      await evaluate(p, () => { window.stylizeApp.stepTimeoutMs = 180000; });
      await p.waitForFunction(() => !document.getElementById('btn-start').disabled, null, { timeout: 30000 });
      await p.click('#btn-start');
      await waitRunState(p, ['done', 'stopped', 'idle'], 120000);
      const done = await evaluate(p, () => [document.body.dataset.runState, window.stylizeApp.run.done]);
      check(done[0] === 'done' && done[1] === 3, `after the reset: ${done} ${(await messagesOf(p, 'error')).join(' | ')}`);
      await p.close();
    });

    await test('a link or a new image during a run applies to the next run, and the page says so', async () => {
      const p = await openPage(gpu.context, `${url}#size=32&steps=4`, log);
      await p.setInputFiles('#style-file', STYLE);
      await p.waitForFunction(() => window.stylizeApp.styles.length === 1 && window.stylizeApp.content, null, { timeout: 10000 });
      await evaluate(p, () => {
        window.__notes = [];
        window.stylizeApp.afterStep = async (s) => {
          if (s.step !== 1) return;
          location.hash = '#size=40&steps=2';
          await new Promise((r) => setTimeout(r, 100));
          window.__notes.push(document.querySelector('.msg[data-key="next-run"]')?.textContent || '');
        };
      });
      const startContent = await evaluate(p, () => window.stylizeApp.content.name);
      await p.click('#btn-start');
      // The new content during the run: shown, but not used.
      await p.waitForFunction(() => window.__notes.length >= 1, null, { timeout: 60000 });
      await p.setInputFiles('#content-file', path.join(IMAGES, 'content/coffee.png'));
      await waitRunState(p, ['done', 'stopped', 'idle'], 120000);
      const r = await evaluate(p, () => ({ notes: window.__notes, w: window.stylizeApp.st.width, done: window.stylizeApp.run.done,
        content: window.stylizeApp.run.inputs.content.name }));
      check(r.done === 4 && r.w === 32, `the run changed: ${JSON.stringify(r)}`);
      check(r.content === startContent, `the run's content became ${r.content}`);
      check(await evaluate(p, () => window.stylizeApp.content.name) === 'coffee.png', 'the panel does not show the new content');
      check(/link opens when this run ends/.test(r.notes[0] || ''), `no note about the link: ${r.notes}`);
      await p.waitForFunction(() => document.getElementById('set-size').value === '40', null, { timeout: 10000 });
      check(await p.locator('#set-steps').inputValue() === '2', 'the link was not applied after the run');
      await p.close();
    });

    await test('a repeated error shows once, messages stay few, and the plot takes 100 000 steps', async () => {
      const p = await openPage(gpu.context, url, log);
      await evaluate(p, async () => {
        for (let i = 0; i < 50; i++) setTimeout(() => { throw new Error(`boom ${i}`); });
        for (let i = 0; i < 50; i++) Promise.reject(new Error('same rejection'));
        await new Promise((r) => setTimeout(r, 300));
      });
      const unexpected = (await messagesOf(p, 'error')).filter((e) => /^Unexpected error/.test(e));
      check(unexpected.length === 1, `unexpected-error messages: ${unexpected.length}: ${unexpected.join(' | ')}`);
      check(await evaluate(p, () => document.querySelectorAll('.msg').length) <= 8, 'more than 8 messages');
      const before = (await messagesOf(p, 'error')).length;
      const kept = await evaluate(p, async () => {
        const { LossPlot } = await import(new URL('lib/plot.js', location.href).href);
        const plot = new LossPlot(document.getElementById('loss-plot'));
        for (let step = 1; step <= 100000; step++) plot.add({ step, total: 1e6 / step, content: 1, style: 2, tv: 0 });
        plot.draw();
        await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 50)));
        return Math.max(...plot.lines.map((l) => l.values.length));
      });
      check(kept <= 8192, `the plot keeps ${kept} points per term`);
      check((await messagesOf(p, 'error')).length === before, 'drawing the plot raised errors');
      await p.close();
    });

    await test('a decompression bomb is refused from its header; a turned JPEG decodes straight to its size; URLs are byte-capped', async () => {
      const bomb = Buffer.from(encodePng(1, 1, Buffer.alloc(4, 255)));
      bomb.writeUInt32BE(16384, 16);
      bomb.writeUInt32BE(16384, 20); // IHDR says 16384x16384 (the CRC no longer matches: never decoded)
      const before = await evaluate(page, () => window.stylizeApp.content.name);
      await page.setInputFiles('#content-file', { name: 'bomb.png', mimeType: 'image/png', buffer: bomb });
      await page.waitForFunction(() => [...document.querySelectorAll('.msg.error')].some((m) => /bomb\.png/.test(m.textContent)), null, { timeout: 10000 });
      const errors = await messagesOf(page, 'error');
      check(errors.some((e) => /"bomb\.png" is 16384x16384 \(268 megapixels\), more than the 50 megapixels/.test(e)), `no refusal: ${errors.join(' | ')}`);
      check(await evaluate(page, () => window.stylizeApp.content.name) === before, 'the bomb replaced the content');
      // EXIF 6 and a downscale: the resize applies to the turned picture, as a full decode scaled by canvas does.
      const scream = fs.readFileSync(path.join(IMAGES, 'style/the_scream.jpg')); // 1200x1528
      const turned = Buffer.concat([scream.subarray(0, 2), exifOrientationSegment(6), scream.subarray(2)]);
      const r = await evaluate(page, async (b64) => {
        const { decodeImage } = await import(new URL('lib/images.js', location.href).href);
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const small = await decodeImage(new Blob([bytes], { type: 'image/jpeg' }), 't.jpg', 500);
        const full = await decodeImage(new Blob([bytes], { type: 'image/jpeg' }), 't.jpg', 2048);
        const c = document.createElement('canvas');
        c.width = full.width; c.height = full.height;
        c.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(full.rgba), full.width, full.height), 0, 0);
        const d = document.createElement('canvas');
        d.width = small.width; d.height = small.height;
        const ctx = d.getContext('2d');
        ctx.drawImage(c, 0, 0, small.width, small.height);
        const ref = ctx.getImageData(0, 0, small.width, small.height).data;
        let diff = 0;
        for (let i = 0; i < ref.length; i++) diff += Math.abs(ref[i] - small.rgba[i]);
        return { w: small.width, h: small.height, ow: small.originalWidth, oh: small.originalHeight, diff: diff / ref.length };
      }, turned.toString('base64'));
      check(r.w === 500 && r.h === 393 && r.ow === 1528 && r.oh === 1200, `turned + resized: ${JSON.stringify(r)}`);
      check(r.diff < 12, `the resized decode differs from a full decode (mean ${r.diff.toFixed(1)}): wrong orientation?`);
      const capped = await evaluate(page, async () => {
        const { readCapped } = await import(new URL('lib/images.js', location.href).href);
        return readCapped(await fetch('samples/chelsea.png'), 1000, 'chelsea').then(() => 'read', (e) => e.message);
      });
      check(/more than the 1000 bytes/.test(capped), `not capped: ${capped}`);
    });

    await test('URLs whose file names hold % load, and their names are shown', async () => {
      const scream = fs.readFileSync(path.join(IMAGES, 'style/the_scream.jpg'));
      const host = 'https://images.example';
      await gpu.context.route(`${host}/**`, (route) => route.fulfill({ status: 200, contentType: 'image/jpeg',
        headers: { 'Access-Control-Allow-Origin': '*' }, body: scream }));
      try {
        const link = `${url}#style=${encodeURIComponent(`${host}/100%.jpg`)}&style=${encodeURIComponent(`${host}/50%25.jpg`)}`;
        const q = await openPage(gpu.context, link, log);
        await q.waitForFunction(() => window.stylizeApp.styles.length === 2, null, { timeout: 20000 });
        const names = await evaluate(q, () => window.stylizeApp.styles.map((s) => s.name).sort());
        check(names.join() === '100%.jpg,50%.jpg', `names: ${names}`);
        const errs = await messagesOf(q, 'error');
        check(errs.length === 0, `errors: ${errs.join(' | ')}`);
        await q.close();
      } finally {
        await gpu.context.unroute(`${host}/**`);
      }
    });

    await test('a seed above 2^53 keeps its digits: link, form, engine, new link, and the noise it makes', async () => {
      const big = '18446744073709551615';
      const p = await openPage(gpu.context, `${url}#seed=${big}&init=noise&size=32&steps=1`, log);
      check(await p.locator('#set-seed').inputValue() === big, 'the form lost digits');
      const sent = await evaluate(p, () => JSON.stringify(window.stylizeApp.form.read()));
      check(sent.includes(`"seed":"${big}"`), `settings JSON: ${sent}`);
      await p.setInputFiles('#style-file', STYLE);
      await p.waitForFunction(() => window.stylizeApp.styles.length === 1, null, { timeout: 10000 });
      const runWith = async (seed) => {
        await setControls(p, { 'set-seed': seed });
        await p.click('#btn-start');
        await waitRunState(p, ['done', 'stopped', 'idle'], 120000);
        return evaluate(p, async () => ({ seed: window.stylizeApp.st.settings().seed, image: Array.from(await window.stylizeApp.st.image()) }));
      };
      const a = await runWith(big);
      const b = await runWith('18446744073709551614'); // the same JS Number as `big`
      check(a.seed === big && b.seed === '18446744073709551614', `the engine got ${a.seed} / ${b.seed}`);
      check(meanAbsDiff(a.image, b.image) > 0, 'two seeds 1 apart gave the same noise: digits were lost');
      await setControls(p, { 'set-seed': big });
      await p.click('#btn-link');
      await p.waitForFunction(() => document.querySelector('.msg[data-key="link"]'), null, { timeout: 10000 });
      check((await p.locator('#share-link').inputValue()).includes(`seed=${big}`), 'the new link lost digits');
      check((await messagesOf(p, 'error')).length === 0, 'errors');
      await p.close();
    });

    await test('a coarse-to-fine run shows its scale and ends at the full size', async () => {
      const p = await openPage(gpu.context, `${url}#size=40&steps=3&scales=2&min_size=28&scale_steps=2&colour=luma-swap`, log);
      check(await p.locator('#set-colour').inputValue() === 'luma-swap', 'the colour mode did not reach the form');
      await p.setInputFiles('#style-file', STYLE);
      await p.waitForFunction(() => window.stylizeApp.styles.length === 1 && window.stylizeApp.content, null, { timeout: 10000 });
      await p.setInputFiles('#content-file', CONTENT);
      await p.waitForFunction(() => window.stylizeApp.content.name === 'chelsea.png', null, { timeout: 10000 });
      const estimate = await p.locator('#estimate').textContent();
      check(/5 steps over 2 scales \(28, 40 px\)/.test(estimate), `estimate: "${estimate}"`);
      await evaluate(p, () => {
        window.__scales = [];
        window.stylizeApp.afterStep = async () => { window.__scales.push(document.getElementById('stat-scale').textContent); };
      });
      await p.click('#btn-start');
      await waitRunState(p, ['done', 'stopped', 'idle'], 120000);
      const r = await evaluate(p, () => ({ scales: window.__scales, done: window.stylizeApp.run.done, w: window.stylizeApp.st.width,
        h: window.stylizeApp.st.height, step: document.getElementById('stat-step').textContent }));
      check(r.done === 5 && r.step === '5 / 5', `steps: ${JSON.stringify(r)}`);
      check(r.scales[0] === '1 of 2 · 28×19' && r.scales[4] === '2 of 2 · 40×27', `scale shown: ${r.scales}`);
      check(r.w === 40 && r.h === 27, `final size ${r.w}x${r.h}`);
      check((await messagesOf(p, 'error')).length === 0, `errors: ${(await messagesOf(p, 'error')).join(' | ')}`);
      await p.close();
    });
    await test("a coarse-to-fine run that loses its device goes on at the snapshot's scale and ends at the full size", async () => {
      // 3 scales (28, 34, 40 px), 3 steps each: the device goes at step 5, in the second scale.
      const p = await openPage(gpu.context, `${url}#size=40&steps=3&scales=3&min_size=28&scale_steps=3`, log);
      await p.setInputFiles('#style-file', STYLE);
      await p.waitForFunction(() => window.stylizeApp.styles.length === 1 && window.stylizeApp.content, null, { timeout: 10000 });
      await p.setInputFiles('#content-file', CONTENT);
      await p.waitForFunction(() => window.stylizeApp.content.name === 'chelsea.png', null, { timeout: 10000 });
      await evaluate(p, () => {
        window.__sizes = [];
        window.__lostOnce = false;
        window.stylizeApp.afterStep = async (s) => {
          window.__sizes.push(window.stylizeApp.st.width);
          if (s.step === 5 && !window.__lostOnce) {
            window.__lostOnce = true;
            window.stylizeApp.st.loseDeviceForTesting();
          }
        };
      });
      await p.click('#btn-start');
      await waitRunState(p, ['done', 'stopped', 'idle'], 120000);
      const r = await evaluate(p, () => ({ state: window.stylizeApp.run.state, done: window.stylizeApp.run.done,
        total: window.stylizeApp.run.total, w: window.stylizeApp.st.width, h: window.stylizeApp.st.height, sizes: window.__sizes }));
      const warns = await messagesOf(p, 'warn');
      const from = Number((/continues from step ([0-9]+),/.exec(warns.join(' ')) || [])[1]);
      check(from >= 4 && from <= 6, `no recovery message: ${warns.join(' | ')}`);
      // The second scale again from the snapshot (3 steps), then the last one: the run ends at 40 px.
      check(r.state === 'done' && r.w === 40 && r.h === 27, `after recovery: ${JSON.stringify(r)}`);
      check(r.done === r.total && r.total === from + 6, `steps: ${JSON.stringify(r)}`);
      const after = r.sizes.slice(-6);
      check(after.slice(0, 3).every((w) => w < 40) && after.slice(3).every((w) => w === 40), `sizes after the recovery: ${r.sizes}`);
      check((await messagesOf(p, 'error')).length === 0, `errors: ${(await messagesOf(p, 'error')).join(' | ')}`);
      await p.close();
    });
    await test('a size over the memory budget runs in tiles: the counter shows the tile, the objective is the untiled one', async () => {
      // 384x255 with relu1_2/relu1_1: 157 MiB untiled; with a 120 MiB budget it runs in 128 px tiles (6, 108 MiB).
      const p = await openPage(gpu.context, `${url}#size=384&steps=2&content_layers=relu1_2&style_layers=relu1_1`, log);
      await p.setInputFiles('#style-file', STYLE);
      await p.waitForFunction(() => window.stylizeApp.styles.length === 1 && window.stylizeApp.content, null, { timeout: 10000 });
      await p.setInputFiles('#content-file', CONTENT);
      await p.waitForFunction(() => window.stylizeApp.content.name === 'chelsea.png', null, { timeout: 10000 });
      const run = async (budgetMiB) => {
        await p.fill('#memory-budget', String(budgetMiB));
        await p.locator('#memory-budget').press('Tab');
        await evaluate(p, () => {
          Object.assign(window, { __texts: [], __done: [], __gpu: [], __first: null });
          window.__poll = setInterval(() => {
            const text = document.getElementById('stat-step').textContent;
            if (text.includes('tile') && !window.__texts.includes(text)) window.__texts.push(text);
            const t = window.stylizeApp.st.tileProgress();
            if (t && !window.__done.includes(t.done)) window.__done.push(t.done);
            // during the first step (setup, then its tile passes)
            const g = window.stylizeApp.st.gpuProgress();
            if (window.__first === null && !window.__gpu.includes(g)) window.__gpu.push(g);
          }, 20);
          window.stylizeApp.afterStep = async (s) => { if (s.step === 1) window.__first = s.total; };
        });
        await p.click('#btn-start');
        await waitRunState(p, ['done', 'stopped', 'idle'], 300000);
        return evaluate(p, () => {
          clearInterval(window.__poll);
          const st = window.stylizeApp.st;
          return { first: window.__first, texts: window.__texts, done: window.__done, gpu: window.__gpu, progress: st.tileProgress(),
            state: window.stylizeApp.run.state, step: document.getElementById('stat-step').textContent };
        });
      };
      const tiled = await run(120);
      check(tiled.state === 'done' && tiled.step === '2 / 2', `tiled run: ${JSON.stringify(tiled)}`);
      const pr = tiled.progress;
      check(pr && pr.tiles === 6 && pr.done === 12 && pr.text === 'tile 6 of 6, pass 2 of 2', `tileProgress after the run: ${JSON.stringify(pr)}`);
      check(tiled.done.some((d) => d > 0 && d < 12), `no tile pass seen between 0 and 12: ${tiled.done}`);
      // What the watchdog follows: finished GPU work, moving through the first step (setup and passes).
      check(tiled.gpu.length >= 5, `gpuProgress moved ${tiled.gpu.length - 1} times in the first step: ${tiled.gpu}`);
      check(tiled.texts.some((t) => /^[12] \/ 2 · tile [1-6] of 6, pass [12] of 2$/.test(t)), `the counter never showed a tile: ${tiled.texts}`);
      const untiled = await run(2048); // (also puts the default budget back for the tests after this one)
      check(untiled.state === 'done' && untiled.progress === null && untiled.texts.length === 0, `untiled run: ${JSON.stringify(untiled)}`);
      const rel = Math.abs(tiled.first - untiled.first) / untiled.first;
      check(rel < 1e-5, `the tiled objective ${tiled.first} is not the untiled ${untiled.first} (${rel.toExponential(2)})`);
      check((await messagesOf(p, 'error')).length === 0, `errors: ${(await messagesOf(p, 'error')).join(' | ')}`);
      await p.close();
    });
    await test('conv kernels: tuned on the first step and remembered, each variant forced gives the same objective, a bad name is refused', async () => {
      const p = await openPage(gpu.context, url, log);
      const r = await evaluate(p, async () => {
        const st = window.stylizeApp.st;
        const image = window.__wavyImage;
        st.setContent(image(44, 36, 0), 44, 36);
        st.setStyle(image(40, 40, 1.3), 40, 40);
        // a fresh profile: the first step times the variants, and says so while it does
        localStorage.removeItem('stylize.conv-tuning');
        const seen = [];
        const poll = setInterval(() => { const t = st.tuning(); if (t && !seen.includes(t.text)) seen.push(t.text); }, 10);
        st.reset();
        st.configure(JSON.stringify({ preset: '', size: 44, steps: 1, conv_kernel: 'auto' }));
        const auto = await st.step();
        clearInterval(poll);
        const cache = JSON.parse(localStorage.getItem('stylize.conv-tuning') || 'null');
        const totals = {};
        for (const name of st.constructor.convKernels().slice(1)) {
          st.reset();
          st.configure(JSON.stringify({ conv_kernel: name }));
          totals[name] = (await st.step()).total;
        }
        let bad = null;
        try { st.configure(JSON.stringify({ conv_kernel: 'fastest', steps: 7 })); } catch (e) { bad = e.message; }
        const after = { kernel: st.convKernel(), steps: st.settings().steps, inSettings: 'conv_kernel' in st.settings() };
        st.configure(JSON.stringify({ conv_kernel: 'auto' }));
        return { auto: auto.total, seen, cache, totals, bad, after, idle: st.tuning(), names: st.constructor.convKernels() };
      });
      check(JSON.stringify(r.names) === JSON.stringify(['auto', 'register-4x8', 'workgroup-64x64']), `convKernels(): ${r.names}`);
      check(r.seen.some((t) => /^tuning for this GPU… \d+ of \d+ layer shapes$/.test(t)), `st.tuning() never showed the tuning: ${r.seen}`);
      check(r.idle === null, `st.tuning() after the run: ${JSON.stringify(r.idle)}`);
      const mine = r.cache && r.cache.devices && r.cache.devices[0];
      check(mine && /kernels [0-9a-f]{16}/.test(mine.fingerprint) && mine.timings.length >= 2 * 18,
        `localStorage cache: ${JSON.stringify(r.cache).slice(0, 300)}`);
      check(new Set(mine.timings.map((t) => t.variant)).size === 2, 'not every variant was timed');
      for (const [name, total] of Object.entries(r.totals)) {
        const rel = Math.abs(total - r.auto) / r.auto;
        check(rel < 1e-5, `${name}: objective ${total} against auto's ${r.auto} (${rel.toExponential(2)})`);
      }
      check(/conv_kernel: unknown conv kernel 'fastest'; valid: auto, register-4x8, workgroup-64x64/.test(r.bad || ''), `bad name: ${r.bad}`);
      check(r.after.kernel === 'workgroup-64x64' && r.after.steps === '1' && !r.after.inSettings, `a refused configure changed something: ${JSON.stringify(r.after)}`);
      await p.close();
      // Remembered: a new page (same browser profile) runs the same shapes without timing them again.
      const again = await openPage(gpu.context, url, log);
      const second = await evaluate(again, async () => {
        const st = window.stylizeApp.st;
        const image = (w, h) => new Uint8Array(w * h * 4).map((_, i) => (i * 37) % 251);
        st.setContent(image(44, 36), 44, 36);
        st.setStyle(image(40, 40), 40, 40);
        st.configure(JSON.stringify({ preset: '', size: 44, steps: 1 }));
        const seen = [];
        const poll = setInterval(() => { const t = st.tuning(); if (t) seen.push(t.text); }, 5);
        const before = localStorage.getItem('stylize.conv-tuning');
        await st.step();
        clearInterval(poll);
        return { seen, unchanged: localStorage.getItem('stylize.conv-tuning') === before };
      });
      check(second.seen.length === 0 && second.unchanged, `the second page timed again: ${JSON.stringify(second)}`);
      await again.close();
    });

    await test('precision: f16 where the GPU has shader-f16 (objective within 1% of f32), else a clear refusal that changes nothing', async () => {
      const p = await openPage(gpu.context, url, log);
      const r = await evaluate(p, async () => {
        const st = window.stylizeApp.st;
        const image = window.__wavyImage;
        st.setContent(image(44, 36, 0), 44, 36);
        st.setStyle(image(40, 40, 1.3), 40, 40);
        st.reset();
        st.configure(JSON.stringify({ preset: '', size: 44, steps: 1, precision: 'f32' }));
        const f32 = (await st.step()).total;
        const offered = st.precisions();
        let refused = null, f16 = null;
        try {
          st.reset();
          st.configure(JSON.stringify({ precision: 'f16', steps: 2 }));
          f16 = (await st.step()).total;
        } catch (e) { refused = e.message; }
        const after = { precision: st.precision(), steps: st.settings().steps, inSettings: 'precision' in st.settings() };
        let planned = null;
        try { planned = st.plan(JSON.stringify({ settings: { precision: 'f16', size: 64 } })).total_bytes; } catch (e) { planned = e.message; }
        let bad = null;
        try { st.configure(JSON.stringify({ precision: 'f64' })); } catch (e) { bad = e.message; }
        // the engine still runs in f32 afterwards
        st.configure(JSON.stringify({ precision: 'f32', steps: 1 }));
        st.reset();
        const again = (await st.step()).total;
        return { f32, offered, refused, f16, after, bad, again, planned };
      });
      check(r.offered[0] === 'f32' && r.offered.every((n) => ['f32', 'f16'].includes(n)), `precisions(): ${r.offered}`);
      if (r.offered.includes('f16')) {
        const rel = Math.abs(r.f16 - r.f32) / r.f32;
        check(r.refused === null && rel < 0.01 && rel > 0, `f16 objective ${r.f16} against f32 ${r.f32} (refused: ${r.refused})`);
        check(r.after.precision === 'f16' && r.after.steps === '2', `after f16: ${JSON.stringify(r.after)}`);
        check(typeof r.planned === 'number' && r.planned > 0, `st.plan() with f16: ${r.planned}`);
      } else {
        // SwiftShader offers no shader-f16 (shared/notes/browser.md)
        check(/^precision: precision f16 needs the GPU feature shader-f16, which .* does not offer; use precision f32$/.test(r.refused || ''), `refusal: ${r.refused}`);
        check(r.after.precision === 'f32' && r.after.steps === '1', `a refused configure changed something: ${JSON.stringify(r.after)}`);
        check(/shader-f16/.test(String(r.planned)), `st.plan() with f16 on this GPU: ${r.planned}`);
      }
      check(!r.after.inSettings, 'precision is an engine option, not a setting of the picture');
      check(/^precision: unknown precision 'f64'; valid: f32, f16$/.test(r.bad || ''), `bad name: ${r.bad}`);
      check(Math.abs(r.again - r.f32) / r.f32 < 1e-6, `f32 after the f16 attempt: ${r.again} against ${r.f32}`);
      await p.close();
    });

    await test('"Benchmark this GPU" shows every variant per layer shape and the whole step, and copies them as text', async () => {
      const p = await openPage(gpu.context, url, log);
      await p.click('#btn-bench-open');
      check(await p.locator('#gpu-bench').isVisible(), 'the benchmark view did not open');
      await p.selectOption('#bench-sizes', '64');
      await p.click('#btn-bench-run');
      check(await p.locator('#btn-bench-run').isDisabled(), 'Run stays enabled while the benchmark runs');
      const reason = await p.locator('#start-reason').textContent();
      check(await p.locator('#btn-start').isDisabled() && /benchmark/.test(reason), `Start during the benchmark: "${reason}"`);
      await p.waitForFunction(() => /^Done in/.test(document.getElementById('bench-status').textContent) ||
        document.querySelector('.msg.error'), null, { timeout: 300000 });
      const errors = await messagesOf(p, 'error');
      check(errors.length === 0, `errors: ${errors.join(' | ')}`);
      const view = await evaluate(p, () => {
        const rows = (id) => [...document.querySelectorAll(`#${id} tr`)].map((tr) => [...tr.children].map((c) => c.textContent));
        return { steps: rows('bench-steps'), layers: rows('bench-layers'), text: document.getElementById('bench-text').value,
          runEnabled: !document.getElementById('btn-bench-run').disabled };
      });
      check(view.steps.length === 2 && view.steps[1][0] === '64 px' && /^[0-9.]+ ms$/.test(view.steps[1][1]), `whole-step table: ${JSON.stringify(view.steps)}`);
      check(JSON.stringify(view.layers[0]) === JSON.stringify(['op', 'map', 'channels', 'register-4x8', 'workgroup-64x64', 'chosen']),
        `layer table header: ${view.layers[0]}`);
      check(view.layers.length >= 1 + 18, `${view.layers.length - 1} layer shapes`);
      for (const row of view.layers.slice(1)) {
        check(/^(forward|backward)$/.test(row[0]) && /ms · [0-9.]+ GFLOP\/s/.test(row[3]) && /ms · [0-9.]+ GFLOP\/s/.test(row[4]) &&
          ['register-4x8', 'workgroup-64x64'].includes(row[5]), `layer row: ${row}`);
      }
      check(view.text.includes('| op | map | channels | register-4x8 | workgroup-64x64 | chosen |') && /\| 64 \| [0-9.]+ \|/.test(view.text),
        `text: ${view.text.slice(0, 400)}`);
      check(view.runEnabled, 'Run stays disabled after the benchmark');
      await p.click('#btn-bench-copy');
      await p.waitForFunction(() => /Copied|selected below/.test(document.getElementById('bench-status').textContent), null, { timeout: 5000 });
      await shot(p, '20-benchmark');
      await p.close();
    });

    await test('"keep the photo\'s colours (lightness transfer)" runs grey and ends in the photo\'s colours', async () => {
      const p = await openPage(gpu.context, `${url}#size=32&steps=3&colour=luminance`, log);
      check(await p.locator('#set-colour').inputValue() === 'luminance', 'the colour mode did not reach the form');
      await p.setInputFiles('#style-file', STYLE);
      await p.waitForFunction(() => window.stylizeApp.styles.length === 1 && window.stylizeApp.content, null, { timeout: 10000 });
      await p.setInputFiles('#content-file', CONTENT);
      await p.waitForFunction(() => window.stylizeApp.content.name === 'chelsea.png', null, { timeout: 10000 });
      await evaluate(p, () => {
        window.__grey = [];
        // The largest channel spread of the image after each step: 0 while it is optimised as grey.
        const spread = (rgba) => {
          let worst = 0;
          for (let i = 0; i < rgba.length; i += 4) {
            worst = Math.max(worst, Math.abs(rgba[i] - rgba[i + 1]), Math.abs(rgba[i + 1] - rgba[i + 2]));
          }
          return worst;
        };
        window.__spread = spread;
        window.stylizeApp.afterStep = async () => { window.__grey.push(spread(await window.stylizeApp.st.image())); };
      });
      await p.click('#btn-start');
      await waitRunState(p, ['done', 'stopped', 'idle'], 120000);
      const r = await evaluate(p, async () => ({ grey: window.__grey, done: window.stylizeApp.run.done,
        last: window.__spread(await window.stylizeApp.st.image()) }));
      check(r.done === 3, `steps: ${JSON.stringify(r)}`);
      check(r.grey.length >= 2 && r.grey.slice(0, -1).every((v) => v === 0), `the image was not grey during the run: ${r.grey}`);
      check(r.last > 20, `the photo's colours did not come back at the end (channel spread ${r.last})`);
      check((await messagesOf(p, 'error')).length === 0, `errors: ${(await messagesOf(p, 'error')).join(' | ')}`);
      await p.close();
    });
    await test('the style-strength slider sets the style weight by keyboard, and follows the fields and links', async () => {
      const p = await openPage(gpu.context, `${url}#style_weight=1000`, log);
      // Default α = 5, β = 100: β = 1000 is ten times the default ratio, one decade up.
      check(await p.locator('#style-strength').inputValue() === '1', `slider at ${await p.locator('#style-strength').inputValue()}`);
      check(await p.locator('#style-strength-value').textContent() === '×10', 'label');
      await p.focus('#style-strength');
      for (let i = 0; i < 40; i += 1) await p.keyboard.press('ArrowLeft');
      check(await p.locator('#style-strength').inputValue() === '-1', `slider at ${await p.locator('#style-strength').inputValue()}`);
      check(await p.locator('#set-style_weight').inputValue() === '10', `style weight ${await p.locator('#set-style_weight').inputValue()}`);
      check(await p.locator('#style-strength-value').textContent() === '×0.1', 'label after the keys');
      await p.click('#btn-link');
      await p.waitForFunction(() => document.querySelector('.msg[data-key="link"]'), null, { timeout: 10000 });
      check((await p.locator('#share-link').inputValue()).includes('style_weight=10'), 'the link does not carry the weight');
      await setControls(p, { 'set-style_weight': '50' });
      check(await p.locator('#style-strength-value').textContent() === '×0.5', 'the slider did not follow the field');
      await setControls(p, { 'set-content_weight': '0' });
      check(await p.locator('#style-strength').isDisabled(), 'the slider works with a content weight of 0');
      check((await messagesOf(p, 'error')).length === 0, `errors: ${(await messagesOf(p, 'error')).join(' | ')}`);
      await p.close();
    });

  } finally {
    if (log.length && results.some((r) => !r.ok)) console.log(`browser console errors:\n  ${log.join('\n  ')}`);
    await gpu.close();
  }

  await test('a browser without WebGPU gets the explanation', async () => {
    const plain = await launch(false);
    try {
      const noGpuLog = [];
      const p = await openPage(plain.context, url, noGpuLog);
      check(await p.locator('#no-webgpu').isVisible(), 'the explanation is hidden');
      const text = await p.locator('#no-webgpu').textContent();
      check(/Chrome or Edge 113/.test(text) && /enable-unsafe-webgpu/.test(text), 'the explanation names no browsers or flags');
      const reason = await p.locator('#no-webgpu-reason').textContent();
      check(reason.length > 10, `no reason given: "${reason}"`);
      check(await p.locator('#btn-start').isDisabled(), 'Start is enabled without WebGPU');
      check(await p.locator('#set-size').inputValue() === '512', 'the settings form is empty without WebGPU');
      await shot(p, '09-no-webgpu');
    } finally {
      await plain.close();
    }
  });

  await site.close();
  await corsSite.close();
  console.log(`screenshots in ${path.relative(process.cwd(), RESULTS) || RESULTS}/`);
  finish();
}

/** An APP1 (EXIF) JPEG segment holding only the orientation tag. */
function exifOrientationSegment(orientation) {
  const tiff = Buffer.alloc(26);
  tiff.write('MM', 0, 'ascii');
  tiff.writeUInt16BE(42, 2);
  tiff.writeUInt32BE(8, 4); // IFD0 right after the header
  tiff.writeUInt16BE(1, 8); // one entry
  tiff.writeUInt16BE(0x0112, 10); // Orientation
  tiff.writeUInt16BE(3, 12); // SHORT
  tiff.writeUInt32BE(1, 14); // count
  tiff.writeUInt16BE(orientation, 18);
  tiff.writeUInt32BE(0, 22); // no next IFD
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'binary'), tiff]);
  const head = Buffer.from([0xff, 0xe1, 0, 0]);
  head.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([head, body]);
}

main().catch((e) => {
  console.log(`FAIL the test run crashed: ${(e && e.stack) || e}`);
  console.log(`${results.filter((r) => r.ok).length} passed, ${results.filter((r) => !r.ok).length + 1} failed`);
  process.exit(1);
});
