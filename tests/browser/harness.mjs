// What the browser tests share: the paths, launching headless Chromium (with or without WebGPU), opening
// the page and waiting for its start-up, reading its messages, screenshots, and setting controls.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const WWW = path.join(ROOT, 'www');
export const IMAGES = path.resolve(ROOT, '../shared/images');
export const RESULTS = path.join(ROOT, 'test-results');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const CONTENT = path.join(IMAGES, 'content/chelsea.png'); // 451x300
export const STYLE = path.join(IMAGES, 'style/starry_night.jpg');

// See shared/notes/browser.md: the flags with which WebGPU (SwiftShader) and a visible canvas work headless.
const BASE_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic', '--headless=new'];
const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--use-angle=swiftshader', '--use-webgpu-adapter=opengles'];

/** page.evaluate with a timeout: a hung WebGPU call must not hang the whole run. */
export async function evaluate(page, fn, arg, ms = 60000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`page.evaluate timed out after ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([page.evaluate(fn, arg), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh browser profile; `options` go to Playwright's context (a phone's viewport, say). */
export async function launch(webgpu, options = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stylize-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: webgpu ? [...BASE_ARGS, ...WEBGPU_ARGS] : BASE_ARGS,
    viewport: { width: 1400, height: 1000 },
    acceptDownloads: true,
    ...options,
  });
  return { context, close: async () => { await context.close(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

/** Opens the page and waits for its start-up (WebGPU check, weights) to finish. */
export async function openPage(context, url, log) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') log.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 120000 });
  return page;
}

/** The texts of the page's messages (at the top and beside Start), of one kind or all. */
export const messagesOf = (page, kind) => evaluate(page, (k) => [...document.querySelectorAll(`.msg${k ? `.${k}` : ''}`)]
  .map((m) => m.firstChild.textContent), kind);

export async function shot(page, name) {
  await page.screenshot({ path: path.join(RESULTS, `${name}.png`), fullPage: true });
}

export async function waitRunState(page, states, ms) {
  await page.waitForFunction((s) => s.includes(document.body.dataset.runState), states, { timeout: ms });
}

/** Sets text controls of the settings form (and lets the page see the input events), opening
 *  "Advanced" first as a user would. */
export async function setControls(page, values) {
  if (!(await page.locator('#advanced').evaluate((d) => d.open))) await page.click('#advanced > summary');
  for (const [id, value] of Object.entries(values)) {
    const el = page.locator(`#${id}`);
    if ((await el.evaluate((e) => e.tagName)) === 'SELECT') await el.selectOption(value);
    else await el.fill(value);
  }
}

