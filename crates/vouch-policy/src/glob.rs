//! Image globs: `*` matches within one path segment, `**` across segments, `?` one
//! character other than `/`. Matched against the normalized repository (registry host and
//! path, no tag, no digest), e.g. `registry.example.com/models/*`.

use std::fmt;

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    One,
    Segment,
    Any,
}

impl Glob {
    /// Compile a glob. Errors name what is wrong.
    pub fn new(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the glob is empty".into());
        }
        if text.contains('@') {
            return Err("a glob matches repositories; remove the `@digest`".into());
        }
        if text.chars().any(char::is_whitespace) {
            return Err("a glob cannot contain spaces".into());
        }
        let mut tokens = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    if chars.peek() == Some(&'*') {
                        return Err("`***` is not a glob; use `**`".into());
                    }
                    tokens.push(Token::Any);
                }
                '*' => tokens.push(Token::Segment),
                '?' => tokens.push(Token::One),
                c => tokens.push(Token::Literal(c)),
            }
        }
        Ok(Self {
            text: text.to_owned(),
            tokens,
        })
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `repository` matches.
    pub fn matches(&self, repository: &str) -> bool {
        // Cheap rejection first: a glob's literal prefix (up to its first wildcard) must
        // start the repository. Most rules fail here, on every admission review.
        let prefix = self.text.find(['*', '?']).map_or(self.text.as_str(), |i| {
            self.text.get(..i).unwrap_or_default()
        });
        let Some(rest) = repository.strip_prefix(prefix) else {
            return false;
        };
        // The common shapes, without the general matcher: `PREFIX/*` and `PREFIX/**`.
        match self.text.get(prefix.len()..) {
            Some("") => return rest.is_empty(),
            Some("*") => return !rest.contains('/'),
            Some("**") => return true,
            _ => {}
        }
        let s: Vec<char> = repository.chars().collect();
        matches(&self.tokens, &s)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Iterative matcher with memo (tokens x input), no recursion depth issues.
fn matches(tokens: &[Token], s: &[char]) -> bool {
    // reachable[j]: the token prefix processed so far can end at input position j.
    let mut reachable = vec![false; s.len() + 1];
    if let Some(r) = reachable.first_mut() {
        *r = true;
    }
    let mut next = vec![false; s.len() + 1];
    for t in tokens {
        next.fill(false);
        for j in 0..=s.len() {
            if !reachable.get(j).copied().unwrap_or(false) {
                continue;
            }
            match t {
                Token::Literal(c) => {
                    if s.get(j) == Some(c) {
                        set(&mut next, j + 1);
                    }
                }
                Token::One => {
                    if s.get(j).is_some_and(|c| *c != '/') {
                        set(&mut next, j + 1);
                    }
                }
                Token::Segment => {
                    set(&mut next, j);
                    let mut k = j;
                    while s.get(k).is_some_and(|c| *c != '/') {
                        k += 1;
                        set(&mut next, k);
                    }
                }
                Token::Any => {
                    for k in j..=s.len() {
                        set(&mut next, k);
                    }
                }
            }
        }
        std::mem::swap(&mut reachable, &mut next);
    }
    reachable.get(s.len()).copied().unwrap_or(false)
}

fn set(v: &mut [bool], i: usize) {
    if let Some(x) = v.get_mut(i) {
        *x = true;
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn star_stays_in_one_segment() {
        let g = Glob::new("registry.example.com/models/*").unwrap();
        assert!(g.matches("registry.example.com/models/llm"));
        assert!(!g.matches("registry.example.com/models/team/llm"));
        assert!(!g.matches("registry.example.com/other/llm"));
        assert!(!g.matches("registry.example.com/models"));
    }

    #[test]
    fn double_star_crosses_segments() {
        let g = Glob::new("registry.example.com/**").unwrap();
        assert!(g.matches("registry.example.com/models/team/llm"));
        assert!(!g.matches("evil.example.com/registry.example.com/x"));
        let g = Glob::new("**/llm-?").unwrap();
        assert!(g.matches("a/b/llm-1"));
        assert!(!g.matches("a/b/llm-12"));
    }

    #[test]
    fn shortcuts_agree_with_the_general_matcher() {
        let inputs = [
            "r.io/m",
            "r.io/m/",
            "r.io/m/x",
            "r.io/m/x/y",
            "r.io/mx",
            "r.io",
            "",
            "r.io/m/**",
        ];
        for glob in ["r.io/m/*", "r.io/m/**", "r.io/m", "r.io/*", "r.io/**"] {
            let g = Glob::new(glob).unwrap();
            for input in inputs {
                let s: Vec<char> = input.chars().collect();
                assert_eq!(
                    g.matches(input),
                    super::matches(&g.tokens, &s),
                    "{glob} ~ {input}"
                );
            }
        }
    }

    #[test]
    fn bad_globs_are_refused() {
        assert!(Glob::new("").is_err());
        assert!(Glob::new("a/***").is_err());
        assert!(Glob::new("a@sha256:00").is_err());
    }
}
