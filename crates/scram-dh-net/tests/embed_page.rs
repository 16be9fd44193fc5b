//! The embedding story in a real browser: the README's example app
//! (`examples/axum_app.rs`, included here as it is) serves its own home page,
//! which imports `/v1/ui/scram-dh.js`, registers, logs in and calls the app's
//! API through the signed fetch; `web/test/embed.mjs` drives it in headless
//! Chromium (`scripts/peers.sh` installs Chromium and `web/node_modules`; without
//! them this test fails, never skips).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../examples/axum_app.rs"]
mod example;

use std::net::SocketAddr;
use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_apps_page_logs_in_and_calls_its_api() {
    let app = example::notes_app().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
    });
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "web/node_modules is missing: run scripts/peers.sh (it runs `npm ci` in web/)"
    );
    let out = tokio::process::Command::new("node")
        .arg("test/embed.mjs")
        .current_dir(&web)
        .env("SCRAM_DH_APP_URL", &url)
        .output()
        .await
        .expect("running node (scripts/peers.sh installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success() && text.contains("# all passed") && !text.contains("not ok"), "{text}");
    assert!(text.contains("ok - a signed POST to the app's own API"), "{text}");
}
