//! The browser page (issue 11): a static page under `/v1/ui/` that registers,
//! logs in and signs requests with the bundled JavaScript client, so the
//! password never leaves the browser.
//!
//! Four files are compiled into the binary (`include_str!`, paths from the
//! repository root): `web/ui/index.html`, `web/ui/app.js`, `web/ui/style.css` and
//! the bundle `web/dist/scram-dh.js`. The page's one `{{HOST_KEY_FINGERPRINT}}`
//! becomes the engine's host key fingerprint (`SHA256:<unpadded base64>`, no
//! character that needs HTML escaping) once, when the router is built. The page
//! shows it beside the fingerprint the browser pinned; it never pins it, since
//! whoever can change the page can change that too (README, protocol note 32).
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/ui` | 308 to `/v1/ui/` |
//! | `GET /v1/ui/` | `index.html`, `text/html; charset=utf-8` |
//! | `GET /v1/ui/app.js`, `/v1/ui/scram-dh.js` | `text/javascript; charset=utf-8` |
//! | `GET /v1/ui/style.css` | `text/css; charset=utf-8` |
//! | `GET /v1/ui/<anything else>` | 404 `unsupported` |
//! | `GET /` | the page, with [`HttpOptions::ui_at_root`](super::HttpOptions::ui_at_root) and no upstream (with one, `/` is the upstream's; without the option, the application's) |
//!
//! `HEAD` answers as `GET` without the body. Every answer carries a strict
//! Content-Security-Policy (scripts, styles and `fetch` from this origin only,
//! no framing, no `<base>`, no form posts), `nosniff`, `no-referrer`,
//! `X-Frame-Options: DENY` and `Cache-Control: no-cache`; each file has a strong
//! `ETag` (the SHA-256 of its body, hex), and `If-None-Match` with it answers
//! 304. With [`HttpOptions::ui`](super::HttpOptions::ui) off every one of these
//! routes is 404 `unsupported`.

use std::fmt::Write as _;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use scram_dh::{ErrorCode, Fingerprint};

use super::error_response;

/// Where the page lives (and where `GET /v1/ui` redirects).
pub const UI_PATH: &str = "/v1/ui/";

/// The placeholder of `index.html` that becomes the host key fingerprint.
pub const FINGERPRINT_PLACEHOLDER: &str = "{{HOST_KEY_FINGERPRINT}}";

/// The Content-Security-Policy of every UI answer: nothing but this origin's
/// scripts, styles and `fetch`es (and `data:` images); no `<base>`, no form
/// posts, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/ui/index.html"));
const APP_JS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/ui/app.js"));
const STYLE_CSS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/ui/style.css"));
const BUNDLE_JS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/dist/scram-dh.js"));

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// `index.html` with the placeholder replaced by `fingerprint`.
#[must_use]
pub fn render_index(fingerprint: &Fingerprint) -> String {
    INDEX_HTML.replace(FINGERPRINT_PLACEHOLDER, &fingerprint.to_string())
}

/// One file as served: its body, type and strong entity tag.
#[derive(Clone)]
struct Asset {
    body: Bytes,
    content_type: HeaderValue,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: impl Into<Bytes>, content_type: &'static str) -> Self {
        let body = body.into();
        let mut tag = String::with_capacity(66);
        tag.push('"');
        for b in scram_dh::crypto::sha256(&body) {
            let _ = write!(tag, "{b:02x}");
        }
        tag.push('"');
        // Quotes and hex digits only: always a valid header value.
        let etag = HeaderValue::try_from(tag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
        Self { body, content_type: HeaderValue::from_static(content_type), etag }
    }

    /// 200 with the body, or 304 when `If-None-Match` names this version.
    fn respond(&self, request: &HeaderMap) -> Response {
        if none_match(request, &self.etag) {
            return (StatusCode::NOT_MODIFIED, [(header::ETAG, self.etag.clone())]).into_response();
        }
        (
            [(header::CONTENT_TYPE, self.content_type.clone()), (header::ETAG, self.etag.clone())],
            Body::from(self.body.clone()),
        )
            .into_response()
    }
}

/// Whether `If-None-Match` holds `*` or `etag` (RFC 9110 section 13.1.2: the
/// weak comparison, so a `W/` prefix still matches).
fn none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(etag) = etag.to_str() else { return false };
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// The headers every UI answer carries.
async fn secure(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn serve(asset: Asset) -> axum::routing::MethodRouter {
    get(move |headers: HeaderMap| {
        let asset = asset.clone();
        async move { asset.respond(&headers) }
    })
}

async fn unknown() -> Response {
    error_response(StatusCode::NOT_FOUND, ErrorCode::Unsupported, "no such file of the browser page")
}

async fn off() -> Response {
    error_response(StatusCode::NOT_FOUND, ErrorCode::Unsupported, "the browser page is not served here")
}

/// The UI routes (module docs). `on`: [`HttpOptions::ui`](super::HttpOptions::ui);
/// `root`: whether `/` is the page's too (no upstream claims it). The page is
/// rendered here, once.
pub(super) fn routes(fingerprint: &Fingerprint, on: bool, root: bool) -> Router {
    let router = if on {
        let index = Asset::new(render_index(fingerprint), HTML);
        let router = Router::new()
            .route("/v1/ui", get(|| async { Redirect::permanent(UI_PATH) }))
            .route(UI_PATH, serve(index.clone()))
            .route("/v1/ui/app.js", serve(Asset::new(APP_JS, JAVASCRIPT)))
            .route("/v1/ui/scram-dh.js", serve(Asset::new(BUNDLE_JS, JAVASCRIPT)))
            .route("/v1/ui/style.css", serve(Asset::new(STYLE_CSS, CSS)))
            .route("/v1/ui/{*rest}", get(unknown));
        if root { router.route("/", serve(index)) } else { router }
    } else {
        // Without these the signed layer's fallback would answer 401, as if they were there.
        let router = Router::new()
            .route("/v1/ui", get(off))
            .route(UI_PATH, get(off))
            .route("/v1/ui/{*rest}", get(off));
        if root { router.route("/", get(off)) } else { router }
    };
    router.layer(axum::middleware::map_response(secure))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_holds_the_placeholder_once() {
        assert_eq!(INDEX_HTML.matches(FINGERPRINT_PLACEHOLDER).count(), 1);
        let fp = scram_dh::HostKey::from_seed(&[3; 32]).fingerprint();
        let page = render_index(&fp);
        assert!(page.contains(&fp.to_string()) && !page.contains("{{"));
    }

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let tag = Asset::new("x", CSS).etag;
        let t = tag.to_str().unwrap_or_default().to_owned();
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")));
            none_match(&h, &tag)
        };
        assert!(with(&t) && with("*") && with(&format!("\"a\", W/{t}")));
        assert!(!with("\"a\"") && !with(t.trim_matches('"')) && !none_match(&HeaderMap::new(), &tag));
    }
}
