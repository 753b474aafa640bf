//! The plugin contract's versions: which `metaclaude:monitor` versions a manifest may
//! declare and this host binds.

use serde::Serialize;

use super::WIT_VERSION;

/// A published version of the `metaclaude:monitor` package, all of which this host binds
/// (`wit/`, `wit/deps/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum WitVersion {
    /// `metaclaude:monitor@0.1.0`: the first published contract, without the alert's life
    /// cycle or thresholds.
    #[serde(rename = "0.1.0")]
    V0_1,
    /// `metaclaude:monitor@0.2.0`: adds the alert's life cycle and the rules' thresholds.
    #[serde(rename = "0.2.0")]
    V0_2,
    /// `metaclaude:monitor@0.3.0`: an exporter's `render` takes the exposition format.
    #[serde(rename = "0.3.0")]
    V0_3,
    /// `metaclaude:monitor@0.4.0`: the `pusher` world and the `delivery` report.
    #[serde(rename = "0.4.0")]
    V0_4,
}

impl WitVersion {
    /// The version of `wit/monitor.wit` ([`WIT_VERSION`]), which new plugins are built
    /// against.
    pub const CURRENT: WitVersion = WitVersion::V0_4;
    /// What a manifest without `wit` declares ([`super::DEFAULT_WIT`]) and what the SDK's
    /// worlds but `pusher` (and so the default set) are built against: a plugin built
    /// against it lacks nothing it could use.
    pub const DEFAULT: WitVersion = WitVersion::V0_3;
    /// Every version this host binds, oldest first.
    pub const ALL: [WitVersion; 4] = [
        WitVersion::V0_1,
        WitVersion::V0_2,
        WitVersion::V0_3,
        WitVersion::V0_4,
    ];

    /// The version as WIT writes it (`"0.4.0"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            WitVersion::V0_1 => "0.1.0",
            WitVersion::V0_2 => "0.2.0",
            WitVersion::V0_3 => "0.3.0",
            WitVersion::V0_4 => "0.4.0",
        }
    }

    /// The published version a plugin's `declared` one is semver-compatible with: same
    /// major, for 0.x the same minor, and no newer patch than published (a plugin built
    /// against a newer version may import what this host does not provide).
    pub fn compatible(declared: &str) -> Result<WitVersion, WitVersionError> {
        let parse = |v: &str| -> Option<(u64, u64, u64)> {
            let mut parts = v.trim().split('.').map(|p| p.parse::<u64>().ok());
            let version = (
                parts.next()??,
                parts.next()??,
                parts.next().unwrap_or(Some(0))?,
            );
            parts.next().is_none().then_some(version)
        };
        let Some(theirs) = parse(declared) else {
            return Err(WitVersionError::NotAVersion {
                declared: declared.to_string(),
            });
        };
        WitVersion::ALL
            .into_iter()
            .find(|v| {
                let ours = parse(v.as_str()).expect("valid");
                if ours.0 == 0 {
                    theirs.0 == 0 && theirs.1 == ours.1 && theirs.2 <= ours.2
                } else {
                    theirs.0 == ours.0 && (theirs.1, theirs.2) <= (ours.1, ours.2)
                }
            })
            .ok_or_else(|| WitVersionError::Incompatible {
                declared: declared.to_string(),
            })
    }
}

/// A `metaclaude:monitor` version this host cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitVersionError {
    /// The imported version is not `MAJOR.MINOR[.PATCH]` in numbers.
    #[error("`{declared}` is not a version such as {WIT_VERSION}")]
    NotAVersion {
        /// The version as the component's import names it.
        declared: String,
    },
    /// No version this host implements is semver-compatible with it.
    #[error(
        "the plugin was built against metaclaude:monitor@{declared}, but this host implements {}, none semver-compatible with it: rebuild the plugin against wit/ of this host (@{WIT_VERSION}) or use a newer host",
        known_versions()
    )]
    Incompatible {
        /// The version as the component's import names it.
        declared: String,
    },
}

/// The versions this host binds, for people: `0.1.0, 0.2.0, 0.3.0 and 0.4.0`.
fn known_versions() -> String {
    let all = WitVersion::ALL.map(|v| v.as_str());
    match all.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Accepts versions semver-compatible with one this host implements ([`WitVersion`]).
pub fn check_wit_version(declared: &str) -> Result<(), WitVersionError> {
    WitVersion::compatible(declared).map(|_| ())
}
