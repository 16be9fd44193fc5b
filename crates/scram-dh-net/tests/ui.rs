//! The browser page (issue 11) as a browser fetches it from a real HTTP front on
//! loopback: every route's status and type, the security headers on every
//! answer, the host key fingerprint substituted into the page, each file
//! byte-identical to the one under `web/` read from disk now, ETag and 304, `/`
//! with and without an upstream, and `HttpOptions::ui = false`. Plus the
//! bundle's header against its sources (`bundle_header_matches_sources`), so a
//! source changed without a rebuild of `web/dist/scram-dh.js` fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
use support::{Reply, send};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use scram_dh::{
    ClientConfig, Fingerprint, Group, HostKey, Labels, MemoryCredentialStore, MemorySessionStore, Password,
    ServerConfig, ServerEngine,
};
use scram_dh_net::http::{HttpFront, HttpOptions};
use scram_dh_net::http_client::HttpClient;
use scram_dh_net::{Admission, HostKeyPolicy, KvLimits, Limits, RegisterOptions};
use tokio::sync::oneshot;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Running {
    http: String,
    fingerprint: Fingerprint,
    _stop: oneshot::Sender<()>,
}

async fn start(options: HttpOptions) -> Running {
    let host_key = HostKey::from_seed(&[11; 32]);
    let store = Arc::new(MemoryCredentialStore::default());
    let engine = Arc::new(
        ServerEngine::new(ServerConfig::new(host_key, [6; 32]), store, MemorySessionStore::new(1000, 100))
            .unwrap(),
    );
    // The engine's own fingerprint, not one recomputed from the seed.
    let fingerprint = engine.config().host_key.fingerprint();
    let admission = Admission::new(Limits::default());
    let front = HttpFront::new(engine, admission, KvLimits::default().passwd_bounds(), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(front.run(listener, async {
        let _ = rx.await;
    }));
    Running { http, fingerprint, _stop: tx }
}

/// An upstream answering `upstream <path> user=<x-scram-dh-user>`.
async fn upstream() -> String {
    let app =
        axum::Router::new().fallback(|headers: axum::http::HeaderMap, uri: axum::http::Uri| async move {
            let user = headers.get("x-scram-dh-user").map(|v| v.to_str().unwrap().to_owned());
            format!("upstream {uri} user={user:?}")
        });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn web(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web").join(rel)
}

fn read_web(rel: &str) -> Vec<u8> {
    std::fs::read(web(rel)).unwrap_or_else(|e| panic!("reading web/{rel}: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn header<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or_else(|| panic!("no {name} header"))
}

/// The headers every UI answer carries.
fn assert_secure(r: &Reply, what: &str) {
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-cache"),
    ] {
        assert_eq!(r.headers.get(name).and_then(|v| v.to_str().ok()), Some(value), "{what}: {name}");
    }
}

/// A 200 with `content_type`, the security headers, and a strong ETag that is
/// the quoted hex SHA-256 of the body.
fn assert_file(r: &Reply, content_type: &str, what: &str) {
    assert_eq!(r.status, 200, "{what}");
    assert_eq!(header(r, "content-type"), content_type, "{what}");
    assert_secure(r, what);
    assert_eq!(header(r, "etag"), format!("\"{}\"", hex(&scram_dh::crypto::sha256(&r.body))), "{what}");
}

async fn get(srv: &Running, path: &str) -> Reply {
    send(client().get(format!("{}{path}", srv.http))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_files_with_types_and_security_headers() {
    let srv = start(HttpOptions::default()).await;
    let page = get(&srv, "/v1/ui/").await;
    assert_file(&page, "text/html; charset=utf-8", "index");
    let html = String::from_utf8(page.body.clone()).unwrap();
    let fp = srv.fingerprint.to_string();
    assert!(fp.starts_with("SHA256:") && fp.len() == 7 + 43, "{fp}");
    assert_eq!(html.matches(&fp).count(), 1, "the fingerprint, once");
    assert!(!html.contains("{{"), "a placeholder is left");
    let on_disk = String::from_utf8(read_web("ui/index.html")).unwrap();
    assert_eq!(on_disk.matches("{{HOST_KEY_FINGERPRINT}}").count(), 1);
    assert_eq!(html, on_disk.replace("{{HOST_KEY_FINGERPRINT}}", &fp));

    for (path, file, ty) in [
        ("/v1/ui/app.js", "ui/app.js", "text/javascript; charset=utf-8"),
        ("/v1/ui/style.css", "ui/style.css", "text/css; charset=utf-8"),
        ("/v1/ui/scram-dh.js", "dist/scram-dh.js", "text/javascript; charset=utf-8"),
    ] {
        let r = get(&srv, path).await;
        assert_file(&r, ty, path);
        assert!(r.body == read_web(file), "{path} is not byte-identical to web/{file}");
    }

    // HEAD: the same headers, no body.
    let r = send(client().head(format!("{}/v1/ui/scram-dh.js", srv.http))).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_secure(&r, "HEAD");
    assert_eq!(header(&r, "content-type"), "text/javascript; charset=utf-8");
    assert_eq!(
        header(&r, "etag"),
        format!("\"{}\"", hex(&scram_dh::crypto::sha256(&read_web("dist/scram-dh.js"))))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_unknown_files_and_other_methods() {
    let srv = start(HttpOptions::default()).await;
    let r = get(&srv, "/v1/ui").await;
    assert_eq!(r.status, 308);
    assert_eq!(header(&r, "location"), "/v1/ui/");
    assert_secure(&r, "redirect");
    for path in ["/v1/ui/nope.js", "/v1/ui/app.js/x", "/v1/ui/a/b/c", "/v1/ui/index.html"] {
        let r = get(&srv, path).await;
        assert_eq!((r.status, r.code().as_str()), (404, "unsupported"), "{path}");
        assert_eq!(r.json()["type"], "error", "{path}");
        assert!(r.json()["message"].is_string(), "{path}");
        assert_secure(&r, path);
    }
    let r = send(client().post(format!("{}/v1/ui/", srv.http)).body("x")).await;
    assert_eq!(r.status, 405);
    assert_secure(&r, "POST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etag_and_if_none_match() {
    let srv = start(HttpOptions::default()).await;
    for path in ["/v1/ui/", "/v1/ui/app.js", "/v1/ui/style.css", "/v1/ui/scram-dh.js"] {
        let first = get(&srv, path).await;
        let etag = header(&first, "etag").to_owned();
        assert_eq!(get(&srv, path).await.headers.get("etag").unwrap(), etag.as_str(), "stable");
        for matching in [etag.clone(), format!("W/{etag}"), format!("\"other\", {etag}"), "*".to_owned()] {
            let r =
                send(client().get(format!("{}{path}", srv.http)).header("if-none-match", &matching)).await;
            assert_eq!(r.status, 304, "{path} {matching}");
            assert!(r.body.is_empty());
            assert_eq!(header(&r, "etag"), etag);
            assert_secure(&r, "304");
        }
        let r = send(client().get(format!("{}{path}", srv.http)).header("if-none-match", "\"other\"")).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body, first.body);
    }
    let tags: Vec<String> = {
        let mut t = Vec::new();
        for p in ["/v1/ui/", "/v1/ui/app.js", "/v1/ui/style.css", "/v1/ui/scram-dh.js"] {
            t.push(header(&get(&srv, p).await, "etag").to_owned());
        }
        t
    };
    let mut unique = tags.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), tags.len(), "one tag per file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_is_the_page_without_an_upstream() {
    let srv = start(HttpOptions { ui_at_root: true, ..HttpOptions::default() }).await;
    let page = get(&srv, "/v1/ui/").await;
    let root = get(&srv, "/").await;
    assert_file(&root, "text/html; charset=utf-8", "/");
    assert_eq!(root.body, page.body);
    assert_eq!(header(&root, "etag"), header(&page, "etag"));
}

/// By default the router leaves `/` alone: an application with its own `/`
/// merges it (axum panics on overlapping routes) and keeps answering there,
/// and the page is still at /v1/ui/.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_keeps_its_root() {
    let engine = Arc::new(
        ServerEngine::new(
            ServerConfig::new(HostKey::from_seed(&[12; 32]), [6; 32]),
            Arc::new(MemoryCredentialStore::default()),
            MemorySessionStore::new(1000, 100),
        )
        .unwrap(),
    );
    let front = HttpFront::new(
        engine,
        Admission::new(Limits::default()),
        KvLimits::default().passwd_bounds(),
        HttpOptions::default(),
    );
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "the app's own home" }))
        .merge(front.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
    });
    let srv = Running {
        http,
        fingerprint: HostKey::from_seed(&[12; 32]).fingerprint(),
        _stop: oneshot::channel().0,
    };
    let root = get(&srv, "/").await;
    assert_eq!((root.status, String::from_utf8_lossy(&root.body).as_ref()), (200, "the app's own home"));
    assert_file(&get(&srv, "/v1/ui/").await, "text/html; charset=utf-8", "the page beside the app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_is_the_upstreams_with_one() {
    let up = upstream().await;
    let srv = start(HttpOptions { upstream: Some(up), ui_at_root: true, ..HttpOptions::default() }).await;
    // Unsigned: the gateway's 401, never the page, never the upstream.
    let r = get(&srv, "/").await;
    assert_eq!((r.status, r.code().as_str()), (401, "authentication_failed"));
    assert!(r.headers.get("content-security-policy").is_none());
    // Signed: forwarded like any other path outside /v1/.
    let http = HttpClient::new(&srv.http, Duration::from_secs(10)).unwrap();
    let options = RegisterOptions {
        group: Group::X25519,
        labels: Labels::Random,
        policy: HostKeyPolicy::Fingerprint(srv.fingerprint),
        config: ClientConfig::default(),
    };
    let cred = http.register("uma", Password::new("ui-test-pw"), &options, |_| Ok(())).await.unwrap();
    let mut session = http.login("uma", cred.secret(), Group::X25519, ClientConfig::default()).await.unwrap();
    let r = session.request("GET", "/", b"").await.unwrap();
    assert_eq!((r.status, String::from_utf8_lossy(&r.body).as_ref()), (200, "upstream / user=Some(\"uma\")"));
    // The page itself stays under /v1/ui/.
    let page = get(&srv, "/v1/ui/").await;
    assert_file(&page, "text/html; charset=utf-8", "index with an upstream");
    assert_eq!((get(&srv, "/v1/ui/x").await.code().as_str()), "unsupported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_off_is_404_unsupported() {
    let srv = start(HttpOptions { ui: false, ui_at_root: true, ..HttpOptions::default() }).await;
    for path in
        ["/v1/ui", "/v1/ui/", "/v1/ui/app.js", "/v1/ui/scram-dh.js", "/v1/ui/style.css", "/v1/ui/x/y", "/"]
    {
        let r = get(&srv, path).await;
        assert_eq!((r.status, r.code().as_str()), (404, "unsupported"), "{path}");
        assert!(!String::from_utf8_lossy(&r.body).contains("SHA256:"), "{path}");
    }
    // The rest of the front is unchanged.
    let r = get(&srv, "/v1/ping").await;
    assert_eq!(r.status, 200);
    // Off with an upstream: `/` is still the upstream's (401 unsigned), the UI paths 404.
    let up = upstream().await;
    let srv =
        start(HttpOptions { ui: false, ui_at_root: true, upstream: Some(up), ..HttpOptions::default() })
            .await;
    assert_eq!(get(&srv, "/").await.status, 401);
    let r = get(&srv, "/v1/ui/").await;
    assert_eq!((r.status, r.code().as_str()), (404, "unsupported"));
}

/// The bundle's header (issue 11 contract): after `// sources (sha256):`, lines
/// `//   <path under web/> <64 lowercase hex>`, ended by a line that is exactly
/// `//`. Each listed file must hash to its line now: a source edited without
/// `npm run build` in web/ fails here.
#[test]
fn bundle_header_matches_sources() {
    let bundle = String::from_utf8(read_web("dist/scram-dh.js")).unwrap();
    let mut lines = bundle.lines();
    assert!(lines.next().is_some_and(|l| l.starts_with("// scram-dh browser client")), "first line");
    assert!(lines.by_ref().take(8).any(|l| l == "// sources (sha256):"), "no `// sources (sha256):` line");
    let mut listed = Vec::new();
    let mut ended = false;
    for line in lines {
        if line == "//" {
            ended = true;
            break;
        }
        let entry = line.strip_prefix("//   ").unwrap_or_else(|| panic!("bad header line {line:?}"));
        let (path, digest) = entry.split_once(' ').unwrap_or_else(|| panic!("bad header line {line:?}"));
        assert!(
            digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{path}: {digest:?} is not 64 lowercase hex"
        );
        assert!(
            !path.is_empty() && !path.starts_with('/') && !path.split('/').any(|c| c == ".." || c.is_empty()),
            "{path:?} is not a path under web/"
        );
        listed.push((path.to_owned(), digest.to_owned()));
    }
    assert!(ended, "the source list does not end with a `//` line");
    for required in ["src/scram-dh.js", "build.mjs", "package-lock.json"] {
        assert!(listed.iter().any(|(p, _)| p == required), "{required} is not listed");
    }
    let mut stale = Vec::new();
    for (path, digest) in &listed {
        let now = hex(&scram_dh::crypto::sha256(&read_web(path)));
        if &now != digest {
            stale.push(format!("web/{path}: header {digest}, file {now}"));
        }
    }
    assert!(
        stale.is_empty(),
        "web/dist/scram-dh.js is stale; run `npm run build` in web/:\n{}",
        stale.join("\n")
    );
}
