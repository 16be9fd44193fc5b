// What the web tests start: `scram-dh serve` (SQLite in a directory, TCP and
// HTTP on free loopback ports) and headless Chromium with the flags.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

/** Debian's Chromium, unless SCRAM_DH_CHROMIUM names another. */
export const CHROMIUM = process.env.SCRAM_DH_CHROMIUM ?? '/usr/bin/chromium';

// The flags the issue gives (the user-data-dir is playwright's parameter).
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Headless Chromium on a fresh profile in `profileDir`.
 * @param {string} profileDir
 * @param {object} [options] more playwright context options (viewport, …)
 */
export function launchChromium(profileDir, options = {}) {
  return chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, headless: true, args: FLAGS, ...options });
}

/**
 * @param {string} bin the scram-dh binary
 * @param {string} dir a directory for the database and host key
 * @param {string[]} [extra] more `serve` flags
 * @returns {Promise<{ child: import('node:child_process').ChildProcess, url: string, fingerprint: string, logs: string[] }>}
 */
export async function startServer(bin, dir, extra = []) {
  const child = spawn(bin, ['serve', '--db', join(dir, 'users.db'), '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: 'info' },
  });
  /** @type {string[]} */
  const logs = [];
  createInterface({ input: child.stderr }).on('line', (l) => logs.push(l));
  const line = await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`serve announced nothing in 20 s:\n${logs.join('\n')}`)), 20_000);
    createInterface({ input: child.stdout }).on('line', (l) => {
      if (l.startsWith('listening on ')) {
        clearTimeout(t);
        res(l);
      }
    });
    child.on('exit', (code) => rej(new Error(`serve exited with ${code}:\n${logs.join('\n')}`)));
  });
  const http = / http (\S+)/.exec(line);
  const fp = / host key (\S+)/.exec(line);
  if (!http || !fp) throw new Error(`no http address in ${JSON.stringify(line)}`);
  return { child, url: `http://${http[1]}`, fingerprint: fp[1], logs };
}
