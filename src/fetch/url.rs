//! Small URL helpers for fetchers: validation before a URL is handed to a transport, and
//! redaction of credentials before a URL appears in a message.

use super::FetchError;

/// Check that `url` can be passed to a transport: non-empty and without whitespace or
/// control characters (which no valid URL contains, and which could split headers or
/// arguments). Nothing else is checked; the transport decides whether it understands the URL.
pub fn validate_url(url: &str) -> Result<(), FetchError> {
    if url.is_empty() {
        return Err(FetchError::Transport("empty URL".into()));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FetchError::Transport(format!(
            "refusing URL with whitespace or control characters: {:?}",
            redact_url(url)
        )));
    }
    Ok(())
}

/// The `user[:password]` part of `scheme://user:password@host/...`, if any.
pub fn userinfo(url: &str) -> Option<&str> {
    let start = url.find("://")? + 3;
    let authority_len = url[start..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - start);
    let authority = &url[start..start + authority_len];
    let at = authority.rfind('@')?;
    Some(&authority[..at])
}

/// `url` with any `user:password@` removed from its authority, for messages.
pub fn redact_url(url: &str) -> String {
    match (userinfo(url), url.find("://")) {
        (Some(info), Some(i)) => {
            let start = i + 3;
            format!("{}{}", &url[..start], &url[start + info.len() + 1..])
        }
        _ => url.to_string(),
    }
}

/// The scheme of `url`, lower-cased (`http`, `https`, `file`, ...), if it has one.
pub fn scheme(url: &str) -> Option<String> {
    let colon = url.find(':')?;
    let s = &url[..colon];
    let mut chars = s.chars();
    let first = chars.next()?;
    if first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
    {
        Some(s.to_ascii_lowercase())
    } else {
        None
    }
}

/// True for `http:` and `https:` URLs (the only ones whose responses carry HTTP headers).
pub fn is_http(url: &str) -> bool {
    matches!(scheme(url).as_deref(), Some("http" | "https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(redact_url("http://u:p@h/x@y"), "http://h/x@y");
        assert_eq!(redact_url("https://a@b@h:8/"), "https://h:8/");
        assert_eq!(redact_url("http://h/p?u=a@b"), "http://h/p?u=a@b");
        assert_eq!(redact_url("http://h"), "http://h");
        assert_eq!(redact_url("ftp://u:p@h"), "ftp://h");
        assert_eq!(redact_url("no scheme@x"), "no scheme@x");
        assert_eq!(userinfo("http://u:p@h/"), Some("u:p"));
        assert_eq!(userinfo("http://h/"), None);
    }

    #[test]
    fn validation() {
        assert!(validate_url("http://h/a;b$(c)`d`").is_ok());
        for bad in [
            "",
            "http://h/a b",
            "http://h/a\nb",
            "http://h/\t",
            "http://h/\u{7f}",
        ] {
            assert!(validate_url(bad).is_err(), "{bad:?}");
        }
        let e = validate_url("http://user:pw@h/ x").unwrap_err().to_string();
        assert!(!e.contains("pw"), "{e}");
    }

    #[test]
    fn schemes() {
        assert!(is_http("http://h/"));
        assert!(is_http("HTTPS://h/"));
        assert!(!is_http("file:///x"));
        assert!(!is_http("/x:y"));
        assert_eq!(scheme("c:foo").as_deref(), Some("c"));
        assert_eq!(scheme("1x:foo"), None);
        assert_eq!(scheme("nocolon"), None);
    }
}
