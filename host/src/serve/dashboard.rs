//! The web dashboard: one page, its script, style and icon, embedded in the binary at
//! build time (nothing is fetched from anywhere else), served at `/` by every `serve`.
//!
//! The page reads what any client reads: the live feed at `/ws` and the API
//! (`/api/v1/stats`, `/stats/timeseries`, `/executions`, `/alerts`, `/plugins`, `/scripts`,
//! and `/silences` and `/schedules` when the server has them), and makes and expires
//! silences as any client does (`POST /api/v1/silences`, `DELETE /api/v1/silences/{id}`:
//! JSON, from its own origin, with its cookie; the server's rules, no exception). It
//! shows script output as text only and works under the server's
//! `Content-Security-Policy: default-src 'self'` (no inline script or style).
//!
//! Each asset has a strong `ETag` (its SHA-256), so a reload costs a 304.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};

use super::ServerState;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: [Asset; 4] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("dashboard/index.html"),
    },
    Asset {
        path: "/dashboard/dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("dashboard/dashboard.js"),
    },
    Asset {
        path: "/dashboard/dashboard.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("dashboard/dashboard.css"),
    },
    Asset {
        path: "/dashboard/icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("dashboard/icon.svg"),
    },
];

/// The page's routes, to merge into the server's router.
pub fn routes() -> Router<Arc<ServerState>> {
    let mut router = Router::new();
    for (i, asset) in ASSETS.iter().enumerate() {
        router = router.route(asset.path, get(move |headers: HeaderMap| serve(i, headers)));
    }
    // Browsers ask for it whatever the page says.
    router.route(
        "/favicon.ico",
        get(|h: HeaderMap| serve(ASSETS.len() - 1, h)),
    )
}

/// The assets' ETags, made once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.body.as_bytes());
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

async fn serve(index: usize, headers: HeaderMap) -> Response {
    let asset = &ASSETS[index];
    let etag = &etags()[index];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    // Kept, but checked on every use: a new binary's page is picked up at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page runs under `default-src 'self'`: no inline script, style or handler, and
    /// nothing from another origin.
    #[test]
    fn the_page_needs_nothing_the_policy_forbids() {
        let html = ASSETS[0].body;
        assert!(
            !html.contains("<script>") && !html.contains("<style"),
            "inline"
        );
        let lower = html.to_ascii_lowercase();
        for (at, _) in lower.match_indices(" on") {
            let name: String = lower[at + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            assert!(
                !lower[at + 3 + name.len()..].starts_with('='),
                "inline handler on{name}"
            );
        }
        assert!(!lower.contains(" style="), "inline style");
        for asset in &ASSETS {
            // The SVG namespace is a name, not a place anything is fetched from.
            let text = asset.body.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"),
                "{} names another origin",
                asset.path
            );
        }
        let js = ASSETS[1].body;
        assert!(
            !js.contains("innerHTML") && !js.contains("eval("),
            "the script writes text only"
        );
        assert_eq!(etags().len(), ASSETS.len());
    }
}
