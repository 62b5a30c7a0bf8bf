//! # kubenat-web
//!
//! The browser playground (`web/`) calls the same library functions as the `kubenat`
//! command, compiled to `wasm32-unknown-unknown`; these are the thin bindings. Every
//! function takes and returns strings (JSON for structured results), so the page needs no
//! glue beyond what wasm-bindgen generates, and the native tests call the same functions.
//!
//! - [`simulate`] and [`break_things`]: the notes' network played, as `kubenat simulate`
//!   plays it ([`Simulation::json`] is `kubenat simulate -o json`'s document);
//! - [`check`], [`trace`] and [`rules`]: pasted manifests imported with the CLI's
//!   diagnostics, one packet traced, a node's tables listed.

mod manifests;
mod simulation;

pub use manifests::{check, notes_manifests, rules, trace};
pub use simulation::{Simulation, break_things, simulate};

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

/// Sends panics to the browser's console: without this a panic shows only as
/// "unreachable executed".
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| console_error(&info.to_string())));
}
