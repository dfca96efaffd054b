//! "Did you mean …?" suggestions for misspelt keys and values.

/// The candidate closest to `input` by edit distance, if it is close enough to be a plausible typo
/// (at most a third of the word wrong, and at least one character right), or if it differs only in
/// case or in `-`/`_`.
pub fn did_you_mean<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    close_matches(input, candidates).into_iter().next()
}

/// Every candidate close enough to `input` to be a plausible typo, by the rule of [`did_you_mean`],
/// closest first (candidates equally close keep their order).
pub fn close_matches<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let normalized = normalize(input);
    let limit = (input.chars().count() / 3).max(1);
    let mut close: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|candidate| {
            let distance = if normalize(candidate) == normalized { 0 } else { edit_distance(input, candidate) };
            (distance, candidate)
        })
        .filter(|&(distance, _)| distance <= limit)
        .collect();
    close.sort_by_key(|&(distance, _)| distance);
    close.into_iter().map(|(_, candidate)| candidate).collect()
}

fn normalize(s: &str) -> String {
    s.to_lowercase().replace('-', "_")
}

/// Optimal string alignment distance: Levenshtein plus adjacent transpositions, the most common typo.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: [&str; 5] = ["image", "build", "command", "depends_on", "wait"];

    #[test]
    fn suggests_close_typos() {
        assert_eq!(did_you_mean("imgae", KEYS), Some("image"));
        assert_eq!(did_you_mean("comand", KEYS), Some("command"));
        assert_eq!(did_you_mean("depends-on", KEYS), Some("depends_on"));
        assert_eq!(did_you_mean("Image", KEYS), Some("image"));
    }

    #[test]
    fn lists_every_close_match_closest_first() {
        let names = ["charges", "change", "Charge", "refund", "charge"];
        assert_eq!(close_matches("charge", names), ["Charge", "charge", "charges", "change"]);
        assert!(close_matches("xyz", names).is_empty());
    }

    #[test]
    fn stays_silent_when_nothing_is_close() {
        assert_eq!(did_you_mean("colour", KEYS), None);
        assert_eq!(did_you_mean("x", KEYS), None);
    }
}
