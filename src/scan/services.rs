//! Tokens and webhooks of hosted services, each a fixed prefix (the anchor) and a body of a known shape.

use base64::Engine as _;

use super::bytes::{
    has_base62_crc32, is_alnum, is_b64, is_token, is_word, looks_generated, run, starts_token,
};
use super::placeholder::is_placeholder;

/// Which service's shape an anchor starts (or sits inside).
#[derive(Debug, Clone, Copy)]
pub(super) enum Service {
    SlackWebhook,
    DiscordWebhook,
    TeamsWebhook,
    Npm,
    HuggingFace,
    Stripe,
    SendGrid,
    GoogleApiKey,
    OpenAi,
    Anthropic,
    Shopify,
    AzureStorage,
    DockerAuth,
}

/// A token body: bytes of `class` (an alphabet of `symbols` characters),
/// `min..=max` of them, ending where the class ends, and generated.
struct Body {
    rule: &'static str,
    class: fn(u8) -> bool,
    symbols: usize,
    min: usize,
    max: usize,
}

impl Body {
    fn check(&self, line: &[u8], at: usize, end: usize) -> Option<&'static str> {
        let len = run(line, end, self.class);
        (starts_token(line, at, is_word)
            && (self.min..=self.max).contains(&len)
            && looks_generated(&line[end..end + len], self.symbols))
        .then_some(self.rule)
    }
}

fn is_alpha(b: u8) -> bool {
    b.is_ascii_alphabetic()
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// A body that could be a generated secret: not `XXXX…`, `0000…` or another placeholder.
fn is_random(body: &[u8]) -> bool {
    let mut seen = [false; 256];
    let distinct = body
        .iter()
        .filter(|b| !std::mem::replace(&mut seen[usize::from(**b)], true))
        .count();
    distinct > 3
}

/// Decides whether the anchor of `service` at `at..end` in `line` starts a real secret.
pub(super) fn check(service: Service, line: &[u8], at: usize, end: usize) -> Option<&'static str> {
    let body = |rule, class, symbols, min, max| {
        Body {
            rule,
            class,
            symbols,
            min,
            max,
        }
        .check(line, at, end)
    };
    match service {
        Service::SlackWebhook => slack_webhook(&line[end..]).then_some("slack-webhook"),
        Service::DiscordWebhook => discord_webhook(&line[end..]).then_some("discord-webhook"),
        Service::TeamsWebhook => {
            let len = run(line, end, |b| is_token(b) || b == b'@' || b == b'/');
            let path = &line[end..end + len];
            (len >= 80 && path.windows(17).any(|w| w == b"/IncomingWebhook/") && is_random(path))
                .then_some("teams-webhook")
        }
        // npm's tokens end in a CRC32 of the rest, as GitHub's do.
        Service::Npm => {
            let len = run(line, end, is_alnum);
            (starts_token(line, at, is_word)
                && len == 36
                && has_base62_crc32(&line[end..end + len]))
            .then_some("npm-token")
        }
        Service::HuggingFace => body("huggingface-token", is_alpha, 52, 34, 34),
        // Stripe's keys carry digits (today's begin with the account's `51…`);
        // names run together after `sk_live_` in a binary's strings carry none.
        Service::Stripe => {
            let len = run(line, end, is_alnum);
            if !line[end..end + len].iter().any(u8::is_ascii_digit) {
                return None;
            }
            body("stripe-key", is_alnum, 62, 24, 247)
        }
        Service::GoogleApiKey => body("google-api-key", is_token, 64, 35, 35),
        Service::Anthropic => body("anthropic-key", is_token, 64, 80, 200),
        Service::Shopify => body("shopify-token", is_hex, 16, 32, 32),
        Service::SendGrid => {
            let id = run(line, end, is_token);
            let key = run(line, end + id + 1, is_token);
            (starts_token(line, at, is_word)
                && id == 22
                && line.get(end + id) == Some(&b'.')
                && key == 43
                && looks_generated(&line[end..end + id], 64)
                && looks_generated(&line[end + id + 1..end + id + 1 + key], 64))
            .then_some("sendgrid-key")
        }
        Service::OpenAi => openai_key(line, at, end),
        Service::AzureStorage => azure_storage_key(&line[end..]),
        Service::DockerAuth => docker_auth(&line[end..]),
    }
}

