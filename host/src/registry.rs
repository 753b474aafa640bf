//! The script registry: `registry.json`, which declares every script the host may run.
//!
//! Parsing happens in two steps, like Spin's manifest crate: `serde_json` turns the text
//! into a value (syntax errors carry line and column), then `validate` walks that value
//! and collects *every* problem with its field path (`scripts[2].timeout_ms`), so a user
//! fixes a registry in one pass instead of one error at a time. Unknown keys are errors
//! with a "did you mean", because a misspelt `timeout_ms` silently ignored is a script
//! that runs with the wrong limit.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{self, Checker, ConfigError, ConfigValue};
use crate::expectations::spec::{self as expect_spec, Expectations, Rule, ScriptLimits};
use crate::model::ErrorCategory;
use crate::schedules::spec::{self as schedule_spec, RunSchedule};
use crate::suggest::did_you_mean;

/// The registry format version this host reads.
pub const REGISTRY_VERSION: u64 = 1;
/// A script's `timeout_ms` when the registry gives none: 30 s per attempt.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// A script's `output_limit_bytes` when the registry gives none: 1 MiB per stream.
pub const DEFAULT_OUTPUT_LIMIT_BYTES: usize = 1024 * 1024;
/// Conventional "temporary failure" exit status (`EX_TEMPFAIL` in sysexits.h).
pub const EX_TEMPFAIL: i32 = 75;

/// A validated registry: scripts in file order, paths already made absolute.
#[derive(Debug, Clone, Serialize)]
pub struct Registry {
    /// The file it was read from, as the caller named it (messages and the scripts'
    /// relative paths refer to it).
    pub file: PathBuf,
    /// Every script, in the file's order; ids are unique.
    pub scripts: Vec<ScriptEntry>,
}

impl Registry {
    /// Reads and validates a registry file.
    pub fn load(file: impl AsRef<Path>) -> Result<Registry, RegistryError> {
        let file = file.as_ref();
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Io {
            what: "registry",
            file: file.to_path_buf(),
            source,
        })?;
        Registry::parse(&text, file)
    }

    /// Validates registry text; `file` names it in errors and anchors relative paths.
    pub fn parse(text: &str, file: &Path) -> Result<Registry, RegistryError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_path_buf(),
            format: "JSON",
            line: e.line(),
            // serde_json says column 0 for an error just after a newline (an empty file
            // ends at 1:0); editors count from 1.
            column: e.column().max(1),
            message: strip_position(&e.to_string()),
        })?;
        let base = file
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let base = std::path::absolute(&base).unwrap_or(base);
        let mut c = Checker::new();
        let scripts = validate(&mut c, &value, &base);
        c.finish(scripts, file).map(|scripts| Registry {
            file: file.to_path_buf(),
            scripts,
        })
    }

    /// The script registered as `id`, if any.
    pub fn get(&self, id: &str) -> Option<&ScriptEntry> {
        self.scripts.iter().find(|s| s.id == id)
    }

    /// Every script's id, in the file's order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.scripts.iter().map(|s| s.id.as_str())
    }
}

/// serde_json appends " at line L column C"; we report those separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Why a registry could not be used.
pub type RegistryError = ConfigError;

/// One script the host may run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptEntry {
    /// The id requests name it by: letters, digits, `_`, `-`, `.`; unique in the registry.
    pub id: String,
    /// As written in the registry (for messages).
    pub path_in_registry: String,
    /// Absolute path of the script.
    pub path: PathBuf,
    /// Command (and leading arguments) that runs the script; `None` executes it directly.
    pub interpreter: Option<Vec<String>>,
    /// Free text that tags results, events and metrics; `None` when not given.
    pub specialist: Option<String>,
    /// Free text for people; `None` when not given.
    pub description: Option<String>,
    /// Wall-clock limit per attempt, ms (default [`DEFAULT_TIMEOUT_MS`]): SIGTERM to the
    /// group when it passes, SIGKILL after a grace.
    pub timeout_ms: u64,
    /// Memory limit, MiB: of the whole tree with a cgroup, else of each process's address
    /// space (`RLIMIT_AS`); `None` for no limit.
    pub memory_limit_mb: Option<u64>,
    /// CPU time limit per process, seconds (`RLIMIT_CPU`: SIGXCPU, then SIGKILL a second
    /// later); `None` for no limit.
    pub cpu_limit_seconds: Option<u64>,
    /// The inputs the script declares, by name; a request naming any other is refused.
    pub inputs: BTreeMap<String, InputSpec>,
    /// How the inputs reach the script (default `args`).
    pub input_mode: InputMode,
    /// What must exist before an attempt starts; a missing one is a DEPENDENCY failure.
    pub requires: Vec<Requirement>,
    /// Which failures are retried, how often and after what delay.
    pub retry: RetryPolicy,
    /// Host environment variables passed through (exact names, or `PREFIX_*`).
    pub env_allow: Vec<String>,
    /// Fixed environment variables.
    pub env: BTreeMap<String, String>,
    /// Absolute working directory.
    pub working_dir: PathBuf,
    /// Bytes kept per output stream (default [`DEFAULT_OUTPUT_LIMIT_BYTES`]); beyond it the
    /// head and tail halves are kept.
    pub output_limit_bytes: usize,
    /// What the script is expected to do (`expect`): how often it must succeed, how long a
    /// run may take, how many failures in a row make an incident; `None` (left out of the
    /// normalised form) for a script without the block, for which nothing changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expectations>,
    /// When `serve` runs the script itself (`run_schedule`): a cron schedule in a time
    /// zone, jitter, an overlap policy, the inputs. A script with one is expected to
    /// succeed on it (its `expect` gets the schedule as its cadence when it gives none).
    /// `None` (left out of the normalised form) for a script run on demand only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_schedule: Option<RunSchedule>,
}

