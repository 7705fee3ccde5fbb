//! Resolving the `URL:` values of a control file against the URL of the `.zsync` (RFC 3986 §5.2).

/// The scheme of an absolute URL (`http` of `http://h/x`), if `s` starts with one.
fn scheme_len(s: &str) -> Option<usize> {
    let colon = s.find(':')?;
    let scheme = &s[..colon];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(colon)
}

/// True when `s` is an absolute URL (has a scheme).
pub fn is_absolute(s: &str) -> bool {
    scheme_len(s).is_some()
}

/// Remove `.` and `..` segments from a path (RFC 3986 §5.2.4).
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let absolute = path.starts_with('/');
    let segs: Vec<&str> = path.split('/').collect();
    for (k, seg) in segs.iter().enumerate() {
        let last = k == segs.len() - 1;
        match *seg {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > usize::from(absolute) {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut r = out.join("/");
    if absolute && !r.starts_with('/') {
        r.insert(0, '/');
    }
    r
}

/// Split `scheme://authority` from the rest (path?query#fragment).
fn split_authority(url: &str) -> (&str, &str) {
    let s = scheme_len(url).map_or(0, |c| c + 1);
    if url[s..].starts_with("//") {
        let after = s + 2;
        let end = url[after..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |k| after + k);
        (&url[..end], &url[end..])
    } else {
        (&url[..s], &url[s..])
    }
}

/// Resolve `reference` against the absolute URL `base`. Returns `None` when `reference` is
/// relative and `base` is not absolute.
pub fn resolve(base: &str, reference: &str) -> Option<String> {
    if is_absolute(reference) {
        return Some(reference.to_string());
    }
    let scheme = scheme_len(base)?;
    let base = base.split('#').next().unwrap_or(base);
    if let Some(rest) = reference.strip_prefix("//") {
        return Some(format!("{}//{rest}", &base[..=scheme]));
    }
    let (auth, rest) = split_authority(base);
    let (base_path, base_query) = match rest.find('?') {
        Some(q) => (&rest[..q], &rest[q..]),
        None => (rest, ""),
    };
    let (ref_path, ref_tail) = match reference.find(['?', '#']) {
        Some(k) => (&reference[..k], &reference[k..]),
        None => (reference, ""),
    };
    if ref_path.is_empty() {
        let tail = if ref_tail.starts_with('?') {
            ref_tail.to_string()
        } else {
            format!("{base_query}{ref_tail}")
        };
        return Some(format!("{auth}{base_path}{tail}"));
    }
    let merged = if ref_path.starts_with('/') {
        ref_path.to_string()
    } else if base_path.is_empty() && auth.contains("//") {
        format!("/{ref_path}")
    } else {
        match base_path.rfind('/') {
            Some(k) => format!("{}{ref_path}", &base_path[..=k]),
            None => ref_path.to_string(),
        }
    };
    Some(format!("{auth}{}{ref_tail}", remove_dot_segments(&merged)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3986_examples() {
        let b = "http://a/b/c/d;p?q";
        for (r, want) in [
            ("g:h", "g:h"),
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q#s"),
            ("g#s", "http://a/b/c/g#s"),
            (";x", "http://a/b/c/;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            ("./../g", "http://a/b/g"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
        ] {
            assert_eq!(resolve(b, r).as_deref(), Some(want), "{r}");
        }
    }

    #[test]
    fn zsync_cases() {
        assert_eq!(
            resolve("http://h/d/f.zsync?a=1&b=2", "f").unwrap(),
            "http://h/d/f"
        );
        assert_eq!(resolve("http://h", "f").unwrap(), "http://h/f");
        assert_eq!(resolve("http://h?q", "/x").unwrap(), "http://h/x");
        assert_eq!(
            resolve("https://h:8/a/b.zsync", "../c/f.AppImage").unwrap(),
            "https://h:8/c/f.AppImage"
        );
        assert_eq!(
            resolve("file:///tmp/x/f.zsync", "f").unwrap(),
            "file:///tmp/x/f"
        );
        assert_eq!(resolve("relative/base", "f"), None);
        assert!(is_absolute("http://x") && !is_absolute("f") && !is_absolute("../x:y"));
    }
}