/// `T…/B…/<secret>` after `hooks.slack.com/services/`, or a long path after
/// `/workflows/` or `/triggers/`. Slack's documentation writes
/// `T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX`: a placeholder.
fn slack_webhook(rest: &[u8]) -> bool {
    let path_len = run(rest, 0, |b| is_alnum(b) || b == b'/');
    let path = &rest[..path_len];
    if let Some(ids) = path.strip_prefix(b"services/") {
        let mut parts = ids.split(|b| *b == b'/');
        let (Some(team), Some(bot), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        return team.first() == Some(&b'T')
            && bot.first() == Some(&b'B')
            && team.len() >= 9
            && bot.len() >= 9
            && secret.len() >= 20
            && is_random(&team[1..])
            && looks_generated(secret, 62);
    }
    let body = path
        .strip_prefix(b"workflows/")
        .or_else(|| path.strip_prefix(b"triggers/"));
    body.is_some_and(|b| b.len() >= 40 && is_random(b))
}

/// `<id>/<token>` after `…/api/webhooks/`: an id of 17 to 20 digits and a token of 60 or more.
fn discord_webhook(rest: &[u8]) -> bool {
    let id = run(rest, 0, |b| b.is_ascii_digit());
    let token = run(rest, id + 1, is_token);
    (17..=20).contains(&id)
        && rest.get(id) == Some(&b'/')
        && token >= 60
        && looks_generated(&rest[id + 1..id + 1 + token], 64)
}

/// `T3BlbkFJ` ("OpenAI" in base64) inside a token that starts with `sk-`,
/// with 20 or more token characters on each side.
fn openai_key(line: &[u8], at: usize, end: usize) -> Option<&'static str> {
    let before = line[..at]
        .iter()
        .rev()
        .take_while(|b| is_token(**b))
        .count();
    let start = at - before;
    let after = run(line, end, is_token);
    (line[start..at].starts_with(b"sk-")
        && before >= 20
        && after >= 20
        && looks_generated(&line[at - 20..at], 64)
        && looks_generated(&line[end..end + after], 64))
    .then_some("openai-key")
}

/// The key after `AccountKey=` in an Azure connection string: 86 base64
/// characters and `==`. The storage emulator's key (Azurite's, published in
/// Microsoft's documentation) is not a secret.
fn azure_storage_key(rest: &[u8]) -> Option<&'static str> {
    const EMULATOR_KEY_START: &[u8] =
        b"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq";
    let len = run(rest, 0, is_b64);
    (len == 86
        && rest[len..].starts_with(b"==")
        && !rest.starts_with(EMULATOR_KEY_START)
        && looks_generated(&rest[..len], 64))
    .then_some("azure-storage-key")
}

/// `: "<base64 of user:password>"` after `"auth"`, as in Docker's
/// `config.json` and podman's `auth.json`: a real password, not a placeholder.
fn docker_auth(rest: &[u8]) -> Option<&'static str> {
    let blank = |b: u8| b == b' ' || b == b'\t';
    let mut i = run(rest, 0, blank);
    (rest.get(i) == Some(&b':')).then_some(())?;
    i += 1;
    i += run(rest, i, blank);
    (rest.get(i) == Some(&b'"')).then_some(())?;
    i += 1;
    let len = run(rest, i, |b| is_b64(b) || b == b'=');
    (rest.get(i + len) == Some(&b'"') && len >= 8).then_some(())?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&rest[i..i + len])
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    (!user.is_empty() && password.len() >= 3 && !is_placeholder(password))
        .then_some("docker-config-auth")
}
