//! The component glue: the sink's state in the instance, the events handed over by the
//! host made into lines and written.

use std::cell::RefCell;

use chrono::{DateTime, TimeZone, Utc};
use metaclaude_plugin_sdk::category_name;
use metaclaude_plugin_sdk::types::{Event, LifecycleKind};
use metaclaude_plugin_sdk::{export_sink, sink::Guest};

use crate::writer::LogWriter;
use crate::{finished_line, lifecycle_line, line_in_place, parse_config, FinishedLine};

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

struct State {
    writer: LogWriter,
    debug: bool,
}

/// A log line, checked and ready to be written.
pub enum LogLine<'a> {
    /// A `finished` event's, written straight into the writer's queue.
    Finished(FinishedLine<'a>),
    /// Another event's, at level DEBUG (rare: made as a string of its own).
    Lifecycle(String),
}

impl LogLine<'_> {
    /// Appends the line (without its newline) to `out`.
    pub fn write(&self, out: &mut String) {
        match self {
            LogLine::Finished(line) => line.write(out),
            LogLine::Lifecycle(line) => out.push_str(line),
        }
    }
}

/// The log line for one event (`None` when the level filters it out): a `finished`
/// event's from its JSON and its record's figures ([`finished_line`]), another's at level
/// DEBUG ([`lifecycle_line`]).
pub fn log_line(
    event: &Event,
    debug: bool,
) -> Result<Option<(LogLine<'_>, DateTime<Utc>)>, String> {
    if event.kind != LifecycleKind::Finished {
        return if debug {
            lifecycle_line(&event.json).map(|(line, at)| Some((LogLine::Lifecycle(line), at)))
        } else {
            Ok(None)
        };
    }
    let head = event
        .result
        .as_ref()
        .ok_or_else(|| "finished event without a result".to_string())?;
    let finished_at = Utc
        .timestamp_opt(head.finished_at.seconds, head.finished_at.nanoseconds)
        .single()
        .ok_or_else(|| "finished event with an impossible finished_at".to_string())?;
    let category = head
        .error_details
        .as_ref()
        .map(|e| category_name(e.category));
    let line = finished_line(
        &event.json,
        finished_at,
        head.success,
        head.retries,
        category,
    )?;
    Ok(Some((LogLine::Finished(line), finished_at)))
}

/// Problems that did not stop logging (a failed compression), as the host's warnings.
fn report_warnings(writer: &mut LogWriter) {
    for warning in writer.warnings.drain(..) {
        metaclaude_plugin_sdk::warn!("{warning}");
    }
}

struct LogSink;

impl Guest for LogSink {
    fn init(config: String) -> Result<(), String> {
        let (policy, debug, dir) = parse_config(&config)?;
        let mut writer = LogWriter::open(&dir, policy, Utc::now())
            .map_err(|e| format!("cannot open the log in {dir}: {e} (is the directory granted in capabilities.dirs?)"))?;
        report_warnings(&mut writer);
        STATE.with_borrow_mut(|s| *s = Some(State { writer, debug }));
        Ok(())
    }

    fn handle_batch(mut events: Vec<Event>) -> Result<(), String> {
        STATE.with_borrow_mut(|state| {
            let state = state.as_mut().ok_or("not initialised")?;
            for event in &mut events {
                if event.json.is_empty() {
                    return Err(
                        "the host sent no event JSON: set event_json = true in plugin.toml".into(),
                    );
                }
                let Some((line, at)) = log_line(event, state.debug)? else {
                    continue;
                };
                let in_place = match &line {
                    LogLine::Finished(finished) => finished.in_place(&event.json),
                    LogLine::Lifecycle(_) => None,
                };
                let Some((head, members_at)) = in_place else {
                    state.writer.append_with(at, |out| line.write(out));
                    continue;
                };
                drop(line);
                // A long line leaves alone: what is queued goes first (should that fail,
                // the line is queued behind it, copied, and the batch's flush says why).
                if !state.writer.is_idle() {
                    let _ = state.writer.flush(false);
                    report_warnings(&mut state.writer);
                }
                let (text, start) =
                    line_in_place(std::mem::take(&mut event.json), &head, members_at);
                state.writer.append_in_place(at, text, start);
            }
            // One write per batch: a crash leaves at most an incomplete last line.
            let written = state.writer.flush(false);
            report_warnings(&mut state.writer);
            written.map_err(|e| match state.writer.dropped_lines {
                0 => format!("{e} (the lines stay queued and are written once it succeeds)"),
                n => format!("{e} ({n} oldest queued lines dropped so far to bound memory)"),
            })
        })
    }

