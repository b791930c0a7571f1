//! Values that stand in for a secret rather than being one: `changeme`, `xxx`, `${VAR}`, `<password>`.

/// Whole values (compared case-insensitively) that documentation, templates
/// and defaults use where a secret would go.
const PLACEHOLDERS: &[&str] = &[
    "pass", "pwd", "pw", "secret", "token", "key", "apikey", "api_key", "value", "dummy", "test",
    "testing", "foo", "bar", "baz", "foobar", "todo", "tbd", "fixme", "none", "null", "nil",
    "true", "false", "yes", "no", "default",
];

/// Words that mark a value as a stand-in wherever they are in it:
/// `mysecretpassword`, `your_api_key_here`, `CHANGE_ME`.
const PLACEHOLDER_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "changeme",
    "change_me",
    "change-me",
    "changeit",
    "placeholder",
    "redacted",
    "example",
    "replace_me",
    "replace-me",
    "_here",
    "-here",
];

/// True when `value` is not a secret but a stand-in for one: empty, a
/// variable to expand (`$X`, `${X}`, `%(x)s`), a slot (`<password>`, `{{ token }}`),
/// masked (`xxx`, `****`, `…`), or a word from [`PLACEHOLDERS`] or [`PLACEHOLDER_WORDS`].
pub(super) fn is_placeholder(value: &str) -> bool {
    let value = value.trim();
    let Some(first) = value.chars().next() else {
        return true;
    };
    if matches!(first, '$' | '<' | '{' | '%' | '[') {
        return true;
    }
    if value.chars().all(|c| c == first)
        || value
            .chars()
            .all(|c| matches!(c, 'x' | 'X' | '*' | '.' | '…' | '-' | '_' | '#'))
    {
        return true;
    }
    let lower = value.to_lowercase();
    PLACEHOLDERS.contains(&lower.as_str())
        || lower.starts_with("your")
        || PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w))
}
