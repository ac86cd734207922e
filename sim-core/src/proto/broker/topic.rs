//! AMQP 0-9-1 topic-exchange matching, exactly as RabbitMQ does it.
//!
//! Keys are split on `.` into words; the empty key has no words at all, while `"a."` has
//! two (`"a"` and the empty word), as in RabbitMQ's `split_topic_key`. In a binding
//! pattern the word `*` matches exactly one word (the empty word included) and `#` matches
//! zero or more words; any other word, `a*` included, matches itself only. Matching is a
//! dynamic programme over (pattern word, key word), so repeated `#` never goes
//! exponential.

/// Whether a binding `pattern` matches a message's `routing_key`.
pub fn matches(pattern: &str, routing_key: &str) -> bool {
    let pattern = words(pattern);
    let key = words(routing_key);
    // reachable[j]: the pattern words consumed so far can match exactly key[..j].
    let mut reachable = vec![false; key.len() + 1];
    reachable[0] = true;
    for word in &pattern {
        let mut next = vec![false; key.len() + 1];
        match *word {
            "#" => {
                let mut any = false;
                for j in 0..=key.len() {
                    any |= reachable[j];
                    next[j] = any;
                }
            }
            "*" => next[1..=key.len()].copy_from_slice(&reachable[..key.len()]),
            literal => {
                for j in 0..key.len() {
                    next[j + 1] = reachable[j] && key[j] == literal;
                }
            }
        }
        reachable = next;
    }
    reachable[key.len()]
}

fn words(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    fn check(pattern: &str, matching: &[&str], not_matching: &[&str]) {
        for key in matching {
            assert!(matches(pattern, key), "`{pattern}` should match `{key}`");
        }
        for key in not_matching {
            assert!(
                !matches(pattern, key),
                "`{pattern}` should not match `{key}`"
            );
        }
    }

    #[test]
    fn a_literal_pattern_matches_only_the_same_words() {
        check(
            "a.b.c",
            &["a.b.c"],
            &["a.b", "a.b.c.d", "a.b.cc", "", "a.B.c"],
        );
    }

    #[test]
    fn star_matches_exactly_one_word() {
        check("*", &["a", "abc"], &["", "a.b"]);
        check("a.*", &["a.b", "a."], &["a", "a.b.c"]);
        check("*.b.*", &["a.b.c", ".b."], &["a.b", "b.c", "a.b.c.d"]);
    }

    #[test]
    fn hash_matches_zero_or_more_words() {
        check("#", &["", "a", "a.b.c", ".", ".."], &[]);
        check("a.#", &["a", "a.b", "a.b.c", "a."], &["b", "", "b.a"]);
        check("#.a", &["a", "b.a", "b.c.a", ".a"], &["a.b", ""]);
    }

    #[test]
    fn hash_in_the_middle_spans_any_number_of_words() {
        check(
            "a.#.b",
            &["a.b", "a.x.b", "a.x.y.z.b"],
            &["a", "b", "a.b.c", "x.a.b"],
        );
    }

    #[test]
    fn repeated_hashes_behave_like_one() {
        check("#.#", &["", "a", "a.b"], &[]);
        check("a.#.#.b", &["a.b", "a.x.b", "a.x.y.b"], &["a", "b.a"]);
        // Many hashes stay linear: this would take forever by backtracking.
        let pattern = "#.".repeat(60) + "z";
        assert!(!matches(&pattern, &"a.".repeat(60)));
    }

    #[test]
    fn the_empty_routing_key_has_no_words() {
        check("", &[""], &["a", "."]);
        check("*", &[], &[""]);
        check("#", &[""], &[]);
    }

    #[test]
    fn empty_words_are_words() {
        check("a..b", &["a..b"], &["a.b"]);
        check("a.*.b", &["a..b", "a.x.b"], &["a.b"]);
        check(".", &["."], &["", "a"]);
        check("*.*", &[".", "a.", ".a", "a.b"], &["a", ""]);
    }

    #[test]
    fn wildcards_only_count_as_whole_words() {
        check("a*", &["a*"], &["ab", "a"]);
        check("a#", &["a#"], &["a", "a.b"]);
        check("#a", &["#a"], &["a", "ba"]);
    }

    #[test]
    fn star_and_hash_combine() {
        check("*.#", &["a", "a.b", "a.b.c"], &[""]);
        check("#.*", &["a", "a.b"], &[""]);
        check("*.#.*", &["a.b", "a.b.c"], &["a", ""]);
    }
}