    fn flush() -> Result<(), String> {
        STATE.with_borrow_mut(|state| match state.as_mut() {
            Some(s) => {
                let flushed = s.writer.flush(true).map_err(|e| e.to_string());
                report_warnings(&mut s.writer);
                flushed
            }
            None => Ok(()),
        })
    }
}

export_sink!(LogSink);

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use serde_json::Value;

    use super::*;
    use metaclaude_plugin_sdk::types::{
        Datetime, ErrorCategory, ErrorDetails, ExecutionContext, ExecutionResult,
        MeasurementSource, ResourceUsage,
    };

    /// [`log_line`]'s line as text.
    fn line_text(event: &Event, debug: bool) -> Result<Option<(String, DateTime<Utc>)>, String> {
        let line = log_line(event, debug)?;
        Ok(line.map(|(line, at)| {
            let mut text = String::new();
            line.write(&mut text);
            (text, at)
        }))
    }

    /// The record the host hands over with the event `json`: its kind, and for a
    /// `finished` event the result's figures a line's head takes (the rest left empty).
    fn record(json: &str) -> Event {
        let v: Value = serde_json::from_str(json).unwrap();
        let time = |t: &Value| {
            let t = DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap();
            Datetime {
                seconds: t.timestamp(),
                nanoseconds: t.timestamp_subsec_nanos(),
            }
        };
        let kind = match v["kind"].as_str().unwrap() {
            "finished" => LifecycleKind::Finished,
            "started" => LifecycleKind::Started,
            other => panic!("{other}"),
        };
        let result = v.get("result").map(|r| {
            let source = MeasurementSource::None;
            ExecutionResult {
                execution_id: String::new(),
                script_id: String::new(),
                specialist: None,
                success: r["success"].as_bool().unwrap(),
                exit_code: None,
                signal: None,
                stdout: String::new(),
                stderr: String::new(),
                stdout_truncated: false,
                stderr_truncated: false,
                started_at: time(&r["finished_at"]),
                finished_at: time(&r["finished_at"]),
                attempts: Vec::new(),
                retries: r["retries"].as_u64().unwrap() as u32,
                inputs: Vec::new(),
                session_id: None,
                correlation_id: None,
                user: None,
                error_details: r["error_details"]["category"]
                    .as_str()
                    .map(|c| ErrorDetails {
                        category: match c {
                            "EXECUTION" => ErrorCategory::Execution,
                            "TIMEOUT" => ErrorCategory::Timeout,
                            other => panic!("{other}"),
                        },
                        message: String::new(),
                        context: ExecutionContext {
                            script_id: String::new(),
                            script_path: String::new(),
                            specialist: None,
                            exit_code: None,
                            signal: None,
                            attempt: 0,
                            extra: Vec::new(),
                        },
                        suggestions: Vec::new(),
                        stack_trace: None,
                    }),
                resource_usage: ResourceUsage {
                    memory_start_mb: 0.0,
                    memory_end_mb: 0.0,
                    peak_memory_mb: 0.0,
                    peak_memory_largest_process_mb: 0.0,
                    cpu_time_seconds: 0.0,
                    cpu_user_seconds: 0.0,
                    cpu_system_seconds: 0.0,
                    wall_time_seconds: 0.0,
                    memory_start_source: source,
                    memory_end_source: source,
                    peak_memory_source: source,
                    cpu_time_source: source,
                },
            }
        });
        Event {
            kind,
            timestamp: time(&v["timestamp"]),
            execution_id: String::new(),
            script_id: String::new(),
            specialist: None,
            session_id: None,
            correlation_id: None,
            user: None,
            attempt: 0,
            pid: None,
            error: None,
            retry_delay_ms: None,
            result,
            json: json.to_string(),
        }
    }

    #[test]
    fn finished_events_become_log_lines_with_levels() {
        let ev = r#"{"kind":"finished","timestamp":"2026-11-24T10:00:00.000001Z","execution_id":"X","script_id":"s","result":{"execution_id":"X","script_id":"s","success":true,"retries":1,"finished_at":"2026-11-24T10:00:00.000000Z","error_details":null}}"#;
        let (line, at) = line_text(&record(ev), false).unwrap().unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-24T10:00:00+00:00");
        let parsed: Value = serde_json::from_str(&line).expect("a log line is JSON");
        assert_eq!(parsed["retries"], 1);
        assert!(line.starts_with(r#"{"log_version":1,"timestamp":"2026-11-24T10:00:00.000000Z","level":"WARN","event":"finished","category":null,"execution_id":"X""#), "{line}");
        let started = r#"{"kind":"started","timestamp":"2026-11-24T10:00:00.000001Z","execution_id":"X","script_id":"s","attempt":1,"pid":5}"#;
        assert_eq!(line_text(&record(started), false).unwrap(), None);
        let (line, _) = line_text(&record(started), true).unwrap().unwrap();
        assert!(
            line.contains(r#""level":"DEBUG","event":"started""#),
            "{line}"
        );
    }

    /// The bytes of a whole line are pinned: the log's own fields in front, then the
    /// result's text exactly as the host wrote it (spacing, key order, escapes and all).
    #[test]
    fn a_finished_line_is_pinned_byte_for_byte() {
        let result = r#"{"execution_id":"01M867GB7E4RXCD1MDVQDG031H","script_id":"flaky","specialist":"examples","success":false,"exit_code":1,"signal":null,"stdout":"line \"one\"\n\u001b[31m","stderr":"","stdout_truncated":false,"stderr_truncated":true,"started_at":"2026-11-24T07:32:12.142169Z","finished_at":"2026-11-24T07:32:12.257616Z","attempts":[{"attempt":1,"success":false}],"retries":2,"inputs":{"n":1.0},"session_id":"s","correlation_id":null,"user":"ann","error_details":{"category":"EXECUTION","message":"exit 1"},"resource_usage":{"wall_time_seconds":0.1,"peak_memory_mb":2.5}}"#;
        let event = format!(
            r#"{{"kind":"finished","timestamp":"2026-11-24T07:32:12.300000Z","execution_id":"01M867GB7E4RXCD1MDVQDG031H","script_id":"flaky","result":{result}}}"#
        );
        let (line, _) = line_text(&record(&event), false).unwrap().unwrap();
        assert_eq!(
            line,
            r#"{"log_version":1,"timestamp":"2026-11-24T07:32:12.257616Z","level":"ERROR","event":"finished","category":"EXECUTION","execution_id":"01M867GB7E4RXCD1MDVQDG031H","script_id":"flaky","specialist":"examples","success":false,"exit_code":1,"signal":null,"stdout":"line \"one\"\n\u001b[31m","stderr":"","stdout_truncated":false,"stderr_truncated":true,"started_at":"2026-11-24T07:32:12.142169Z","finished_at":"2026-11-24T07:32:12.257616Z","attempts":[{"attempt":1,"success":false}],"retries":2,"inputs":{"n":1.0},"session_id":"s","correlation_id":null,"user":"ann","error_details":{"category":"EXECUTION","message":"exit 1"},"resource_usage":{"wall_time_seconds":0.1,"peak_memory_mb":2.5}}"#
        );
        // The head comes from the record; the members are the result's bytes as they
        // are, odd ones too: spacing inside, an empty object.
        let mut odd = record(&event);
        let head = r#"{"log_version":1,"timestamp":"2026-11-24T07:32:12.257616Z","level":"ERROR","event":"finished","category":"EXECUTION""#;
        odd.json =
            r#"{"kind":"finished","result":{ "execution_id" : "X" , "success" : true }}"#.into();
        let (line, _) = line_text(&odd, false).unwrap().unwrap();
        assert_eq!(
            line,
            format!(r#"{head}, "execution_id" : "X" , "success" : true }}"#)
        );
        odd.json = r#"{"kind":"finished","result":{ }}"#.into();
        let (line, _) = line_text(&odd, false).unwrap().unwrap();
        assert_eq!(line, format!("{head} }}"));
        // The host writes the result last; where a member follows it (which the face of
        // the text shows here), the JSON is read through.
        odd.json = r#"{"kind":"finished","result":{"success":true},"extra":1}"#.into();
        let (line, _) = line_text(&odd, false).unwrap().unwrap();
        assert_eq!(line, format!(r#"{head},"success":true}}"#));
        // A result in the record but not in the JSON, or JSON that is not, is refused.
        odd.json = r#"{"kind":"finished"}"#.into();
        let err = line_text(&odd, false).unwrap_err();
        assert!(err.contains("without a result"), "{err}");
        odd.json = r#"{"kind":"finished","result":{"#.into();
        let err = line_text(&odd, false).unwrap_err();
        assert!(err.starts_with("event JSON from the host"), "{err}");
        // A lifecycle line: the event's last members take the places of `kind` and
        // `timestamp` (serde_json's `remove` swaps with the last entry).
        let (line, _) = line_text(&record(r#"{"kind":"started","timestamp":"2026-11-24T07:32:12.142169Z","execution_id":"X","script_id":"s","attempt":1,"pid":5,"category":null}"#), true)
            .unwrap()
            .unwrap();
        assert_eq!(
            line,
            r#"{"log_version":1,"timestamp":"2026-11-24T07:32:12.142169Z","level":"DEBUG","event":"started","category":null,"pid":5,"execution_id":"X","script_id":"s","attempt":1}"#
        );
    }
}
