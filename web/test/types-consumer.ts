// A TypeScript user of the module, type-checked against dist/types/ by the
// test suite (crates/scram-dh-cli/tests/browser.rs): the declarations are
// complete enough to write an app with, and wrong uses do not compile.
import { ScramDhClient, ScramDhError, type ScramDhSession } from '../dist/types/scram-dh.js';

export async function signIn(username: string, password: string): Promise<string> {
  const client = new ScramDhClient({ baseUrl: 'http://127.0.0.1:8080', maxIterations: 200_000 });
  const registration = await client.register(username, password, { labels: 'rfc' });
  const fingerprint: string = registration.fingerprint;
  const session: ScramDhSession = await client.login(username, password);
  const response: Response = await session.fetch('/notes', { method: 'POST', body: 'buy milk' });
  const engines = await client.engines();
  const x25519: 'webcrypto' | 'noble' = engines.x25519;
  try {
    await session.logout();
  } catch (e) {
    if (e instanceof ScramDhError) return `${e.code} ${e.status ?? ''} ${e.verified}`;
  }
  // @ts-expect-error labels are 'rfc' or 'random'
  await client.register(username, password, { labels: 'other' });
  // @ts-expect-error a session's fetch takes a path or URL, not a number
  await session.fetch(42);
  return `${fingerprint} ${response.status} ${x25519} ${await session.whoami()}`;
}
