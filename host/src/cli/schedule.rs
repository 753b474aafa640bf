//! `metaclaude schedule list`: the scheduled scripts of a running server.

use std::process::ExitCode;

use anyhow::Context;
use metaclaude::client;
use serde_json::Value;

use super::args::ScheduleCommand;
use super::{alerts, render};

pub fn schedule(command: ScheduleCommand) -> anyhow::Result<ExitCode> {
    match command {
        ScheduleCommand::List { server, json } => {
            let (url, token) = alerts::target(&server)?;
            let body = client::get(&url, "/api/v1/schedules", token.as_deref())?;
            let v: Value =
                serde_json::from_str(&body).context("the server's answer is not JSON")?;
            if json {
                outln!("{v}")?;
            } else {
                out!("{}", render::schedules(&v, &url))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
