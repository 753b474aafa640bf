//! `${VAR}` and `${VAR:-default}`: how manifests (and grants) take values from the
//! host's environment. Defined once here; `manifest` reports its problems by field,
//! `grants` expands the operator's own written forms.

/// Why a string cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarError {
    /// `${` without its `}`.
    Unclosed,
    /// A variable without a default that is unset (or empty).
    Unset(String),
}

/// `s` with every `${VAR}` replaced by `env(VAR)` and every `${VAR:-default}` by
/// `env(VAR)` or, when that is unset or empty, `default`. `seen` is told every variable
/// named, in order, whether set or not.
pub fn expand(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
    seen: &mut dyn FnMut(&str),
) -> Result<String, VarError> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(VarError::Unclosed)?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        seen(name);
        match (env(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(VarError::Unset(name.to_string())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_values_and_defaults_and_names_every_variable() {
        let env = |n: &str| (n == "A").then(|| "x".to_string());
        let mut names = Vec::new();
        let got = expand("${A}/${B:-d}/${C:-}", &env, &mut |n| {
            names.push(n.to_string())
        });
        assert_eq!(got, Ok("x/d/".to_string()));
        assert_eq!(names, ["A", "B", "C"]);
        assert_eq!(
            expand("${B}", &env, &mut |_| {}),
            Err(VarError::Unset("B".into()))
        );
        assert_eq!(expand("${A", &env, &mut |_| {}), Err(VarError::Unclosed));
    }
}
