// The page at /v1/ui/: drives the browser client (scram-dh.js) from a form.
// `#status` always ends in `ok` or names the error code, for people and for
// the automation that drives the page (web/test/browser.mjs).

import { ScramDhClient, ScramDhError } from '/v1/ui/scram-dh.js';

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const username = /** @type {HTMLInputElement} */ ($('username'));
const password = /** @type {HTMLInputElement} */ ($('password'));
const status = $('status');
const output = $('output');
const user = $('user');

// `?webcrypto=0` runs every primitive on the @noble fallback.
const webcrypto = new URLSearchParams(location.search).get('webcrypto') !== '0';
const client = new ScramDhClient({ baseUrl: location.origin, webcrypto });

/**
 * The last session. After a logout it is kept, so that #whoami and #request
 * show the server refusing it (`unknown_session`).
 * @type {import('/v1/ui/scram-dh.js').ScramDhSession | null}
 */
let session = null;
let signedIn = false;

const served = document.querySelector('meta[name="scram-dh-host-key"]')?.getAttribute('content') ?? '';
const servedFingerprint = served.startsWith('SHA256:') ? served : null;
$('server-fingerprint').textContent = servedFingerprint ?? 'unknown';

async function showPin() {
  const pinned = await client.pinnedFingerprint();
  const el = $('pinned-fingerprint');
  el.textContent = pinned ?? 'none yet: the first registration pins it';
  el.classList.toggle('warn', pinned !== null && servedFingerprint !== null && pinned !== servedFingerprint);
}

/** @param {string} text @param {'ok' | 'error' | 'busy'} kind */
function say(text, kind) {
  status.textContent = text;
  status.dataset.kind = kind;
}

/** @param {unknown} e */
function describe(e) {
  if (e instanceof ScramDhError) {
    const unverified = e.verified ? '' : ' (unsigned answer)';
    return `error ${e.code}${unverified}: ${e.message.replace(/^[a-z_]+: /, '')}`;
  }
  return `error client_error: ${e instanceof Error ? e.message : String(e)}`;
}

function showSession() {
  user.textContent = session && signedIn ? session.username : 'nobody';
  for (const id of ['whoami', 'request']) {
    /** @type {HTMLButtonElement} */ ($(id)).disabled = session === null;
  }
  /** @type {HTMLButtonElement} */ ($('logout')).disabled = !signedIn;
}

/**
 * Runs one action with the buttons disabled, and reports it in #status.
 * @param {string} name
 * @param {() => Promise<string | void>} action answers extra text for a success
 */
async function run(name, action) {
  const buttons = /** @type {NodeListOf<HTMLButtonElement>} */ (document.querySelectorAll('button'));
  buttons.forEach((b) => (b.disabled = true));
  say(`${name}…`, 'busy');
  const t0 = performance.now();
  try {
    const extra = await action();
    say(`${name}${extra ? ` ${extra}` : ''}: ok`, 'ok');
  } catch (e) {
    say(`${name}: ${describe(e)}`, 'error');
  } finally {
    // How long the action took in the page (its crypto and its requests).
    status.dataset.ms = (performance.now() - t0).toFixed(1);
    buttons.forEach((b) => (b.disabled = false));
    showSession();
  }
}

function credentials() {
  if (!username.value) throw new ScramDhError('invalid_username', 'enter a username');
  if (!password.value) throw new ScramDhError('invalid_password', 'enter a password');
  return [username.value, password.value];
}

/** @param {Response} r */
async function show(r) {
  const text = await r.text();
  output.textContent = `${r.status} ${text}`;
  return text;
}

$('account').addEventListener('submit', (ev) => {
  ev.preventDefault();
  run('login', async () => {
    const [name, pw] = credentials();
    session = await client.login(name, pw);
    signedIn = true;
    password.value = '';
    output.textContent = '';
    return session.username;
  });
});

$('register').addEventListener('click', () =>
  run('register', async () => {
    const [name, pw] = credentials();
    const done = await client.register(name, pw);
    await showPin();
    output.textContent = `registered ${done.username}; host key ${done.fingerprint} pinned`;
    return done.username;
  }),
);

$('rfc7804').addEventListener('click', () =>
  run('rfc7804', async () => {
    const [name, pw] = credentials();
    const r = await client.rfc7804Fetch('/v1/whoami', { username: name, password: pw });
    const text = await show(r);
    return JSON.parse(text).username;
  }),
);

$('whoami').addEventListener('click', () =>
  run('whoami', async () => {
    if (!session) throw new ScramDhError('unknown_session', 'log in first');
    const name = await session.whoami();
    output.textContent = `200 {"username":${JSON.stringify(name)}}`;
    return name;
  }),
);

$('request').addEventListener('click', () =>
  run('request', async () => {
    if (!session) throw new ScramDhError('unknown_session', 'log in first');
    const r = await session.fetch('/v1/ping');
    await show(r);
    if (!r.ok) throw new ScramDhError('http_status', `status ${r.status}`);
  }),
);

$('logout').addEventListener('click', () =>
  run('logout', async () => {
    if (!session || !signedIn) throw new ScramDhError('unknown_session', 'log in first');
    await session.logout();
    signedIn = false;
    output.textContent = `logged out ${session.username}; the server now refuses this session`;
  }),
);

(async () => {
  const engines = await client.engines();
  const names = Object.entries(engines).map(([k, v]) => `${k}: ${v}`);
  $('engines').textContent = names.join(', ');
  $('engines').dataset.fallback = Object.values(engines).includes('noble') ? 'yes' : 'no';
  await showPin();
  showSession();
  say('ready: ok', 'ok');
})().catch((e) => say(`load: ${describe(e)}`, 'error'));