/// The type of a declared input; values are checked against it before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    /// Any JSON string (a number given is turned into its text).
    String,
    /// A whole number (a string such as `"42"` is converted).
    Integer,
    /// Any JSON number (a numeric string is converted).
    Number,
    /// `true` or `false` (strings such as `"yes"`, `"0"`, `"off"` are converted).
    Boolean,
    /// A non-empty path without NUL; checked to exist first when `must_exist`.
    Path,
}

impl InputType {
    const NAMES: [&'static str; 5] = ["string", "integer", "number", "boolean", "path"];

    fn parse(s: &str) -> Option<InputType> {
        Some(match s {
            "string" => InputType::String,
            "integer" => InputType::Integer,
            "number" => InputType::Number,
            "boolean" => InputType::Boolean,
            "path" => InputType::Path,
            _ => return None,
        })
    }

    /// The name the registry's `type` field uses (`"integer"`).
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::Path => "path",
        }
    }
}

/// One declared input of a script: its type and how a missing value is handled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputSpec {
    /// The type values are checked and converted against (`type` in the registry; default
    /// `string`).
    #[serde(rename = "type")]
    pub kind: InputType,
    /// Whether a request must give it (default false); a required input without a value is
    /// a VALIDATION failure.
    pub required: bool,
    /// The value used when a request gives none, already of `kind`; `None` for no default.
    pub default: Option<Value>,
    /// Free text for people.
    pub description: Option<String>,
    /// `env` mode: the variable name (default `METACLAUDE_INPUT_<NAME>`).
    pub env_name: Option<String>,
    /// `path` inputs: must the file exist before the run?
    pub must_exist: bool,
}

/// How inputs reach the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputMode {
    /// `--name value` on the command line (booleans: `--name` when true).
    Args,
    /// One JSON object on standard input.
    StdinJson,
    /// One environment variable per input.
    Env,
}

/// Something that must exist before the script runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// A command looked up on the script's `PATH`.
    Command(String),
    /// A file (an entry with a `/`), relative to the registry's folder.
    File {
        /// As written in the registry (for messages).
        written: String,
        /// Its absolute path.
        path: PathBuf,
    },
}

/// When and how failed attempts are retried.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt, 0 to 100 (default 2).
    pub max_retries: u32,
    /// The first backoff step, ms (default 200).
    pub initial_ms: u64,
    /// The cap on a backoff step, ms (default 10 000); never below `initial_ms`.
    pub max_ms: u64,
    /// Growth of the step per retry, 1 to 100 (default 2).
    pub multiplier: f64,
    /// Full jitter: wait a random time between zero and the capped exponential step.
    pub jitter: bool,
    /// Categories that count as transient (default TIMEOUT and UNKNOWN); never VALIDATION,
    /// PERMISSION or DEPENDENCY.
    pub retry_on_categories: Vec<ErrorCategory>,
    /// Exit codes, 1 to 255, that count as transient whatever the category (default
    /// [`EX_TEMPFAIL`]).
    pub retry_on_exit_codes: Vec<i32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            initial_ms: 200,
            max_ms: 10_000,
            multiplier: 2.0,
            jitter: true,
            retry_on_categories: vec![ErrorCategory::Timeout, ErrorCategory::Unknown],
            retry_on_exit_codes: vec![EX_TEMPFAIL],
        }
    }
}

const TOP_KEYS: &[&str] = &["version", "scripts"];
const SCRIPT_KEYS: &[&str] = &[
    "id",
    "path",
    "interpreter",
    "specialist",
    "description",
    "timeout_ms",
    "memory_limit_mb",
    "cpu_limit_seconds",
    "inputs",
    "input_mode",
    "requires",
    "max_retries",
    "backoff",
    "retry_on",
    "env_allow",
    "env",
    "working_dir",
    "output_limit_bytes",
    "expect",
    "run_schedule",
];
const INPUT_KEYS: &[&str] = &[
    "type",
    "required",
    "default",
    "description",
    "env",
    "must_exist",
];
const BACKOFF_KEYS: &[&str] = &["initial_ms", "max_ms", "multiplier", "jitter"];
const INPUT_MODES: &[&str] = &["args", "stdin_json", "env"];

