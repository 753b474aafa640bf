//! Link-time settings of the `metaclaude` executable.
//!
//! A one-shot `metaclaude run` (how agents and cron call us, once per tool call) pays,
//! before `main`, the dynamic loader's relocation of a position-independent executable:
//! 1.8 MB of data holds addresses (`.data.rel.ro`: vtables, panic locations, tables of
//! wasmtime and cranelift), and the loader rewrites every page of it at each start, about
//! 450 copy-on-write page faults. Linked as a position-dependent executable (`-no-pie`,
//! as Go links Prometheus, Alertmanager and the exporters by default) those addresses are
//! fixed by the linker and the pages come from the page cache only when read.
//!
//! Measured on this project's 2-core VM (`perf stat -r 100`, interleaved builds of the same
//! commit): `metaclaude --version` 1.88 → 1.05 ms of CPU and 646 → 183 page faults;
//! `metaclaude run noop --no-plugins` 4.4–4.7 → 3.3–3.7 ms wall (means of 60 runs).
//!
//! The executable's own code and data are then at a fixed address; shared libraries, the
//! heap, stacks and every WebAssembly instance's memory and code stay randomised
//! (SECURITY.md, "Known limits"). `METACLAUDE_PIE=1` when building links a PIE instead,
//! its relative relocations packed (`-z pack-relative-relocs`, DT_RELR: GNU ld 2.38 and
//! glibc 2.36 or later; older linkers ignore it with a warning), which took the PIE's
//! start from 1.78 to 1.45 ms of CPU.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let pie = std::env::var_os("METACLAUDE_PIE").is_some_and(|v| v == "1");
    if target.ends_with("-linux-gnu") {
        if pie {
            println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
        } else {
            println!("cargo:rustc-link-arg-bins=-no-pie");
        }
    }
    println!("cargo:rerun-if-env-changed=METACLAUDE_PIE");
    println!("cargo:rerun-if-changed=build.rs");
}
