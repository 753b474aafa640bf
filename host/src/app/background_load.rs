//! A one-shot host's plugins, loaded on a thread of their own while the script runs.
//!
//! A one-shot `run` spends about as long loading its plugins (the engine, each
//! component's compiled code from the cache, its instance and `init`) as it spends
//! spawning and waiting for a short script. [`BackgroundLoad`] lets the two overlap: the
//! load starts first, the execution right after, and the events that come before the
//! load is done (`queued`, `started`) wait here, in order. The first event a plugin must
//! answer (`finished`, which an acknowledging sink confirms) and anything that asks for
//! the plugins wait for the load, then see the loaded set as a synchronous load would
//! have given it: the same plugins, every event in order, every failure reported to the
//! notices (from the thread that waits, not the loading one).
//!
//! **Invariant:** no event is lost or reordered: the buffered events are handed to the
//! set under the same lock that makes it visible, and an event that finds no set yet is
//! buffered under that lock.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use crate::executor::{EventSink, Receipt};
use crate::model::ExecutionEvent;
use crate::plugin::{PluginError, PluginHost};

use super::{HostNotice, Notices};

/// What a load gives: the set (`None` when no plugin loaded) and each folder that failed;
/// `Err` when the engine could not be built or the directory could not be listed.
pub(super) type LoadOutcome = Result<(Option<PluginHost>, Vec<PluginError>), PluginError>;

/// What to do with a set once it is loaded, before any event reaches it (the monitor's
/// alert callback).
pub(super) type OnLoaded = Box<dyn Fn(&Arc<PluginHost>) + Send + Sync>;

/// The plugins of a one-shot host, loading or loaded; see the module's documentation.
pub(super) struct BackgroundLoad {
    pending: Mutex<Pending>,
    /// Set once, under `pending`'s lock, when the load is joined.
    done: OnceLock<Option<Arc<PluginHost>>>,
    notices: Notices,
    on_loaded: OnLoaded,
    /// The directory the plugins come from.
    dir: PathBuf,
}

struct Pending {
    load: Option<Load>,
    events: Vec<ExecutionEvent>,
}

/// The load: on its thread, or done here because no thread could be started.
enum Load {
    Thread(JoinHandle<LoadOutcome>),
    Done(Box<LoadOutcome>),
}

impl BackgroundLoad {
    /// Starts `load` on a thread of its own (or runs it here, should no thread start).
    pub(super) fn start(
        dir: PathBuf,
        load: impl FnOnce() -> LoadOutcome + Send + 'static,
        notices: Notices,
        on_loaded: OnLoaded,
    ) -> BackgroundLoad {
        let job = Arc::new(Mutex::new(Some(load)));
        let theirs = job.clone();
        let spawned = std::thread::Builder::new()
            .name("metaclaude-plugins-load".into())
            .spawn(move || {
                let load = theirs
                    .lock()
                    .unwrap()
                    .take()
                    .expect("the load is taken once");
                load()
            });
        let load = match spawned {
            Ok(thread) => Load::Thread(thread),
            Err(e) => {
                tracing::debug!(
                    "cannot load the plugins on a thread of their own ({e}); loading them now"
                );
                let load = job.lock().unwrap().take().expect("the thread never ran");
                Load::Done(Box::new(load()))
            }
        };
        BackgroundLoad {
            pending: Mutex::new(Pending {
                load: Some(load),
                events: Vec::new(),
            }),
            done: OnceLock::new(),
            notices,
            on_loaded,
            dir,
        }
    }

    /// The directory the plugins come from.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The loaded set, once the load is done (waiting for it): `None` when no plugin
    /// loaded. The first caller hands the buffered events to the set and reports each
    /// failure to the notices.
    pub(super) fn wait(&self) -> Option<&Arc<PluginHost>> {
        if let Some(done) = self.done.get() {
            return done.as_ref();
        }
        let mut pending = self.pending.lock().unwrap();
        if let Some(done) = self.done.get() {
            return done.as_ref();
        }
        let outcome = match pending.load.take() {
            Some(Load::Thread(thread)) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Some(Load::Done(outcome)) => *outcome,
            // Only `wait` takes it, and it sets `done` before it lets go of the lock.
            None => Ok((None, Vec::new())),
        };
        let host = match outcome {
            Ok((host, failures)) => {
                for e in &failures {
                    (self.notices)(&HostNotice::PluginNotLoaded(e));
                }
                host.map(Arc::new)
            }
            Err(e) => {
                (self.notices)(&HostNotice::PluginNotLoaded(&e));
                None
            }
        };
        let events = std::mem::take(&mut pending.events);
        if let Some(h) = &host {
            (self.on_loaded)(h);
            for event in &events {
                h.emit(event);
            }
        }
        let _ = self.done.set(host);
        drop(pending);
        self.done.get().and_then(Option::as_ref)
    }
}

impl BackgroundLoad {
    /// Waits for the load and drops what it gave without reporting anything: for a host
    /// that failed to start after its load began (its error is what the user hears).
    pub(super) fn abandon(&self) {
        let mut pending = self.pending.lock().unwrap();
        if let Some(Load::Thread(thread)) = pending.load.take() {
            // A panic on the loading thread, too, is dropped with the rest.
            let _ = thread.join();
        }
        pending.events.clear();
        let _ = self.done.set(None);
    }
}

impl EventSink for BackgroundLoad {
    fn emit(&self, event: &ExecutionEvent) {
        if let Some(done) = self.done.get() {
            if let Some(h) = done {
                h.emit(event);
            }
            return;
        }
        let mut pending = self.pending.lock().unwrap();
        match self.done.get() {
            // Loaded while this waited for the lock: the buffer is already handed over.
            Some(done) => {
                drop(pending);
                if let Some(h) = done {
                    h.emit(event);
                }
            }
            None => pending.events.push(event.clone()),
        }
    }

    fn emit_finished(&self, event: &ExecutionEvent) -> Option<Receipt> {
        self.wait()?.emit_finished(event)
    }
}
