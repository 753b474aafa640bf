//! Writes the WASI preview1 reactor adapter to the file named by the first argument.

use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;

fn main() {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: wasi-adapter OUT.wasm");
        std::process::exit(2);
    };
    if let Err(e) = std::fs::write(&out, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER) {
        eprintln!("cannot write {out}: {e}");
        std::process::exit(1);
    }
}
