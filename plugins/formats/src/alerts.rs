//! What identifies an alert, the same for the host, alert rules and notifiers.
//!
//! An alert's identity is its type and its labels (the specialist is a label), never its
//! severity, value, message or times: the same condition seen again is the same alert,
//! whether it is warning or critical. The fingerprint is Prometheus' and Alertmanager's
//! (`model.LabelSet.Fingerprint`): FNV-1a 64 over the label names and values sorted by
//! name, each followed by the byte 255, with the type as the label `alertname`; written as
//! 16 lowercase hex digits.

/// The label an alert's type travels under (as in Prometheus and Alertmanager).
pub const ALERTNAME: &str = "alertname";
/// The label of the specialist an alert is about, when it has one.
pub const SPECIALIST: &str = "specialist";

/// The fingerprint of an alert of type `kind` about `specialist` (if any) with `labels`.
/// A `specialist` or `alertname` among `labels` is ignored: the arguments win.
pub fn fingerprint<'a>(
    kind: &str,
    specialist: Option<&str>,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut all: Vec<(&str, &str)> = labels
        .into_iter()
        .filter(|(k, _)| *k != ALERTNAME && *k != SPECIALIST)
        .collect();
    all.push((ALERTNAME, kind));
    if let Some(s) = specialist {
        all.push((SPECIALIST, s));
    }
    all.sort_unstable();
    all.dedup_by(|a, b| a.0 == b.0);
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for (name, value) in all {
        for part in [name, value] {
            for &b in part.as_bytes().iter().chain(&[255u8]) {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(PRIME);
            }
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_type_and_labels_in_any_order() {
        let a = fingerprint(
            "error_rate_high",
            Some("ops"),
            [("team", "a"), ("env", "x")],
        );
        let b = fingerprint(
            "error_rate_high",
            Some("ops"),
            [("env", "x"), ("team", "a")],
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(
            a,
            fingerprint(
                "error_rate_high",
                Some("dev"),
                [("team", "a"), ("env", "x")]
            )
        );
        assert_ne!(
            a,
            fingerprint("error_rate_high", None, [("team", "a"), ("env", "x")])
        );
        assert_ne!(
            a,
            fingerprint(
                "p95_duration_high",
                Some("ops"),
                [("team", "a"), ("env", "x")]
            )
        );
        // A specialist label and the argument are the same identity.
        assert_eq!(
            fingerprint("t", Some("ops"), []),
            fingerprint("t", Some("ops"), [("specialist", "other")])
        );
    }

    #[test]
    fn fingerprints_never_change_between_versions() {
        // Pinned: alert histories and Alertmanager silences keep them.
        assert_eq!(fingerprint("x", None, []), "d240efc3896bf266");
        assert_eq!(
            fingerprint(
                "error_rate_high",
                Some("api-ui-designer"),
                [("team", "web")]
            ),
            "ffe2bba7a942173d"
        );
    }
}
