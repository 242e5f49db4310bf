//! Calls on an in-process (library) gateway that must succeed, for tests.

use omnigate::{Gateway, Request};
use omnigate_drivers::Value;

/// Runs `text` on `gateway`; it must succeed.
pub async fn run(gateway: &Gateway, dialect: &str, text: &str) {
    if let Err(e) = gateway.execute(Request::new(dialect, text)).await {
        panic!("`{text}` failed: {e}");
    }
}

/// The first value of the first row `text` answers on `gateway`
/// (`target`: an engine name, or the dialect's only engine).
pub async fn first(gateway: &Gateway, dialect: &str, text: &str, target: Option<&str>) -> Value {
    let mut request = Request::new(dialect, text);
    if let Some(target) = target {
        request = request.target(target);
    }
    match gateway.execute(request).await {
        Ok(response) => match response.result.rows.first().and_then(|r| r.first()) {
            Some(value) => value.clone(),
            None => panic!("`{text}` answered no rows"),
        },
        Err(e) => panic!("`{text}` failed: {e}"),
    }
}
