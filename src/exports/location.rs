//! Where the journal is: `sqlite:PATH`, a PostgreSQL URL, or the default file; shown without its password.

use std::fmt;
use std::path::{Path, PathBuf};

/// A journal's place, as `--journal URL` / `STOWAGE_JOURNAL` names it.
#[derive(Clone, PartialEq, Eq)]
pub enum JournalLocation {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database; the URL may hold a password, which [`fmt::Display`] never shows.
    Postgres(PostgresUrl),
}

/// A `postgresql://` or `postgres://` URL, kept whole for connecting and shown without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    url: String,
}

/// A `--journal` value that names no journal stowage can open.
#[derive(Debug, thiserror::Error)]
#[error("`{shown}` is not a journal URL: {problem}")]
pub struct LocationError {
    /// The value, its password hidden.
    pub shown: String,
    pub problem: String,
}

impl JournalLocation {
    /// Parses `sqlite:PATH`, `postgresql://…` or `postgres://…`.
    pub fn parse(text: &str) -> Result<JournalLocation, LocationError> {
        let error = |problem: &str| LocationError {
            shown: redact(text),
            problem: problem.to_string(),
        };
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(error("it names no file (sqlite:PATH)"));
            }
            return Ok(JournalLocation::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgresql://") || text.starts_with("postgres://") {
            text.parse::<postgres::Config>()
                .map_err(|e| error(&redact(&e.to_string())))?;
            return Ok(JournalLocation::Postgres(PostgresUrl {
                url: text.to_string(),
            }));
        }
        Err(error(
            "it starts with neither sqlite: nor postgresql:// (or postgres://)",
        ))
    }

    /// The default journal: the SQLite file in the state folder `dir`.
    pub fn default_in(dir: &Path) -> JournalLocation {
        JournalLocation::Sqlite(dir.join(super::DB_FILE))
    }
}

impl fmt::Display for JournalLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalLocation::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            JournalLocation::Postgres(url) => url.fmt(f),
        }
    }
}

impl fmt::Debug for JournalLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JournalLocation({self})")
    }
}

impl PostgresUrl {
    /// The client configuration: the URL's, with the password from
    /// `PGPASSWORD` or the pgpass file when the URL has none, as libpq does.
    pub fn config(&self) -> Result<postgres::Config, LocationError> {
        let mut config: postgres::Config =
            self.url
                .parse()
                .map_err(|e: postgres::Error| LocationError {
                    shown: self.to_string(),
                    problem: redact(&e.to_string()),
                })?;
        if config.get_password().is_none() {
            let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
            let password = env("PGPASSWORD").or_else(|| {
                let file = env("PGPASSFILE")
                    .map(PathBuf::from)
                    .or_else(|| env("HOME").map(|home| Path::new(&home).join(".pgpass")))?;
                let text = std::fs::read_to_string(file).ok()?;
                pgpass_lookup(&text, &Target::of(&config))
            });
            if let Some(password) = password {
                config.password(password);
            }
        }
        if config.get_user().is_none()
            && let Some(user) = std::env::var("PGUSER").ok().filter(|u| !u.is_empty())
        {
            config.user(&user);
        }
        Ok(config)
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.url))
    }
}

/// `text` with the password of any `scheme://user:password@host` in it replaced by `***`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (before, after) = rest.split_at(start + 3);
        out.push_str(before);
        let authority_end = after.find(['/', '?', '#', ' ']).unwrap_or(after.len());
        let authority = &after[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &after[authority_end..];
    }
    out.push_str(rest);
    hide_password_parameter(&out)
}

/// `password=…` in a URL's query (libpq's other way to give one), hidden.
fn hide_password_parameter(text: &str) -> String {
    let Some(start) = text.find("password=") else {
        return text.to_string();
    };
    let value = start + "password=".len();
    let end = text[value..]
        .find(['&', ' ', '#'])
        .map_or(text.len(), |e| value + e);
    format!("{}***{}", &text[..value], &text[end..])
}

/// What a pgpass line is matched against.
struct Target {
    host: String,
    port: String,
    database: String,
    user: String,
}

impl Target {
    fn of(config: &postgres::Config) -> Target {
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                postgres::config::Host::Tcp(name) => name.clone(),
                postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let user = config.get_user().unwrap_or_default().to_string();
        Target {
            host,
            port: config.get_ports().first().unwrap_or(&5432).to_string(),
            database: config
                .get_dbname()
                .map_or_else(|| user.clone(), str::to_string),
            user,
        }
    }
}

/// The password of the first `host:port:database:user:password` line that
/// matches (`*` matches anything; `\:` and `\\` are escapes), as libpq reads it.
fn pgpass_lookup(text: &str, target: &Target) -> Option<String> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields = split_pgpass(line);
            let [host, port, database, user, password] = fields.as_slice() else {
                return None;
            };
            let matches = |field: &str, want: &str| field == "*" || field == want;
            (matches(host, &target.host)
                && matches(port, &target.port)
                && matches(database, &target.database)
                && matches(user, &target.user))
            .then(|| password.clone())
        })
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(field)) = (chars.next(), fields.last_mut()) {
                    field.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(field) = fields.last_mut() {
                    field.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_shown() {
        let url = "postgresql://worker:s3cr%40t@db.example.org:5433/stowage?sslmode=require";
        let location = JournalLocation::parse(url);
        let shown = location
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert_eq!(
            shown,
            "postgresql://worker:***@db.example.org:5433/stowage?sslmode=require"
        );
        assert!(!format!("{location:?}").contains("s3cr"));
        assert_eq!(
            redact("cannot reach postgres://u:pw@h/db and postgresql://h2/x?password=pw2&a=b"),
            "cannot reach postgres://u:***@h/db and postgresql://h2/x?password=***&a=b"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        let bad = JournalLocation::parse("mysql://u:pw@h/db").err();
        assert!(bad.is_some_and(|e| !e.to_string().contains("pw@")));
    }

    #[test]
    fn sqlite_paths_and_bad_urls() {
        assert_eq!(
            JournalLocation::parse("sqlite:/var/j.sqlite3").ok(),
            Some(JournalLocation::Sqlite("/var/j.sqlite3".into()))
        );
        assert_eq!(
            JournalLocation::parse("sqlite://rel/j.db").ok(),
            Some(JournalLocation::Sqlite("rel/j.db".into()))
        );
        assert!(JournalLocation::parse("sqlite:").is_err());
        assert!(JournalLocation::parse("/var/j.sqlite3").is_err());
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let target = Target {
            host: "db".into(),
            port: "5432".into(),
            database: "stowage".into(),
            user: "worker".into(),
        };
        let text = "# comment\nother:5432:*:worker:no\ndb:*:stowage:worker:pa\\:ss\\\\word\n*:*:*:*:fallback\n";
        assert_eq!(pgpass_lookup(text, &target).as_deref(), Some("pa:ss\\word"));
        assert_eq!(
            pgpass_lookup("*:*:*:*:any", &target).as_deref(),
            Some("any")
        );
        assert_eq!(pgpass_lookup("db:1:*:*:x", &target), None);
    }
}
