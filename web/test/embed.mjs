// The embedding story (README, "Embedding"), in headless Chromium: the home
// page of an application of the user's own (crates/scram-dh-net/examples/
// axum_app.rs, served by crates/scram-dh-net/tests/embed_page.rs) imports
// /v1/ui/scram-dh.js, registers, logs in, and reads and adds notes through the
// signed fetch; an unsigned fetch of the same API is refused, and no request
// carries the password.
//
//   SCRAM_DH_APP_URL=http://127.0.0.1:PORT node web/test/embed.mjs

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchChromium } from './server.mjs';

const url = process.env.SCRAM_DH_APP_URL;
if (!url) {
  console.error('embed test: set SCRAM_DH_APP_URL');
  process.exit(1);
}
const profile = mkdtempSync(join(tmpdir(), 'scram-dh-embed-'));
const context = await launchChromium(profile);
let failed = 0;
const check = (cond, name, why = '') => {
  console.log(`${cond ? 'ok' : 'not ok'} - ${name}${cond ? '' : `\n  # ${why}`}`);
  if (!cond) failed += 1;
};

try {
  const page = await context.newPage();
  const sent = [];
  page.on('request', (r) => sent.push(`${r.url()} ${JSON.stringify(r.headers())} ${r.postDataBuffer()?.toString('latin1') ?? ''}`));
  const status = async (selector) => {
    await page.evaluate(() => (document.getElementById('status').textContent = 'busy'));
    await page.click(selector);
    await page.waitForFunction(() => document.getElementById('status').textContent !== 'busy', null, { timeout: 30_000 });
    return page.textContent('#status');
  };
  await page.goto(`${url}/`);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'ready: ok', null, { timeout: 30_000 });
  check(true, "the app's own page loads and imports the module");
  const password = `canary-embed-${randomBytes(6).toString('hex')}`;
  await page.fill('#username', 'embed-erin');
  await page.fill('#password', password);
  check((await status('#register')) === 'register: ok', 'register from the app page');
  check((await status('#login')) === 'login: ok', 'log in from the app page');
  await page.fill('#note', 'buy milk');
  const added = await status('#add');
  const notes = await page.textContent('#notes');
  check(added === 'add: ok' && notes === 'embed-erin: buy milk', "a signed POST to the app's own API, and a signed GET of it", `${added} / ${notes}`);
  const unsigned = await page.evaluate(async () => (await fetch('/notes', { method: 'POST', body: 'forged' })).status);
  check(unsigned === 401, 'an unsigned request to the same API is refused (401)', String(unsigned));
  const again = await page.evaluate(async () => (await fetch('/notes')).status);
  check(again === 401, 'the notes are not readable unsigned either', String(again));
  const raw = Buffer.from(password).toString('base64').slice(0, 12);
  check(sent.length >= 6 && sent.every((s) => !s.includes(password) && !s.includes(raw)), `no request carries the password (${sent.length} requests)`);
} catch (e) {
  check(false, 'the run', e instanceof Error ? e.stack : String(e));
} finally {
  await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
console.log(failed === 0 ? '# all passed' : `# ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
