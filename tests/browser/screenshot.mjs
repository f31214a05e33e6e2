// Takes the README's screenshot of the page mid-run (not a test):
//
//   ./build.sh && node tests/browser/screenshot.mjs [OUT.png] [STEPS_BEFORE_SHOT]
//
// Content: ../shared/images/content/chelsea.png (CC0). Style: a painting-like pattern generated here,
// so that the picture holds nothing we may not publish. Runs on SwiftShader: a few minutes.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';
import { encodePng } from './png.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const out = path.resolve(process.argv[2] || path.join(ROOT, 'test-results/readme-mid-run.png'));
const shotAt = Number(process.argv[3] || 30);

/** Swirling strokes of saturated colour: enough texture for the style loss to show. */
function swirlPainting(size) {
  const rgba = Buffer.alloc(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = (x / size) * 2 - 1;
      const v = (y / size) * 2 - 1;
      const r = Math.hypot(u, v);
      const angle = Math.atan2(v, u) + 4 * r + 0.6 * Math.sin(9 * u) * Math.cos(7 * v);
      const stroke = 0.5 + 0.5 * Math.sin(18 * angle + 25 * r);
      const band = 0.5 + 0.5 * Math.sin(6 * r * Math.PI);
      const i = (y * size + x) * 4;
      rgba[i] = Math.round(30 + 200 * stroke * band);
      rgba[i + 1] = Math.round(60 + 120 * (1 - band) * stroke);
      rgba[i + 2] = Math.round(110 + 140 * (1 - stroke));
      rgba[i + 3] = 255;
    }
  }
  return encodePng(size, size, rgba);
}

const site = await serve(path.join(ROOT, 'www'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stylize-shot-'));
const context = await chromium.launchPersistentContext(dir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run', '--disable-quic', '--headless=new', '--enable-unsafe-webgpu', '--use-angle=swiftshader',
    '--use-webgpu-adapter=opengles'],
  viewport: { width: 1400, height: 1000 },
});
try {
  const page = await context.newPage();
  await page.goto(`${site.url}/`);
  await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 120000 });
  await page.setInputFiles('#content-file', path.resolve(ROOT, '../shared/images/content/chelsea.png'));
  await page.setInputFiles('#style-file', { name: 'swirls.png', mimeType: 'image/png', buffer: swirlPainting(256) });
  await page.waitForFunction(() => window.stylizeApp.styles.length === 1 && window.stylizeApp.content.name === 'chelsea.png');
  for (const [id, value] of Object.entries({ 'set-size': '72', 'set-steps': '80', 'set-lr': '0.03', 'set-style_weight': '500' })) {
    await page.fill(`#${id}`, value);
  }
  // The shot is taken from inside the run (the loop waits for it after step n): the page as it looks
  // while running. Then the run is stopped.
  await page.exposeFunction('__takeShot', async () => {
    await page.evaluate(() => document.querySelectorAll('#messages .msg').forEach((m) => m.remove()));
    await page.screenshot({ path: out, fullPage: true });
  });
  await page.evaluate((n) => {
    window.stylizeApp.afterStep = async (p) => {
      if (p.step === n) {
        await window.__takeShot();
        document.getElementById('btn-stop').click();
      }
    };
  }, shotAt);
  await page.click('#btn-start');
  await page.waitForFunction(() => ['done', 'stopped', 'idle'].includes(document.body.dataset.runState), null, { timeout: 1800000 });
  console.log(`wrote ${out}`);
} finally {
  await context.close();
  await site.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
