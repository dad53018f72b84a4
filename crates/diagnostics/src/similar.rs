//! "Did you mean …?" for a misspelt key or value: the valid word that is a
//! few single-character edits away, so every loader makes the same guess.

/// Words longer than this are not compared (the cost is quadratic).
const MAX_LEN: usize = 128;

/// The candidate `word` is most probably a misspelling of: the nearest by
/// single-character edits (ignoring case), when it is at most one edit away
/// per four characters of `word` (at least one, at most three). Ties go to
/// the first candidate. `None` when nothing is that close, or when `word`
/// is itself a candidate.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let allowed = (word.chars().count() / 4).clamp(1, 3);
    let lower = word.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == word {
            return None;
        }
        let Some(edits) = edit_distance(&lower, &candidate.to_lowercase()) else {
            continue;
        };
        if edits <= allowed && best.is_none_or(|(b, _)| edits < b) {
            best = Some((edits, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Edit distance in characters, a swap of two neighbours counting as one
/// edit (`flie` is one edit from `file`), or `None` when either text is
/// too long to compare.
pub fn edit_distance(a: &str, b: &str) -> Option<usize> {
    if a.len() > MAX_LEN || b.len() > MAX_LEN {
        return None;
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Rows i-1 and i-2 of the table, for the swap.
    let mut before: Vec<usize> = Vec::new();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let replace = prev
                .get(j)
                .map_or(usize::MAX, |p| p.saturating_add(usize::from(ca != cb)));
            let delete = prev.get(j + 1).map_or(usize::MAX, |p| p.saturating_add(1));
            let insert = cur.last().map_or(usize::MAX, |p| p.saturating_add(1));
            let mut best = replace.min(delete).min(insert);
            let swapped = i > 0 && j > 0 && a.get(i - 1) == Some(cb) && b.get(j - 1) == Some(ca);
            if swapped && let Some(p) = before.get(j - 1) {
                best = best.min(p.saturating_add(1));
            }
            cur.push(best);
        }
        before = std::mem::replace(&mut prev, cur);
    }
    prev.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_words_are_suggested_and_far_ones_are_not() {
        let keys = ["listen", "file", "reload_interval_seconds", "mode"];
        assert_eq!(closest("lisen", keys), Some("listen"));
        assert_eq!(closest("Listen", keys), Some("listen"));
        assert_eq!(closest("flie", keys), Some("file"));
        assert_eq!(
            closest("reload_interval_second", keys),
            Some("reload_interval_seconds")
        );
        assert_eq!(closest("reload_seconds", keys), None);
        assert_eq!(closest("port", keys), None);
        assert_eq!(closest("listen", keys), None);
        assert_eq!(edit_distance("kitten", "sitting"), Some(3));
        assert_eq!(edit_distance("flie", "file"), Some(1));
    }
}