/// The checks of JSON values the registry's fields need, on the shared [`Checker`].
trait JsonChecks {
    fn string(&mut self, at: &str, v: &Value) -> Option<String>;
    fn non_empty_string(&mut self, at: &str, v: &Value) -> Option<String>;
    fn positive_integer(&mut self, at: &str, v: &Value, unit: &str) -> Option<u64>;
    fn boolean(&mut self, at: &str, v: &Value) -> Option<bool>;
    fn object<'v>(&mut self, at: &str, v: &'v Value) -> Option<&'v Map<String, Value>>;
    fn string_list(&mut self, at: &str, v: &Value) -> Option<Vec<String>>;
}

impl JsonChecks for Checker {
    fn string(&mut self, at: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.expected(at, "a string", other);
                None
            }
        }
    }

    fn non_empty_string(&mut self, at: &str, v: &Value) -> Option<String> {
        let s = self.string(at, v)?;
        if s.trim().is_empty() {
            self.problem(at, "must not be empty");
            return None;
        }
        Some(s)
    }

    fn positive_integer(&mut self, at: &str, v: &Value, unit: &str) -> Option<u64> {
        match v.as_u64() {
            Some(n) if n > 0 => Some(n),
            _ => {
                self.problem(
                    at,
                    format!(
                        "expected a positive integer ({unit}), found {}",
                        v.describe()
                    ),
                );
                None
            }
        }
    }

    fn boolean(&mut self, at: &str, v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                self.expected(at, "true or false", other);
                None
            }
        }
    }

    fn object<'v>(&mut self, at: &str, v: &'v Value) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.expected(at, "an object", other);
                None
            }
        }
    }

    fn string_list(&mut self, at: &str, v: &Value) -> Option<Vec<String>> {
        let Value::Array(items) = v else {
            self.expected(at, "a list of strings", v);
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            out.push(self.non_empty_string(&format!("{at}[{i}]"), item)?);
        }
        Some(out)
    }
}

/// Checks a parsed registry and builds its entries, recording every problem in `c`
/// (the entries are usable only if it has none).
fn validate(c: &mut Checker, root: &Value, base: &Path) -> Option<Vec<ScriptEntry>> {
    let top = c.object("(top level)", root)?;
    c.unknown_keys("", top.keys(), TOP_KEYS);
    match top.get("version") {
        None => {}
        Some(v) if v.as_u64() == Some(REGISTRY_VERSION) => {}
        Some(v) => c.problem(
            "version",
            format!(
                "this host reads registry version {REGISTRY_VERSION}, found {}",
                v.describe()
            ),
        ),
    }
    let mut scripts = Vec::new();
    match top.get("scripts") {
        None => c.problem("scripts", "missing: add a list of script entries"),
        Some(Value::Array(items)) => {
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                let at = format!("scripts[{i}]");
                if let Some(entry) = script_entry(c, &at, item, base) {
                    scripts.push(entry);
                }
                // Checked on the raw value so a duplicate is reported even beside other errors.
                if let Some(id) = item.get("id").and_then(Value::as_str) {
                    if !seen.insert(id) {
                        c.problem(
                            format!("{at}.id"),
                            format!("duplicate id `{id}`: ids must be unique"),
                        );
                    }
                }
            }
        }
        Some(other) => c.expected("scripts", "a list of script entries", other),
    }
    Some(scripts)
}

