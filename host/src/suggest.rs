//! "Did you mean" helpers shared by every parser that reports unknown names.

/// The candidates closest to `name`, best first, that are plausibly a misspelling of it.
pub fn closest<'a, I>(name: &str, candidates: I, max: usize) -> Vec<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = name.to_lowercase();
    let mut scored: Vec<(f64, &'a str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let distance = strsim::damerau_levenshtein(&lower, &c.to_lowercase());
            let longest = lower.chars().count().max(c.chars().count()).max(1);
            let similarity = 1.0 - distance as f64 / longest as f64;
            let contains = !lower.is_empty() && (c.contains(&lower) || lower.contains(c));
            (similarity >= 0.5 || distance <= 2 || contains).then_some((similarity, c))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.into_iter().take(max).map(|(_, c)| c).collect()
}

/// `; did you mean `x`?` or the empty string.
pub fn did_you_mean<'a, I>(name: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match closest(name, candidates, 1).first() {
        Some(best) => format!("; did you mean `{best}`?"),
        None => String::new(),
    }
}

/// `FILE: N problem(s):` followed by one indented line per problem: how every config
/// file the host reads (registry, plugin manifests) reports all its problems at once.
pub fn problem_list<T: std::fmt::Display>(file: &std::path::Path, problems: &[T]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
    format!(
        "{}: {} problem{}:\n{}",
        file.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_misspellings_and_ignores_strangers() {
        let keys = ["timeout_ms", "memory_limit_mb", "specialist"];
        assert_eq!(closest("timout_ms", keys, 2), vec!["timeout_ms"]);
        assert_eq!(closest("specialst", keys, 2), vec!["specialist"]);
        assert!(closest("zzzzzz", keys, 2).is_empty());
        assert_eq!(
            did_you_mean("memory_limit", keys),
            "; did you mean `memory_limit_mb`?"
        );
    }
}
