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
//!
//! GCC's unwinder (what a panic unwinds with, and what registers wasmtime's compiled
//! code's unwind tables) is linked in from its static archive rather than loaded from
//! `libgcc_s.so.1` ([`link_unwinder_statically`]): that library's constructor detects the
//! CPU's features with `cpuid`, which traps to the hypervisor here. Measured on the same
//! VM (2026-12-07, `perf stat`, the two builds of one commit in turn, freshly copied):
//! `metaclaude --version` 1.05–1.19 → 0.98 ms of CPU (300 runs each, twice);
//! `metaclaude run noop --no-plugins` 2.86–2.99 → 2.81–2.83 ms wall (150 runs each, three
//! times). `METACLAUDE_SHARED_LIBGCC=1` when building links the shared library instead.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let pie = std::env::var_os("METACLAUDE_PIE").is_some_and(|v| v == "1");
    if target.ends_with("-linux-gnu") {
        if pie {
            println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
        } else {
            println!("cargo:rustc-link-arg-bins=-no-pie");
        }
        if std::env::var_os("METACLAUDE_SHARED_LIBGCC").is_none_or(|v| v != "1") {
            link_unwinder_statically();
        }
    }
    println!("cargo:rerun-if-env-changed=METACLAUDE_PIE");
    println!("cargo:rerun-if-env-changed=METACLAUDE_SHARED_LIBGCC");
    println!("cargo:rerun-if-changed=build.rs");
}

/// Links the executable with GCC's unwinder from its static archive (`libgcc_eh.a`) in
/// place of the shared `libgcc_s.so.1` that Rust's standard library asks for on this
/// target (`-lgcc_s`): a directory of its own, searched before the compiler's, holds a
/// `libgcc_s.so` that is a linker script naming the archive. Only the unwinder's objects
/// the executable uses are linked in (as `-static-libgcc` does for C programs), and the
/// shared library's constructor, which asks the CPU for its features with a dozen
/// `cpuid` instructions at every start, no longer runs: each traps to the hypervisor on
/// the virtual machines this is measured on (about 7 µs a call).
fn link_unwinder_statically() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = out.join("static-unwinder");
    std::fs::create_dir_all(&dir).expect("create a directory in OUT_DIR");
    std::fs::write(
        dir.join("libgcc_s.so"),
        "/* metaclaude's build.rs: GCC's unwinder, linked statically */\nINPUT ( -lgcc_eh )\n",
    )
    .expect("write a file in OUT_DIR");
    println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
}