fn script_entry(c: &mut Checker, at: &str, v: &Value, base: &Path) -> Option<ScriptEntry> {
    let before = c.count();
    let obj = c.object(at, v)?;
    c.unknown_keys(at, obj.keys(), SCRIPT_KEYS);
    let field = |k: &str| config::field(at, k);

    let id = match obj.get("id") {
        None => {
            c.problem(field("id"), "missing: every script needs an id");
            None
        }
        Some(v) => c.non_empty_string(&field("id"), v).and_then(|id| {
            let valid = id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_-.".contains(ch));
            if valid {
                Some(id)
            } else {
                c.problem(
                    field("id"),
                    format!("`{id}`: use only letters, digits, `_`, `-` and `.`"),
                );
                None
            }
        }),
    };
    let path_in_registry = match obj.get("path") {
        None => {
            c.problem(
                field("path"),
                "missing: give the script's path, relative to the registry file",
            );
            None
        }
        Some(v) => c.non_empty_string(&field("path"), v),
    };
    let interpreter = match obj.get("interpreter") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(vec![s.clone()]),
        Some(v @ Value::Array(_)) => c
            .string_list(&field("interpreter"), v)
            .filter(|l| !l.is_empty()),
        Some(v) => {
            c.problem(
                field("interpreter"),
                format!(
                    "expected a command such as \"python3\" or a list such as [\"python3\", \"-u\"], found {}",
                    v.describe()
                ),
            );
            None
        }
    };
    let opt_string = |c: &mut Checker, k: &str| obj.get(k).and_then(|v| c.string(&field(k), v));
    let specialist = opt_string(c, "specialist");
    let description = opt_string(c, "description");
    let timeout_given = obj
        .get("timeout_ms")
        .map(|v| c.positive_integer(&field("timeout_ms"), v, "milliseconds"));
    let timeout_ms = timeout_given.flatten().unwrap_or(DEFAULT_TIMEOUT_MS);
    let memory_limit_mb = obj
        .get("memory_limit_mb")
        .and_then(|v| c.positive_integer(&field("memory_limit_mb"), v, "MiB"));
    let cpu_limit_seconds = obj
        .get("cpu_limit_seconds")
        .and_then(|v| c.positive_integer(&field("cpu_limit_seconds"), v, "seconds"));
    let output_limit_bytes = obj
        .get("output_limit_bytes")
        .and_then(|v| c.positive_integer(&field("output_limit_bytes"), v, "bytes"))
        .map(|n| n as usize)
        .unwrap_or(DEFAULT_OUTPUT_LIMIT_BYTES);

    let input_mode = match obj.get("input_mode") {
        None => InputMode::Args,
        Some(v) => match c.string(&field("input_mode"), v).as_deref() {
            Some("args") => InputMode::Args,
            Some("stdin_json") => InputMode::StdinJson,
            Some("env") => InputMode::Env,
            Some(other) => {
                let hint = did_you_mean(other, INPUT_MODES.iter().copied());
                c.problem(
                    field("input_mode"),
                    format!(
                        "unknown mode `{other}`{hint} (expected one of {})",
                        INPUT_MODES.join(", ")
                    ),
                );
                InputMode::Args
            }
            None => InputMode::Args,
        },
    };
    let mut inputs = BTreeMap::new();
    let before_inputs = c.count();
    if let Some(v) = obj.get("inputs") {
        if let Some(map) = c.object(&field("inputs"), v) {
            for (name, spec) in map {
                let at = config::field(&field("inputs"), name);
                if !name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
                {
                    c.problem(&at, "input names use only letters, digits, `_` and `-`");
                    continue;
                }
                if let Some(spec) = input_spec(c, &at, spec) {
                    inputs.insert(name.clone(), spec);
                }
            }
        }
    }

    let inputs_ok = c.count() == before_inputs;

    let mut requires = Vec::new();
    if let Some(v) = obj.get("requires") {
        for item in c.string_list(&field("requires"), v).unwrap_or_default() {
            if item.contains('/') {
                requires.push(Requirement::File {
                    path: base.join(&item),
                    written: item,
                });
            } else {
                requires.push(Requirement::Command(item));
            }
        }
    }

    let retry = retry_policy(c, at, obj);

    let run_schedule = obj.get("run_schedule").and_then(|v| {
        let at = field("run_schedule");
        let run = schedule_spec::parse(c, &at, v);
        // The inputs are checked whatever else is wrong with the block (every problem in
        // one pass), against declarations that are themselves fine only (one mistake,
        // one problem).
        let given: BTreeMap<String, Value> = match v.get("inputs") {
            Some(Value::Object(m)) if inputs_ok => {
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
            }
            _ => BTreeMap::new(),
        };
        let problems = if inputs_ok {
            scheduled_inputs(&inputs, &given)
        } else {
            Vec::new()
        };
        for (key, problem) in &problems {
            let at = config::field(&at, "inputs");
            match key {
                Some(key) => c.problem(config::field(&at, key), problem),
                None => c.problem(at, problem),
            }
        }
        let mut run = run.filter(|_| problems.is_empty())?;
        // Normalised as a request's would be: each value of its declared type.
        for (name, value) in run.inputs.iter_mut() {
            if let Some(Ok(typed)) = inputs.get(name).map(|spec| coerce(spec.kind, value)) {
                *value = typed;
            }
        }
        Some(run)
    });

    // Checked against the timeout only when that is valid, so that one mistake is not
    // reported twice. A scheduled script is expected on its schedule: its runs start up
    // to its jitter after each slot.
    let jitter = run_schedule.as_ref().map(|r| r.jitter).unwrap_or_default();
    let grace = longest_execution(timeout_ms, &retry).saturating_add(jitter);
    let implied = run_schedule
        .as_ref()
        .map(|r| Rule::Schedule(r.schedule.clone()));
    let expect = match obj.get("expect") {
        Some(v) => {
            let limits = ScriptLimits {
                timeout_ms: (timeout_given != Some(None)).then_some(timeout_ms),
                longest_execution: grace,
                implied,
            };
            expect_spec::parse(c, &field("expect"), v, limits)
        }
        None => implied.map(|rule| Expectations::implied(rule, grace)),
    };

    let env_allow = obj
        .get("env_allow")
        .and_then(|v| c.string_list(&field("env_allow"), v))
        .unwrap_or_default();
    let mut env = BTreeMap::new();
    if let Some(v) = obj.get("env") {
        if let Some(map) = c.object(&field("env"), v) {
            for (k, v) in map {
                if let Some(s) = c.string(&config::field(&field("env"), k), v) {
                    env.insert(k.clone(), s);
                }
            }
        }
    }
    let working_dir = match obj.get("working_dir") {
        None => base.to_path_buf(),
        Some(v) => c
            .non_empty_string(&field("working_dir"), v)
            .map(|d| base.join(d))
            .unwrap_or_else(|| base.to_path_buf()),
    };

    if c.count() > before {
        return None;
    }
    let path_in_registry = path_in_registry?;
    Some(ScriptEntry {
        id: id?,
        path: base.join(&path_in_registry),
        path_in_registry,
        interpreter,
        specialist,
        description,
        timeout_ms,
        memory_limit_mb,
        cpu_limit_seconds,
        inputs,
        input_mode,
        requires,
        retry,
        env_allow,
        env,
        working_dir,
        output_limit_bytes,
        expect,
        run_schedule,
    })
}

