// An RFC 7804 (HTTP SCRAM-SHA-256) client: npm gel's getHTTPSCRAMAuth (pinned in
// interop/node/package.json), run with the machine's Node.js.
//
//   node interop/node/gel_client.mjs BASE_URL USER [--trace]   (password: one line on stdin)
//
// gel GETs BASE_URL + "/auth/token" twice (client-first, then sid + client-final) and
// checks the server signature in Authentication-Info itself.
// Output: the token (the final response's body), then
// `authenticated as USER (server signature verified)`.
// Exit 0: success; 3: authentication failed (gel's ProtocolError: a refused proof, a bad
// signature, a malformed challenge); 4: connection failure; 2: usage.
// --trace logs each request's Authorization and each response's SCRAM headers to stderr.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { getHTTPSCRAMAuth } = require("gel/dist/httpScram.js");
const { cryptoUtils } = require("gel/dist/nodeCrypto.js");

const args = process.argv.slice(2);
const trace = args.includes("--trace");
const [base, user] = args.filter((a) => a !== "--trace");
if (!base || !user) {
  console.error("usage: gel_client.mjs BASE_URL USER [--trace]  (password on stdin)");
  process.exit(2);
}
const password = readFileSync(0, "utf8").split("\n")[0].replace(/\r$/, "");

if (trace) {
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (url, init) => {
    const auth = init?.headers?.Authorization;
    console.error(`> GET ${url} Authorization: ${JSON.stringify(auth)}`);
    const res = await realFetch(url, init);
    console.error(
      `< ${res.status} WWW-Authenticate: ${JSON.stringify(res.headers.get("WWW-Authenticate"))} ` +
        `Authentication-Info: ${JSON.stringify(res.headers.get("Authentication-Info"))}`,
    );
    return res;
  };
}

try {
  const token = await getHTTPSCRAMAuth(cryptoUtils)(base, user, password);
  console.log(token);
  console.log(`authenticated as ${user} (server signature verified)`);
  process.exit(0);
} catch (e) {
  // fetch reports a refused or reset connection as a TypeError ("fetch failed")
  if (e instanceof TypeError) {
    console.error(`connection failure: ${e.message}: ${e.cause?.message ?? ""}`);
    process.exit(4);
  }
  console.error(`authentication failed: ${e?.name}: ${e?.message}`);
  process.exit(3);
}
