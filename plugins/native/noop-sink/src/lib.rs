//! A native sink that counts the events it receives, through the C ABI of
//! `plugins/native/metaclaude_plugin_v1.h`.
//!
//! Config (`[config]` in plugin.toml), both optional:
//! * `count_file`: on every flush, the number of events received so far is written there
//!   (how the tests check that every event arrived);
//! * `parse`: when true, every event's JSON is parsed, the cost a real native sink pays.
//!
//! Any other key is refused, so a misspelt option is an error at load, not a silent no-op.

use std::ffi::c_void;
use std::path::PathBuf;

#[repr(C)]
pub struct McStr {
    ptr: *const u8,
    len: usize,
}

impl McStr {
    /// # Safety
    /// `ptr` must point to `len` readable bytes for the lifetime of the call.
    unsafe fn as_str(&self) -> &str {
        if self.len == 0 {
            return "";
        }
        // SAFETY: the caller's promise (above): `len` readable bytes at `ptr`.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        std::str::from_utf8(bytes).unwrap_or("")
    }
}

#[repr(C)]
pub struct McOut {
    ctx: *mut c_void,
    write: extern "C" fn(ctx: *mut c_void, ptr: *const u8, len: usize),
}

impl McOut {
    fn put(&self, text: &str) {
        (self.write)(self.ctx, text.as_ptr(), text.len());
    }
}

type Init = extern "C" fn(McStr, *mut *mut c_void, *const McOut) -> i32;
type HandleBatch =
    extern "C" fn(*mut c_void, *const McStr, usize, *const McOut, *const McOut) -> i32;
type Flush = extern "C" fn(*mut c_void, *const McOut) -> i32;
type Render = extern "C" fn(*mut c_void, *const McOut, *const McOut) -> i32;
type Tick = extern "C" fn(*mut c_void, i64, u32, *const McOut, *const McOut) -> i32;
type Notify = extern "C" fn(*mut c_void, McStr, *const McOut) -> i32;

#[repr(C)]
pub struct McPluginV1 {
    abi_version: u32,
    init: Init,
    handle_batch: Option<HandleBatch>,
    flush: Option<Flush>,
    render: Option<Render>,
    tick: Option<Tick>,
    notify: Option<Notify>,
    drop: extern "C" fn(*mut c_void),
}

struct State {
    events: u64,
    count_file: Option<PathBuf>,
    parse: bool,
}

fn configure(config: &str) -> Result<State, String> {
    let value: serde_json::Value =
        serde_json::from_str(config).map_err(|e| format!("config is not JSON: {e}"))?;
    let mut state = State {
        events: 0,
        count_file: None,
        parse: false,
    };
    for (key, v) in value.as_object().into_iter().flatten() {
        match (key.as_str(), v) {
            ("count_file", serde_json::Value::String(s)) => state.count_file = Some(s.into()),
            ("parse", serde_json::Value::Bool(b)) => state.parse = *b,
            ("count_file", _) => return Err("count_file: expected a path".into()),
            ("parse", _) => return Err("parse: expected true or false".into()),
            (other, _) => {
                return Err(format!(
                    "unknown config key `{other}` (known: count_file, parse)"
                ))
            }
        }
    }
    Ok(state)
}

extern "C" fn init(config: McStr, state: *mut *mut c_void, err: *const McOut) -> i32 {
    // SAFETY: the host passes a string valid for the call and valid out-pointers.
    match configure(unsafe { config.as_str() }) {
        Ok(s) => {
            // SAFETY: `state` is the host's valid out-pointer for this call.
            unsafe { *state = Box::into_raw(Box::new(s)).cast() };
            0
        }
        Err(message) => {
            // SAFETY: `err` is the host's valid writer for this call.
            unsafe { (*err).put(&message) };
            1
        }
    }
}

extern "C" fn handle_batch(
    state: *mut c_void,
    events: *const McStr,
    count: usize,
    _alerts: *const McOut,
    err: *const McOut,
) -> i32 {
    // SAFETY: `state` came from `init`; `events` points to `count` strings for the call.
    let state = unsafe { &mut *state.cast::<State>() };
    if state.parse {
        // SAFETY: the host passes `count` strings at `events`, valid for the call.
        let events = unsafe { std::slice::from_raw_parts(events, count) };
        for e in events {
            // SAFETY: each string is valid for the call.
            let text = unsafe { e.as_str() };
            if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
                // SAFETY: `err` is the host's valid writer for this call.
                unsafe { (*err).put(&format!("an event is not JSON: {e}")) };
                return 1;
            }
        }
    }
    state.events += count as u64;
    0
}

extern "C" fn flush(state: *mut c_void, err: *const McOut) -> i32 {
    // SAFETY: `state` came from `init`.
    let state = unsafe { &mut *state.cast::<State>() };
    if let Some(file) = &state.count_file {
        if let Err(e) = std::fs::write(file, state.events.to_string()) {
            // SAFETY: `err` is the host's valid writer for this call.
            unsafe { (*err).put(&format!("cannot write {}: {e}", file.display())) };
            return 1;
        }
    }
    0
}

extern "C" fn drop_state(state: *mut c_void) {
    // SAFETY: `state` came from `init` and is dropped once.
    drop(unsafe { Box::from_raw(state.cast::<State>()) });
}

static PLUGIN: McPluginV1 = McPluginV1 {
    abi_version: 1,
    init,
    handle_batch: Some(handle_batch),
    flush: Some(flush),
    render: None,
    tick: None,
    notify: None,
    drop: drop_state,
};

/// The entry point the host looks up.
#[no_mangle]
pub extern "C" fn metaclaude_plugin_v1() -> *const McPluginV1 {
    &PLUGIN
}
