//! Writes a generated execution log (the sink's format) for trying `metaclaude logs`.
//!
//! ```text
//! cargo run --release -p metaclaude-host --example gen_logs -- DIR [MiB] [SEED]
//! METACLAUDE_LOG_DIR=DIR metaclaude logs --stats --group-by script
//! ```
//!
//! The output depends only on the size and the seed.

use std::time::Instant;

use metaclaude::logs::gen::{generate, GenConfig};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        anyhow::bail!("usage: gen_logs DIR [MiB, default 64] [SEED, default 42]");
    };
    let mib: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(64);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(42);
    std::fs::create_dir_all(&dir)?;
    let cfg = GenConfig {
        seed,
        total_bytes: mib << 20,
        rotated_bytes: (64u64 << 20).min((mib << 20) / 4).max(1 << 20),
        ..Default::default()
    };
    let t = Instant::now();
    let s = generate(dir.as_ref(), &cfg)?;
    println!(
        "{dir}: {} files, {} executions, {} lifecycle lines, {:.1} MiB uncompressed, {:.1} MiB on disk ({:.1?})",
        s.files,
        s.executions,
        s.lifecycle_lines,
        s.uncompressed_bytes as f64 / 1048576.0,
        s.compressed_bytes as f64 / 1048576.0,
        t.elapsed()
    );
    Ok(())
}