/// The problems of a schedule's `inputs` against the script's declared ones, as a
/// request's would have (`(Some(name), ...)` at that input, `(None, ...)` for the block):
/// an unknown name, a value not of its type, a required input without a value or default.
fn scheduled_inputs(
    declared: &BTreeMap<String, InputSpec>,
    given: &BTreeMap<String, Value>,
) -> Vec<(Option<String>, String)> {
    let mut problems = Vec::new();
    for (name, value) in given {
        match declared.get(name) {
            None => {
                let hint = did_you_mean(name, declared.keys().map(String::as_str));
                let known = if declared.is_empty() {
                    " (the script declares no inputs)".to_string()
                } else if hint.is_empty() {
                    format!(
                        " (declared: {})",
                        declared.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                } else {
                    String::new()
                };
                problems.push((
                    Some(name.clone()),
                    format!("the script declares no input `{name}`{hint}{known}"),
                ));
            }
            Some(spec) => {
                if let Err(e) = coerce(spec.kind, value) {
                    problems.push((Some(name.clone()), e.to_string()));
                }
            }
        }
    }
    let missing: Vec<&str> = declared
        .iter()
        .filter(|(name, spec)| {
            spec.required && spec.default.is_none() && !given.contains_key(*name)
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if !missing.is_empty() {
        problems.push((
            None,
            format!(
                "missing required input{} {}: give {} here, as a request would",
                if missing.len() == 1 { "" } else { "s" },
                missing
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if missing.len() == 1 { "it" } else { "them" }
            ),
        ));
    }
    problems
}

/// The longest one execution of a script can take: every attempt to its timeout, and
/// every backoff at its cap (what `expect.grace` defaults to).
pub fn longest_execution(timeout_ms: u64, retry: &RetryPolicy) -> std::time::Duration {
    let attempts = u64::from(retry.max_retries) + 1;
    let ms = timeout_ms
        .saturating_mul(attempts)
        .saturating_add(retry.max_ms.saturating_mul(u64::from(retry.max_retries)));
    std::time::Duration::from_millis(ms)
}

fn input_spec(c: &mut Checker, at: &str, v: &Value) -> Option<InputSpec> {
    let obj = c.object(at, v)?;
    c.unknown_keys(at, obj.keys(), INPUT_KEYS);
    let field = |k: &str| config::field(at, k);
    let before = c.count();
    let kind = match obj.get("type") {
        None => InputType::String,
        Some(v) => match c.string(&field("type"), v) {
            Some(name) => InputType::parse(&name).unwrap_or_else(|| {
                let hint = did_you_mean(&name, InputType::NAMES.iter().copied());
                c.problem(
                    field("type"),
                    format!(
                        "unknown type `{name}`{hint} (expected one of {})",
                        InputType::NAMES.join(", ")
                    ),
                );
                InputType::String
            }),
            None => InputType::String,
        },
    };
    let type_ok = c.count() == before;
    let required = obj
        .get("required")
        .and_then(|v| c.boolean(&field("required"), v))
        .unwrap_or(false);
    let default = match obj.get("default") {
        None | Some(Value::Null) => None,
        Some(_) if !type_ok => None,
        Some(v) => match coerce(kind, v) {
            Ok(v) => Some(v),
            Err(e) => {
                c.problem(field("default"), e);
                None
            }
        },
    };
    let description = obj
        .get("description")
        .and_then(|v| c.string(&field("description"), v));
    let env_name = obj
        .get("env")
        .and_then(|v| c.non_empty_string(&field("env"), v));
    let must_exist = obj
        .get("must_exist")
        .and_then(|v| c.boolean(&field("must_exist"), v))
        .unwrap_or(false);
    if c.count() > before {
        return None;
    }
    Some(InputSpec {
        kind,
        required,
        default,
        description,
        env_name,
        must_exist,
    })
}

/// The most retries a script may ask for.
pub const MAX_RETRIES: u32 = 100;

/// The most lifecycle events one execution sends: `queued`, then per attempt `started`
/// and `attempt_failed` and, before each retry, `retry_scheduled`; then `finished`.
pub const MAX_EVENTS_OF_ONE_EXECUTION: usize = 2 + 3 * (MAX_RETRIES as usize + 1);

fn retry_policy(c: &mut Checker, at: &str, obj: &Map<String, Value>) -> RetryPolicy {
    let field = |k: &str| config::field(at, k);
    let mut policy = RetryPolicy::default();
    if let Some(v) = obj.get("max_retries") {
        match v.as_u64() {
            Some(n) if n <= MAX_RETRIES.into() => policy.max_retries = n as u32,
            _ => c.expected(
                field("max_retries"),
                &format!("an integer from 0 to {MAX_RETRIES}"),
                v,
            ),
        }
    }
    if let Some(v) = obj.get("backoff") {
        let at = field("backoff");
        if let Some(b) = c.object(&at, v) {
            c.unknown_keys(&at, b.keys(), BACKOFF_KEYS);
            if let Some(v) = b.get("initial_ms") {
                if let Some(n) =
                    c.positive_integer(&config::field(&at, "initial_ms"), v, "milliseconds")
                {
                    policy.initial_ms = n;
                }
            }
            if let Some(v) = b.get("max_ms") {
                if let Some(n) =
                    c.positive_integer(&config::field(&at, "max_ms"), v, "milliseconds")
                {
                    policy.max_ms = n;
                }
            }
            if let Some(v) = b.get("multiplier") {
                match v.as_f64() {
                    Some(m) if (1.0..=100.0).contains(&m) => policy.multiplier = m,
                    _ => c.problem(
                        config::field(&at, "multiplier"),
                        format!("expected a number from 1 to 100, found {}", v.describe()),
                    ),
                }
            }
            if let Some(v) = b.get("jitter") {
                if let Some(j) = c.boolean(&config::field(&at, "jitter"), v) {
                    policy.jitter = j;
                }
            }
            if policy.max_ms < policy.initial_ms {
                c.problem(
                    config::field(&at, "max_ms"),
                    format!(
                        "max_ms ({}) is below initial_ms ({})",
                        policy.max_ms, policy.initial_ms
                    ),
                );
            }
        }
    }
    if let Some(v) = obj.get("retry_on") {
        let at = field("retry_on");
        match v {
            Value::Array(items) => {
                policy.retry_on_categories.clear();
                policy.retry_on_exit_codes.clear();
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{at}[{i}]");
                    match item {
                        Value::String(s) => match s.parse::<ErrorCategory>() {
                            Ok(cat) if cat.is_never_retried() => c.problem(
                                at,
                                format!(
                                    "{cat} failures are never retried: a retry cannot fix them"
                                ),
                            ),
                            Ok(cat) => policy.retry_on_categories.push(cat),
                            Err(_) => {
                                let names = ErrorCategory::ALL.map(|c| c.as_str());
                                let hint = did_you_mean(s, names.iter().copied());
                                c.problem(
                                    at,
                                    format!("unknown category `{s}`{hint} (expected a category such as TIMEOUT, or an exit code)"),
                                );
                            }
                        },
                        Value::Number(n) => match n.as_i64() {
                            Some(code) if (1..=255).contains(&code) => {
                                policy.retry_on_exit_codes.push(code as i32)
                            }
                            _ => c.problem(at, format!("exit codes run from 1 to 255, found {n}")),
                        },
                        other => c.expected(at, "a category name or an exit code", other),
                    }
                }
            }
            other => c.expected(at, "a list of categories and exit codes", other),
        }
    }
    policy
}

/// A value that is not of its input's type (nor a string that converts to it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {} value, found {found}", article(*expected))]
pub struct InputTypeError {
    /// The type the registry declares for the input.
    pub expected: InputType,
    /// The value as the message shows it ([`ConfigValue::describe`]).
    pub found: String,
}

/// Checks `value` against `kind`, converting strings (from `--input KEY=VALUE`) as needed.
pub fn coerce(kind: InputType, value: &Value) -> Result<Value, InputTypeError> {
    let fail = || InputTypeError {
        expected: kind,
        found: value.describe(),
    };
    match (kind, value) {
        (InputType::String, Value::String(_)) => Ok(value.clone()),
        (InputType::String, Value::Number(n)) => Ok(Value::String(n.to_string())),
        (InputType::Path, Value::String(s)) if !s.is_empty() && !s.contains('\0') => {
            Ok(value.clone())
        }
        (InputType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(value.clone()),
        (InputType::Integer, Value::String(s)) => {
            s.trim().parse::<i64>().map(Value::from).map_err(|_| fail())
        }
        (InputType::Number, Value::Number(_)) => Ok(value.clone()),
        (InputType::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(fail),
        (InputType::Boolean, Value::Bool(_)) => Ok(value.clone()),
        (InputType::Boolean, Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Ok(Value::Bool(true)),
            "false" | "no" | "0" | "off" => Ok(Value::Bool(false)),
            _ => Err(fail()),
        },
        _ => Err(fail()),
    }
}

fn article(kind: InputType) -> &'static str {
    match kind {
        InputType::Integer => "an integer",
        InputType::String => "a string",
        InputType::Number => "a number",
        InputType::Boolean => "a boolean (true or false)",
        InputType::Path => "a path",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Result<Vec<ScriptEntry>, Vec<String>> {
        let mut c = Checker::new();
        let scripts = validate(&mut c, &v, Path::new("/reg"));
        match c.finish(scripts, "/reg/registry.json") {
            Ok(scripts) => Ok(scripts),
            Err(ConfigError::Invalid { problems, .. }) => {
                Err(problems.iter().map(|p| p.to_string()).collect())
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn minimal_entry_gets_defaults() {
        let s = check(json!({"scripts": [{"id": "a", "path": "a.sh"}]})).unwrap();
        assert_eq!(s[0].timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(s[0].path, Path::new("/reg/a.sh"));
        assert_eq!(s[0].working_dir, Path::new("/reg"));
        assert_eq!(s[0].input_mode, InputMode::Args);
        assert_eq!(s[0].retry, RetryPolicy::default());
    }

    #[test]
    fn reports_every_problem_with_its_field() {
        let errs = check(json!({"scripts": [
            {"id": "a", "path": "a.sh", "timout_ms": 5},
            {"id": "b", "path": "", "timeout_ms": "soon",
             "inputs": {"x": {"type": "strng"}}, "retry_on": ["VALIDATION", 300]},
            {"id": "a", "path": "c.sh"}
        ]}))
        .unwrap_err();
        assert_eq!(
            errs,
            vec![
                "scripts[0].timout_ms: unknown key; did you mean `timeout_ms`?",
                "scripts[1].path: must not be empty",
                "scripts[1].timeout_ms: expected a positive integer (milliseconds), found \"soon\"",
                "scripts[1].inputs.x.type: unknown type `strng`; did you mean `string`? (expected one of string, integer, number, boolean, path)",
                "scripts[1].retry_on[0]: VALIDATION failures are never retried: a retry cannot fix them",
                "scripts[1].retry_on[1]: exit codes run from 1 to 255, found 300",
                "scripts[2].id: duplicate id `a`: ids must be unique",
            ]
        );
    }

    #[test]
    fn an_expect_block_is_checked_against_its_entry() {
        use crate::expectations::Rule;
        let s = check(json!({"scripts": [
            {"id": "a", "path": "a.sh", "expect": {"every": "1h"}},
            {"id": "b", "path": "b.sh", "timeout_ms": 60000, "max_retries": 0,
             "expect": {"schedule": "@daily", "max_duration": "59s"}},
            {"id": "c", "path": "c.sh"}
        ]}))
        .unwrap();
        // The default grace: three attempts of 30 s and two backoffs of 10 s at most.
        let cadence = s[0].expect.as_ref().unwrap().cadence.as_ref().unwrap();
        assert_eq!(
            cadence.rule,
            Rule::Every(std::time::Duration::from_secs(3600))
        );
        assert_eq!(cadence.grace, std::time::Duration::from_secs(110));
        let b = s[1].expect.as_ref().unwrap();
        assert_eq!(
            b.cadence.as_ref().unwrap().grace,
            std::time::Duration::from_secs(60)
        );
        assert_eq!(s[2].expect, None);
        assert!(!serde_json::to_value(&s[2])
            .unwrap()
            .as_object()
            .unwrap()
            .contains_key("expect"));

        let errs = check(json!({"scripts": [
            {"id": "a", "path": "a.sh", "timeout_ms": 60000, "expect": {"max_duration": "1m"}},
            {"id": "b", "path": "b.sh", "timeout_ms": 0, "expect": {"max_duration": "1m"}},
            {"id": "c", "path": "c.sh", "expect": {"every": "1h", "max_duration": "30s"}}
        ]}))
        .unwrap_err();
        assert_eq!(
            errs,
            [
                "scripts[0].expect.max_duration: 1m is not below the script's timeout_ms (60000 ms): an attempt is stopped at its timeout before it could be overdue; make max_duration shorter or timeout_ms longer",
                "scripts[1].timeout_ms: expected a positive integer (milliseconds), found 0",
                "scripts[2].expect.max_duration: 30s is not below the script's timeout_ms (30000 ms): an attempt is stopped at its timeout before it could be overdue; make max_duration shorter or timeout_ms longer",
            ],
            "a bad timeout is not reported twice; the default one is compared"
        );
    }

    #[test]
    fn a_run_schedule_is_checked_and_implies_its_expectations() {
        use crate::expectations::Rule;
        let s = check(json!({"scripts": [
            {"id": "a", "path": "a.sh", "timeout_ms": 2000, "max_retries": 0,
             "inputs": {"n": {"type": "integer", "required": true}},
             "run_schedule": {"cron": "*/2 * * * * *", "jitter": "1s", "inputs": {"n": "3"}}},
            {"id": "b", "path": "b.sh", "run_schedule": {"cron": "@daily"},
             "expect": {"every": "2d", "failures_in_a_row": 2}},
            {"id": "c", "path": "c.sh", "run_schedule": {"cron": "@daily"},
             "expect": {"grace": "5m"}}
        ]}))
        .unwrap();
        let a = s[0].expect.as_ref().unwrap().cadence.as_ref().unwrap();
        let Rule::Schedule(sched) = &a.rule else {
            panic!("{a:?}")
        };
        assert_eq!(sched.pattern(), "*/2 * * * * *");
        assert_eq!(
            a.grace,
            std::time::Duration::from_secs(3),
            "timeout plus jitter"
        );
        let b = s[1].expect.as_ref().unwrap();
        assert_eq!(
            b.cadence.as_ref().unwrap().rule,
            Rule::Every(std::time::Duration::from_secs(2 * 86_400)),
            "an expect cadence of its own stays"
        );
        let c = s[2].expect.as_ref().unwrap().cadence.as_ref().unwrap();
        assert_eq!(c.grace, std::time::Duration::from_secs(300));

        let errs = check(json!({"scripts": [
            {"id": "a", "path": "a.sh",
             "inputs": {"count": {"type": "integer"}, "who": {"required": true}},
             "run_schedule": {"cron": "* * * * *", "inputs": {"cont": 1, "count": "many"}}},
            {"id": "b", "path": "b.sh", "run_schedule": {"cron": "* * * * *", "inputs": {"x": 1}}}
        ]}))
        .unwrap_err();
        assert_eq!(
            errs,
            [
                "scripts[0].run_schedule.inputs.cont: the script declares no input `cont`; did you mean `count`?",
                "scripts[0].run_schedule.inputs.count: expected an integer value, found \"many\"",
                "scripts[0].run_schedule.inputs: missing required input `who`: give it here, as a request would",
                "scripts[1].run_schedule.inputs.x: the script declares no input `x` (the script declares no inputs)",
            ]
        );
    }

    #[test]
    fn the_longest_execution_counts_every_attempt_and_backoff() {
        let retry = RetryPolicy::default();
        assert_eq!(longest_execution(30_000, &retry).as_secs(), 110);
        let none = RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(longest_execution(5_000, &none).as_secs(), 5);
        assert_eq!(
            longest_execution(u64::MAX, &retry).as_millis(),
            u128::from(u64::MAX)
        );
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = Registry::parse("{\n  \"scripts\": [,]\n}", Path::new("r.json")).unwrap_err();
        let text = err.to_string();
        assert_eq!(text, "r.json:2:15: invalid JSON: expected value");
    }

    /// Found by the `registry` fuzz target: an empty file (or one that ends right after
    /// a newline) was reported at column 0.
    #[test]
    fn an_empty_file_is_a_syntax_error_at_a_real_column() {
        let err = Registry::parse("", Path::new("r.json")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "r.json:1:1: invalid JSON: EOF while parsing a value"
        );
        let err = Registry::parse("{\"scripts\": [\n", Path::new("r.json")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "r.json:2:1: invalid JSON: EOF while parsing a list"
        );
    }

    #[test]
    fn coerces_command_line_strings() {
        assert_eq!(coerce(InputType::Integer, &json!("42")), Ok(json!(42)));
        assert_eq!(coerce(InputType::Boolean, &json!("yes")), Ok(json!(true)));
        assert_eq!(coerce(InputType::Number, &json!("2.5")), Ok(json!(2.5)));
        assert!(coerce(InputType::Integer, &json!("4x")).is_err());
        assert!(coerce(InputType::Integer, &json!(1.5)).is_err());
    }
}
