use base64::Engine as _;

use super::bytes;
use super::*;

fn scan_with(path: &str, content: &[u8], chunk: usize, names: &[&str]) -> Vec<String> {
    let rules = ScanRules {
        secret_names: names.iter().map(|s| s.to_string()).collect(),
    };
    let mut scanner = Scanner::new(&rules);
    let mut file = scanner.file(path.as_bytes());
    for piece in content.chunks(chunk.max(1)) {
        file.feed(piece);
    }
    file.finish();
    scanner
        .into_findings()
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Findings for `content` in a file at `path`, the same whatever the chunk size.
fn scan(path: &str, content: &[u8]) -> Vec<String> {
    let whole = scan_with(path, content, content.len(), &[]);
    for chunk in [1, 2, 3, 7, 64] {
        assert_eq!(
            scan_with(path, content, chunk, &[]),
            whole,
            "chunks of {chunk} bytes"
        );
    }
    whole
}

fn rules_of(path: &str, content: &str) -> Vec<String> {
    scan(path, content.as_bytes())
        .into_iter()
        .map(|f| f.rsplit(": ").next().unwrap_or_default().to_string())
        .collect()
}

// Test tokens are assembled at run time, so this source file does not
// itself look like it holds secrets to scanners (stowage's own included).
fn tok(prefix: &str, body: &str, n: usize) -> String {
    format!("{prefix}{}", body.repeat(n))
}

#[test]
fn each_content_rule_has_a_positive_and_a_negative() {
    let begin = "-----BEGIN";
    let cases: Vec<(&str, String, String)> = vec![
        (
            "private-key",
            format!("{begin} RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n"),
            format!("{begin} PUBLIC KEY-----\nMIIBIjANBgkqhkiG\n"),
        ),
        (
            "private-key",
            format!("{{\"key\": \"{begin} EC PRIVATE KEY-----\\nMHcCAQEE\"}}\n"),
            format!("MARKER = \"{begin} EC PRIVATE KEY-----\"\n"),
        ),
        (
            "openssh-private-key",
            format!("{begin} OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"),
            format!("{begin} OPENSSH PUBLIC KEY-----\n"),
        ),
        (
            "openssh-private-key",
            format!("  {}\n", tok("b3BlbnNzaC1rZXktdjE", "AAAAABG5vbmU", 5)),
            format!(
                "BODY = \"{}\"\n",
                tok("b3BlbnNzaC1rZXktdjE", "AAAAABG5vbmU", 5)
            ),
        ),
        (
            "aws-access-key-id",
            format!("key = \"{}\"\n", tok("AKIA", "Q3ZT7WX2", 2)),
            format!("key = \"{}\"\n", tok("AKIA", "Q3ZT", 3)),
        ),
        (
            "aws-access-key-id",
            format!("{}\n", tok("ASIA", "Z7WX2QY3", 2)),
            format!("{}\n", tok("AKIAIOSFODNN7", "EXAMPLE", 1)),
        ),
        (
            "aws-secret-access-key",
            format!("aws_secret_access_key = {}\n", body(B64, 40)),
            "aws_secret_access_key = os.environ['AWS_SECRET_ACCESS_KEY']\n".to_string(),
        ),
        (
            "aws-secret-access-key",
            format!("\"SecretAccessKey\": \"{}\"\n", body(B64, 40)),
            format!("\"SecretAccessKey\": \"{}\"\n", body(B64, 30)),
        ),
        (
            "gcp-service-account-key",
            format!("  \"private_key\": \"{begin} PRIVATE KEY-----\\nMIIEvQ\\n\",\n"),
            "  \"private_key\": null,\n".to_string(),
        ),
        (
            "github-token",
            format!("token={}\n", checksummed("ghp_")),
            format!("token={}\n", bad_checksum(&checksummed("ghp_"))),
        ),
        (
            "github-token",
            format!("github_pat_{}_{}\n", body(ALNUM, 22), body(ALNUM, 59)),
            format!("my_github_pat_{}\n", "x".repeat(60)),
        ),
        (
            "gitlab-token",
            format!("{}\n", tok("glpat-", &body(TOKEN, 20), 1)),
            "glpat-short\n".to_string(),
        ),
        (
            "docker-hub-token",
            format!("{}\n", tok("dckr_pat_", &body(TOKEN, 27), 1)),
            "dckr_pat_\n".to_string(),
        ),
        (
            "slack-token",
            format!(
                "{}\n",
                tok("xoxb-1234567890-1234567890-", &body(ALNUM, 24), 1)
            ),
            "xoxb-not-a-token\n".to_string(),
        ),
        (
            "pypi-token",
            format!("password = {}\n", pypi_token()),
            "pypi-AgEI\n".to_string(),
        ),
    ];
    assert_each_finds_its_positive_only(&cases);
}

/// Each (rule, positive, near miss): the positive is found by that rule alone, the near miss by none.
fn assert_each_finds_its_positive_only(cases: &[(&str, String, String)]) {
    for (rule, positive, negative) in cases {
        assert_eq!(
            rules_of("/w/file.txt", positive),
            [*rule],
            "{rule} should match {positive:?}"
        );
        assert!(
            rules_of("/w/file.txt", negative).is_empty(),
            "{rule} should not match {negative:?}"
        );
    }
}

#[test]
fn jwt_needs_three_parts_and_a_json_header() {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let header = b64("{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
    let payload = b64("{\"sub\":\"1234567890\",\"name\":\"x\"}");
    let token = format!("{header}.{payload}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV");
    assert_eq!(
        rules_of("/w/n.ipynb", &format!("Authorization: Bearer {token}\n")),
        ["jwt"]
    );
    assert!(rules_of("/w/n.ipynb", &format!("{header}.{payload}\n")).is_empty());
    let not_jwt = b64("{\"name\":\"a plain json document\"}");
    assert!(
        rules_of("/w/n.ipynb", &format!("{not_jwt}.{payload}.{payload}\n")).is_empty(),
        "base64 JSON without alg is data"
    );
}

#[test]
fn gcp_key_is_reported_once_per_line() {
    let begin = "-----BEGIN";
    let json = format!(
        "{{\n  \"type\": \"service_account\",\n  \"private_key\": \"{begin} PRIVATE KEY-----\\nMIIEvQ\\n-----END PRIVATE KEY-----\\n\",\n}}\n"
    );
    assert_eq!(
        scan("/app/sa.json", json.as_bytes()),
        ["/app/sa.json:3: gcp-service-account-key"]
    );
}

#[test]
fn each_name_rule_has_a_positive_and_a_negative() {
    let cases = [
        ("netrc-file", "/home/u/.netrc", "/home/u/netrc.txt"),
        (
            "git-credentials-file",
            "/w/.git-credentials",
            "/w/.gitconfig",
        ),
        (
            "docker-config-file",
            "/w/.docker/config.json",
            "/w/docker/config.json",
        ),
        (
            "aws-credentials-file",
            "/w/.aws/credentials",
            "/w/.aws/config",
        ),
        (
            "ssh-key-file",
            "/w/.ssh/id_ed25519",
            "/w/.ssh/id_ed25519.pub",
        ),
        ("ssh-key-file", "/w/id_rsa", "/w/id_rsa.pub"),
        (
            "ssh-key-file",
            "/w/keys/id_ecdsa_sk",
            "/w/keys/id_rsa_backup.txt",
        ),
        ("pypirc-file", "/w/.pypirc", "/w/pypirc.md"),
        ("pgpass-file", "/root/.pgpass", "/w/pgpass.md"),
        ("pgpass-file", "/w/pgpass.conf", "/w/pgpass.conf.sample"),
        ("kubeconfig-file", "/w/.kube/config", "/w/.kube/cache"),
        ("kubeconfig-file", "/w/prod.kubeconfig", "/w/kubeconfig.md"),
    ];
    for (rule, positive, negative) in cases {
        assert_eq!(
            scan(positive, b"anything"),
            [format!("{positive}: {rule}")],
            "{positive}"
        );
        assert!(scan(negative, b"anything").is_empty(), "{negative}");
    }
    let mut scanner = Scanner::new(&ScanRules::default());
    scanner.link(b"w/.ssh/id_rsa");
    scanner.link(b"w/.ssh/known_hosts");
    let found: Vec<String> = scanner
        .into_findings()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(found, ["/w/.ssh/id_rsa: ssh-key-file"]);
}

#[test]
fn env_files_with_deny_listed_names() {
    let text = "# settings\nPYTHON_VERSION=3.12\nGPG_KEY=7169605F62C751356D054A26A821E680E5FA6305\nexport DB_PASSWORD='hunter2'\nAPI_TOKEN=\nNUVLA_API_SECRET=${FROM_ENV}\nMY_URL=db.internal\n";
    assert_eq!(
        scan_with("/w/.env", text.as_bytes(), 5, &["MY_URL"]),
        ["/w/.env:4: env-file-secret", "/w/.env:7: env-file-secret"]
    );
    assert_eq!(
        scan("/w/.env.local", b"GITHUB_TOKEN=abc\n"),
        ["/w/.env.local:1: env-file-secret"]
    );
    assert_eq!(
        scan("/w/prod.env", b"X_SECRET=abc"),
        ["/w/prod.env:1: env-file-secret"]
    );
    assert!(scan("/w/.env.example", b"GITHUB_TOKEN=changeme\n").is_empty());
    assert!(
        scan("/w/notes.txt", b"GITHUB_TOKEN=abc\n").is_empty(),
        "only .env files"
    );
}

#[test]
fn line_numbers_survive_chunking_and_long_lines() {
    let key = tok("AKIA", "Q3ZT7WX2", 2);
    let text = format!("a\n\nb {key}\nc\r\nd {key} e\n{key}");
    assert_eq!(
        scan("/w/f", text.as_bytes()),
        [
            "/w/f:3: aws-access-key-id",
            "/w/f:5: aws-access-key-id",
            "/w/f:6: aws-access-key-id"
        ]
    );
    let late = format!("{}{key}\n{key}\n", "x ".repeat(MAX_LINE / 2));
    assert_eq!(
        scan_with("/w/f", late.as_bytes(), 4096, &[]),
        ["/w/f:2: aws-access-key-id"],
        "past the first 64 KiB of a line is not searched, in any chunking"
    );
    assert_eq!(
        scan_with("/w/f", late.as_bytes(), late.len(), &[]),
        ["/w/f:2: aws-access-key-id"]
    );
    let early = format!("{key}{}\n{key}\n", " y".repeat(MAX_LINE));
    assert_eq!(
        scan_with("/w/f", early.as_bytes(), 1000, &[]),
        ["/w/f:1: aws-access-key-id", "/w/f:2: aws-access-key-id"]
    );
}

#[test]
fn an_anchor_cut_by_the_line_limit_is_not_read_past_it() {
    let anchors = [
        "-----BEGIN ",
        "AKIA",
        "\"private_key\"",
        "github_pat_",
        "eyJ",
        "://",
        "hooks.slack.com/",
        "discord.com/api/webhooks/",
        "webhook.office.com/webhookb2/",
        "SG.",
        "T3BlbkFJ",
        "AccountKey=",
        "\"auth\"",
    ];
    for anchor in anchors {
        for cut in 1..anchor.len() {
            let line = format!(
                "{}{anchor}{}\n",
                "x".repeat(MAX_LINE - cut),
                "Q".repeat(100)
            );
            for chunk in [4096, line.len()] {
                assert!(
                    scan_with("/w/f", line.as_bytes(), chunk, &[]).is_empty(),
                    "{anchor} cut after {cut} bytes, in chunks of {chunk}"
                );
            }
        }
    }
}

#[test]
fn binary_and_empty_files_are_quiet() {
    assert!(scan("/w/empty", b"").is_empty());
    let noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(scan_with("/w/blob.bin", &noise, 8192, &[]).is_empty());
}

#[test]
fn allow_lists_cover_files_and_folders() {
    let finding = Finding {
        path: "/home/user/work/.ssh/id_ed25519".into(),
        line: None,
        rule: "ssh-key-file",
    };
    assert!(finding.is_allowed(&["/home/user/work/.ssh/id_ed25519".into()]));
    assert!(finding.is_allowed(&["/home/user/work/.ssh".into()]));
    assert!(finding.is_allowed(&["/home/user/work/".into()]));
    assert!(!finding.is_allowed(&["/home/user/work/.ss".into()]));
    assert!(!finding.is_allowed(&["/home/user/work/.ssh/id_ed25519.pub".into()]));
    assert!(!finding.is_allowed(&[]));
    assert_eq!(
        finding.to_string(),
        "/home/user/work/.ssh/id_ed25519: ssh-key-file"
    );
}

#[test]
fn secret_names() {
    let none: &[String] = &[];
    // One positive per suffix and per listed name, each with its near miss.
    let cases = [
        ("X_SECRET", "X_SECRETS"),
        ("x_secret", "SECRETS"),
        ("DB_PASSWORD", "DB_PASSWORD_FILE"),
        ("FTP_PASSWD", "PASSWD_FILE"),
        ("GPG_PASSPHRASE", "PASSPHRASE_HINT"),
        ("GH_TOKEN", "TOKENIZER"),
        ("OPENAI_API_KEY", "API_KEY_FILE"),
        ("S3_ACCESS_KEY", "ACCESS_KEY_ID"),
        ("DJANGO_SECRET_KEY", "SECRET_KEY_BASE_PATH"),
        ("SSH_PRIVATE_KEY", "PRIVATE_KEY_PATH"),
        ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
        ("AWS_SESSION_TOKEN", "AWS_SESSION_NAME"),
        ("nuvla_api_key", "NUVLA_ENDPOINT"),
        ("NUVLA_API_SECRET", "NUVLA_API"),
        ("SECRET_KEY", "KEY"),
        ("DOCKER_AUTH_CONFIG", "DOCKER_CONFIG"),
        ("API_KEY", "API_KEY_ID"),
        ("password", "PASSWORD_MIN_LENGTH"),
        ("TOKEN", "TOKENS"),
        ("SECRET", "SECRET_NAME"),
    ];
    for (secret, harmless) in cases {
        assert!(is_secret_name(secret, none), "{secret}");
        assert!(!is_secret_name(harmless, none), "{harmless}");
    }
    // A base image's ordinary env: python, node and debian images set these.
    for name in [
        "PATH",
        "GPG_KEY",
        "PYTHON_VERSION",
        "PYTHON_SHA256",
        "NODE_VERSION",
        "YARN_VERSION",
        "LANG",
        "HOME",
        "MY_SECRETS",
    ] {
        assert!(!is_secret_name(name, none), "{name}");
    }
    for suffix in DENIED_SECRET_SUFFIXES {
        assert!(is_secret_name(&format!("APP{suffix}"), none), "{suffix}");
        assert!(
            !is_secret_name(&format!("APP{suffix}_PATH"), none),
            "{suffix}"
        );
    }
    for name in DENIED_SECRET_NAMES {
        assert!(is_secret_name(name, none), "{name}");
        assert!(!is_secret_name(&format!("{name}_FILE"), none), "{name}");
    }
    let extra = vec!["DB_URL".to_string()];
    assert!(is_secret_name("DB_URL", &extra));
    assert!(!is_secret_name("db_url", &extra));
}
#[test]
fn values_go_through_the_content_rules_and_never_show_whole() {
    let token = checksummed("ghp_");
    let hits = scan_value(&token);
    assert_eq!(
        hits,
        [ValueHit {
            rule: "github-token",
            masked: "ghp_…(40 chars)".into()
        }]
    );
    let begin = "-----BEGIN";
    let key = format!("{begin} RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n");
    assert_eq!(scan_value(&key)[0].rule, "private-key");
    assert!(scan_value("python3 -m http.server 8000").is_empty());
    assert!(scan_value("").is_empty());
}

#[test]
fn url_credentials_need_a_real_password() {
    let pass = "s3cr3t";
    let url = format!("postgres://admin:{pass}@db.internal/prod");
    let hits = scan_value(&url);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].rule, "url-credentials");
    assert_eq!(
        hits[0].masked,
        "postgres://admin:…(6 chars)@db.internal…(+5 chars)"
    );
    assert!(!hits[0].masked.contains(pass));
    for found in [
        format!("redis://:{pass}@cache:6379"),
        format!("--db=mysql+pymysql://u:{pass}@h"),
        format!("x-y.z://u:{pass}@h?x=1"),
    ] {
        assert_eq!(
            scan_value(&found)
                .iter()
                .map(|h| h.rule)
                .collect::<Vec<_>>(),
            ["url-credentials"],
            "{found}"
        );
    }
    for fine in [
        "postgres://admin:${DB_PASSWORD}@db/prod",
        "postgres://admin:$DB_PASSWORD@db/prod",
        "postgres://admin:@db/prod",
        "postgres://admin@db/prod",
        "https://example.org/a:b@c",
        "https://example.org/?u=a:b@c",
        "://a:b@c",
        "mailto:a:b@c",
    ] {
        assert!(scan_value(fine).is_empty(), "{fine}");
    }
}

/// A body of `n` characters drawn from `alphabet` by a fixed pseudo-random
/// sequence (seeded by `n`): random like a generated secret, the same every run.
fn body(alphabet: &str, n: usize) -> String {
    let symbols: Vec<char> = alphabet.chars().collect();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ (n as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            symbols[(state >> 11) as usize % symbols.len()]
        })
        .collect()
}

const ALNUM: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const TOKEN: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
const B64: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/";
const HEX: &str = "0123456789abcdef";

/// `random` and the base62 CRC32 GitHub and npm append to it (six characters).
fn with_crc32(random: &str) -> String {
    let mut crc = crc32fast::hash(random.as_bytes());
    let mut check = [b'0'; 6];
    for slot in check.iter_mut().rev() {
        *slot = ALNUM.as_bytes()[(crc % 62) as usize];
        crc /= 62;
    }
    format!("{random}{}", String::from_utf8_lossy(&check))
}

/// A token as GitHub or npm issue them: `prefix`, 30 random base62 characters and their CRC32.
fn checksummed(prefix: &str) -> String {
    format!("{prefix}{}", with_crc32(&body(ALNUM, 30)))
}

/// `token` with its last character changed: the checksum no longer holds.
fn bad_checksum(token: &str) -> String {
    let (head, last) = token.split_at(token.len() - 1);
    format!("{head}{}", if last == "A" { "B" } else { "A" })
}

/// A PyPI upload token: `pypi-` and a version-2 macaroon located at
/// pypi.org, with an identifier, a caveat and a 32-byte signature (made with
/// Python's base64 from the macaroon's bytes).
fn pypi_token() -> String {
    format!(
        "pypi-{}{}",
        "AgEIcHlwaS5vcmcCJDhiMGU3MTUzYmY3YzM3MDZkODVjNTI0ZTQ0MDA2NjU1OWE2NgACJXsidmVyc2lvbiI6IDEsICJwZXJtaXNzaW9ucyI6",
        "ICJ1c2VyIn0AAAYgQnl6aUN6enZPSjFOUUF4OUc0TEpxY2IwY2hqTDRKTXE"
    )
}

/// (rule, a line it finds, its near miss) for each rule of a hosted service.
fn service_cases() -> Vec<(&'static str, String, String)> {
    let mut cases = webhook_cases();
    cases.extend(token_cases());
    cases.push((
        // What followed `sk_live_` in a debug build of stowage's own binary:
        // names run together, no digit, which no Stripe key lacks.
        "stripe-key",
        format!(
            "{}\n",
            tok("sk_live_", "verifiedTooLargePushArgsregistry7", 1)
        ),
        format!(
            "{}\n",
            tok("sk_live_", "verifiedTooLargePushArgsregistry", 1)
        ),
    ));
    cases
}

fn webhook_cases() -> Vec<(&'static str, String, String)> {
    let uuid = "5f2b8c1e-3d4a-4b6c-9e8f-7a6b5c4d3e2f";
    vec![
        (
            "slack-webhook",
            format!(
                "SLACK = \"https://hooks.slack.com/services/T0A1B2C3D/B0E4F5G6H/{}\"\n",
                body(ALNUM, 24)
            ),
            // Slack's own documentation example.
            format!(
                "https://hooks.slack.com/services/T00000000/B00000000/{}\n",
                "X".repeat(24)
            ),
        ),
        (
            "slack-webhook",
            format!("https://hooks.slack.com/triggers/{}\n", body(ALNUM, 48)),
            "https://hooks.slack.com/services/T0A1B2C3D/\n".to_string(),
        ),
        (
            "discord-webhook",
            format!(
                "url: https://discord.com/api/webhooks/123456789012345678/{}\n",
                body(TOKEN, 68)
            ),
            "url: https://discord.com/api/webhooks/{webhook_id}/{webhook_token}\n".to_string(),
        ),
        (
            "discord-webhook",
            format!(
                "https://discordapp.com/api/webhooks/98765432109876543/{}\n",
                body(ALNUM, 64)
            ),
            format!(
                "https://discordapp.com/api/webhooks/12345/{}\n",
                body(ALNUM, 64)
            ),
        ),
        (
            "teams-webhook",
            format!(
                "https://acme.webhook.office.com/webhookb2/{uuid}@{uuid}/IncomingWebhook/{}/{uuid}\n",
                body(HEX, 32)
            ),
            "https://acme.webhook.office.com/webhookb2/<your-webhook>\n".to_string(),
        ),
    ]
}

fn token_cases() -> Vec<(&'static str, String, String)> {
    vec![
        (
            "slack-token",
            format!(
                "{}\n",
                tok("xapp-1-A0123456789-1234567890123-", &body(HEX, 64), 1)
            ),
            "xapp-not-a-token\n".to_string(),
        ),
        (
            "npm-token",
            format!("token: {}\n", checksummed("npm_")),
            format!("token: {}\n", bad_checksum(&checksummed("npm_"))),
        ),
        (
            "huggingface-token",
            format!(
                "HF = \"{}\"\n",
                tok("hf_", &body("aBcDeFgHiJkLmNoPqRsTuVwXyZ", 34), 1)
            ),
            "path = hf_hub_download(repo_id, filename)\n".to_string(),
        ),
        (
            "stripe-key",
            format!(
                "stripe.api_key = \"{}\"\n",
                tok("sk_live_", &body(ALNUM, 24), 1)
            ),
            format!("stripe.api_key = \"{}\"\n", tok("sk_live_", "x", 24)),
        ),
        (
            "stripe-key",
            format!("{}\n", tok("rk_live_", &body(ALNUM, 99), 1)),
            format!("{}\n", tok("rk_live_", &body(ALNUM, 12), 1)),
        ),
        (
            "sendgrid-key",
            format!(
                "{}\n",
                tok(
                    "SG.",
                    &format!("{}.{}", body(ALNUM, 22), body(TOKEN, 43)),
                    1
                )
            ),
            format!(
                "{}\n",
                tok(
                    "SG.",
                    &format!("{}.{}", body(ALNUM, 22), body(ALNUM, 20)),
                    1
                )
            ),
        ),
        (
            "google-api-key",
            format!("key={}\n", tok("AIza", &body(TOKEN, 35), 1)),
            format!("key={}\n", tok("AIza", &body(TOKEN, 34), 1)),
        ),
        (
            "openai-key",
            format!(
                "OPENAI = \"sk-proj-{}T3BlbkFJ{}\"\n",
                body(ALNUM, 24),
                body(ALNUM, 24)
            ),
            format!(
                "data = \"{}T3BlbkFJ{}\"\n",
                body(ALNUM, 24),
                body(ALNUM, 24)
            ),
        ),
        (
            "anthropic-key",
            format!("{}AA\n", tok("sk-ant-api03-", &body(TOKEN, 93), 1)),
            "sk-ant-api03-...\n".to_string(),
        ),
        (
            "shopify-token",
            format!("{}\n", tok("shpat_", &body(HEX, 32), 1)),
            format!("{}\n", tok("shpat_", &body(HEX, 31), 1)),
        ),
        (
            "azure-storage-key",
            format!(
                "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={}==;EndpointSuffix=core.windows.net\n",
                body(B64, 86)
            ),
            // The storage emulator's published key.
            format!(
                "AccountName=devstoreaccount1;AccountKey={}==;\n",
                tok(
                    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq",
                    "/K1SZFPTOtr/KBHBeksoGMGw",
                    1
                )
            ),
        ),
    ]
}

#[test]
fn each_service_rule_has_a_positive_and_a_near_miss() {
    assert_each_finds_its_positive_only(&service_cases());
}

#[test]
fn service_tokens_in_values_are_masked() {
    for (rule, positive, _) in &service_cases() {
        let value = positive.trim_end();
        let hits = scan_value(value);
        assert_eq!(hits.len(), 1, "{rule}: {hits:?}");
        assert_eq!(hits[0].rule, *rule);
        assert_eq!(hits[0].masked, mask(value));
    }
}

#[test]
fn docker_auth_entries_need_a_real_password() {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let config = |auth: &str| {
        format!(
            "{{\n  \"auths\": {{\n    \"reg.acme.io\": {{\n      \"auth\": \"{auth}\"\n    }}\n  }}\n}}\n"
        )
    };
    assert_eq!(
        scan(
            "/w/ci/config.json",
            config(&b64("ci:s3cr3t-T0k3n")).as_bytes()
        ),
        ["/w/ci/config.json:4: docker-config-auth"]
    );
    let compact = format!(
        "{{\"auths\":{{\"r\":{{\"auth\" : \"{}\"}}}}}}",
        b64("u:hunter22")
    );
    assert_eq!(
        scan("/w/auth.json", compact.as_bytes()),
        ["/w/auth.json:1: docker-config-auth"]
    );
    for fine in [
        config(""),
        config(&b64("user:password")),
        config(&b64("token-without-colon")),
        config("not base64!"),
        "case\"auth\":var i=e.indexOf(\":\")\n".to_string(),
        "    \"auth\": None,\n".to_string(),
    ] {
        assert!(scan("/w/config.json", fine.as_bytes()).is_empty(), "{fine}");
    }
}

#[test]
fn url_credentials_in_files() {
    let secret = body(ALNUM, 20);
    let git_config = format!(
        "[core]\n\tbare = false\n[remote \"origin\"]\n\turl = https://u:{secret}@git.acme.io/acme/app.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
    );
    assert_eq!(
        scan("/w/.git/config", git_config.as_bytes()),
        ["/w/.git/config:4: url-credentials"]
    );
    for (path, found) in [
        (
            "/w/.env",
            "REDIS_URL=redis://:p4ssw0rd@cache:6379/0\n".to_string(),
        ),
        (
            "/etc/pip.conf",
            format!("[global]\nindex-url = https://ci:{secret}@pypi.acme.io/simple\n"),
        ),
        (
            "/w/app/settings.py",
            format!("DB = \"postgres://app:{secret}@db.internal/app\"\n"),
        ),
        (
            "/w/a.txt",
            format!("x-y.z://u:{secret}@h?x=1 and mysql+pymysql://root:Tr0ub4dor@db\n"),
        ),
    ] {
        assert_eq!(
            rules_of(path, &found),
            ["url-credentials"],
            "{path}: {found}"
        );
    }
}

#[test]
fn url_credentials_skip_placeholders_templates_and_documentation() {
    for fine in [
        "\turl = git@github.com:acme/app.git\n",
        "\turl = https://github.com/acme/app.git\n",
        "ssh://git@github.com:22/acme/app.git\n",
        "postgres://user:password@localhost/db\n",
        "postgresql://winappdbg:winappdbg@localhost\n",
        "http://userid:password@example.com:8080/\n",
        "https://jo%40email.com:a%20secret@www.example.com\n",
        "http://john%40example.com:P%40SSWORD@localhost:3128\n",
        "url = f\"https://{user}:{password}@{host}/\"\n",
        "url = \"%s://%s:%s@%s\" % parts\n",
        "redis://:${REDIS_PASSWORD}@cache:6379\n",
        "redis://:$REDIS_PASSWORD@cache:6379\n",
        "http://a:b@localhost\n",
        "https://user:<password>@host/\n",
        "mysql://root:changeme@db/app\n",
        "amqp://guest:guest@rabbit//\n",
        "https://u:xxxxxxxx@host/\n",
        "https://u:tok@\"\n",
        "postgres://admin:@db/prod\n",
        "https://example.org/a:b@c\n",
        "mailto:a:b@c\n",
        "re = r\"^(?P<scheme>\\w+)://(?P<user>[^:]+):(?P<pw>[^@]+)@\"\n",
    ] {
        assert!(rules_of("/w/doc.md", fine).is_empty(), "{fine}");
    }
}

#[test]
fn env_files_are_judged_by_their_keys() {
    let secret = body(ALNUM, 16);
    let text = format!(
        "PASSWORD={secret}\nTOKEN=\"{secret}\"\nSECRET='{secret}' # prod\nDB_PASS={secret}\nSMTP_PWD={secret}\nSTRIPE_KEY={secret}\nexport GITHUB_TOKEN={secret}\n"
    );
    let found = scan("/w/.env", text.as_bytes());
    assert_eq!(found.len(), 7, "{found:?}");
    assert!(
        found.iter().all(|f| f.ends_with(": env-file-secret")),
        "{found:?}"
    );
    assert!(
        found.iter().all(|f| !f.contains(&secret)),
        "never the value: {found:?}"
    );
    let fine = "PASSWORD=\nTOKEN=changeme\nSECRET=${SECRET}\nDB_PASS=<your password>\nAPI_KEY=xxxxxxxx\n\
                SORT_KEY=name\nSTRIPE_PUBLISHABLE_KEY=pk_live_abcdefgh12345678\nSSH_PUBLIC_KEY=ssh-ed25519AAAA\n\
                GPG_KEY=7169605F62C751356D054A26A821E680E5FA6305\nREQUIRE_PASSWORD=false\nPASSWORD= # set at deploy\n\
                # TOKEN=abcdefgh\nDB_PASSWORD=\"your-password-here\"\nPASSWORD_MIN_LENGTH=12\nDEBUG=1\n";
    assert_eq!(scan("/w/prod.env", fine.as_bytes()), Vec::<String>::new());
    assert!(
        scan("/w/.env.example", text.as_bytes()).is_empty(),
        "templates are skipped"
    );
}

#[test]
fn npmrc_credentials() {
    let secret = body(ALNUM, 20);
    let npmrc = format!(
        "registry=https://registry.npmjs.org/\n//npm.acme.io/:_authToken={secret}\n_auth = {secret}\n//npm.acme.io/:_password=\"{secret}\"\n"
    );
    assert_eq!(
        scan("/w/.npmrc", npmrc.as_bytes()),
        [
            "/w/.npmrc:2: npmrc-credentials",
            "/w/.npmrc:3: npmrc-credentials",
            "/w/.npmrc:4: npmrc-credentials"
        ]
    );
    let fine = "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n_auth=\n; _authToken=abcdefgh\nalways-auth=true\n";
    assert!(scan("/w/.npmrc", fine.as_bytes()).is_empty());
    assert!(
        scan("/w/notes.txt", npmrc.as_bytes()).is_empty(),
        "only .npmrc files are read by key"
    );
}

#[test]
fn every_rule_has_a_name_the_cache_can_read_back() {
    let names: Vec<&str> = CONTENT_RULES
        .iter()
        .chain(NAME_RULES)
        .map(|(rule, _)| *rule)
        .collect();
    for rule in &names {
        assert_eq!(rule_named(rule), Some(*rule));
    }
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "rule names are unique");
    for (rule, _, _) in service_cases() {
        assert!(names.contains(&rule), "{rule}");
    }
}

#[test]
fn github_and_npm_checksums_match_an_independent_reference() {
    // Computed with Python's zlib.crc32 and a base62 of digits, capitals, small letters.
    let random = format!("{}{}", "lwCgDRcY38nymU2k", "hdWAeRzFlQjsCo");
    assert_eq!(with_crc32(&random), format!("{random}3udYzQ"));
    assert_eq!(
        rules_of("/w/f", &format!("ghs_{random}3udYzQ\n")),
        ["github-token"]
    );
    assert_eq!(
        rules_of("/w/f", &format!("npm_{random}3udYzQ\n")),
        ["npm-token"]
    );
    for wrong in ["3udYzR", "3UdYzQ", "000000"] {
        assert!(
            rules_of("/w/f", &format!("ghs_{random}{wrong}\n")).is_empty(),
            "{wrong}"
        );
    }
}

#[test]
fn random_bodies_of_every_alphabet_look_generated() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for (alphabet, symbols) in [(ALNUM, 62), (TOKEN, 64), (B64, 64), (HEX, 16)] {
        let chars = alphabet.as_bytes();
        // Hex secrets are 32 characters or more; 24 leaves a margin.
        let shortest = if symbols == 16 { 24 } else { 16 };
        for n in [16, 20, 24, 27, 32, 36, 43, 59, 64, 86, 120]
            .into_iter()
            .filter(|n| *n >= shortest)
        {
            for _ in 0..2000 {
                let body: Vec<u8> = (0..n)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        chars[(state >> 11) as usize % chars.len()]
                    })
                    .collect();
                assert!(
                    bytes::looks_generated(&body, symbols),
                    "{}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
    }
}

#[test]
fn written_text_tables_and_repeats_do_not_look_generated() {
    for (text, symbols) in [
        ("xoxa-xoxb-xoxp-xoxr-xoxs-xapp-pypi-AgEIeyJ", 64),
        (
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            64,
        ),
        ("0123456789abcdef0123456789abcdef", 16),
        ("aB3dE5gH7jaB3dE5gH7jaB3dE5gH7jaB3dE5gH7j", 62),
        ("this_is_not_a_real_token_value_at_all", 64),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 62),
        ("configurationparametersfordeployment", 62),
        // Names as a binary's read-only data runs them together.
        ("platformROLLBACKREGISTRYKeyShareIpv6Addrcapacity", 62),
        ("registryTooLargeverifiedpackagesPushArgs", 62),
    ] {
        assert!(!bytes::looks_generated(text.as_bytes(), symbols), "{text}");
    }
}

/// The anchors as a binary's read-only data holds them, one run of bytes
/// (stowage's own table, and a PEM label parser's constants).
#[test]
fn a_binarys_table_of_prefixes_is_not_a_secret() {
    let begin = "-----BEGIN";
    let rodata = format!(
        "EXAMPLE\"alg\"{begin} b3BlbnNzaC1rZXktdjEsecret_access_keySECRET_ACCESS_KEYSecretAccessKey\"private_key\"\
         github_pat_glpat-dckr_pat_xoxa-xoxb-xoxp-xoxr-xoxs-xapp-pypi-AgEIeyJ://discord.com/api/webhooks/\
         \u{0}{begin} PRIVATE KEYPRIVATE KEY BLOCK-----\\nOPENSSHprivate-key\u{1}ghp_gho_ghs_npm_sk_live_rk_live_\n"
    );
    let mut binary = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    binary.extend_from_slice(rodata.as_bytes());
    binary.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    assert_eq!(scan("/usr/local/bin/tool", &binary), Vec::<String>::new());
}

#[test]
fn pem_headers_need_a_private_key_label_and_a_key_after_an_escaped_newline() {
    let begin = "-----BEGIN";
    for fine in [
        format!("\"{begin} PRIVATE KEY-----\\nOPENSSH\"\n"),
        format!("\"{begin} KEY PRIVATE KEY-----\\nMIIEvQ\"\n"),
        format!("\"{begin} RSA  PRIVATE KEY-----\\nMIIEvQ\"\n"),
        format!("\"{begin} PRIVATE KEYS-----\\nMIIEvQ\"\n"),
    ] {
        assert!(rules_of("/w/f.json", &fine).is_empty(), "{fine}");
    }
    for found in [
        format!("\"{begin} ENCRYPTED PRIVATE KEY-----\\nMIIFHDBOBgkq\"\n"),
        format!("\"{begin} RSA PRIVATE KEY-----\\r\\nProc-Type: 4,ENCRYPTED\"\n"),
        format!("\"{begin} PGP PRIVATE KEY BLOCK-----\\n\\nlQOYBF\"\n"),
    ] {
        assert_eq!(rules_of("/w/f.json", &found), ["private-key"], "{found}");
    }
}

#[test]
fn near_misses_of_token_shapes() {
    let cases = [
        // A GitHub fine-grained token's parts must both be generated.
        format!("github_pat_{}_{}\n", "A".repeat(22), body(ALNUM, 59)),
        // A Slack token whose secret part is a word.
        "xoxb-1234567890-1234567890-notarealsecretatallreally\n".to_string(),
        // A PyPI token that is not a pypi.org macaroon.
        format!("pypi-AgEI{}\n", body(TOKEN, 60)),
        // A Docker Hub token made of a repeated pattern.
        format!("dckr_pat_{}\n", "Ab3-Cd5_Ef".repeat(3)),
        // An AWS key id that counts up.
        "AKIAABCDEFGHIJKLMNOP\n".to_string(),
    ];
    for near in cases {
        assert!(rules_of("/w/f", &near).is_empty(), "{near}");
    }
}

#[test]
fn a_pem_header_alone_on_its_line_needs_a_key_body_on_the_next() {
    let begin = "-----BEGIN";
    let end = "-----END";
    // ssh-keygen's read-only data: the header line it writes, then the footer.
    let tool = format!(
        "\u{0}{begin} OPENSSH PRIVATE KEY-----\n\u{0}{end} OPENSSH PRIVATE KEY-----\n\u{0}openssh-key-v1\u{0}"
    );
    for fine in [
        tool,
        format!("{begin} RSA PRIVATE KEY-----\n"),
        format!("{begin} RSA PRIVATE KEY-----"),
        format!("{begin} RSA PRIVATE KEY-----\n\nMIIEpAIBAAKCAQEA\n"),
        format!("{begin} EC PRIVATE KEY-----\n%s\n"),
    ] {
        assert!(rules_of("/w/f", &fine).is_empty(), "{fine:?}");
    }
    for (found, rule) in [
        (
            format!("key: |\n  {begin} EC PRIVATE KEY-----\n  MHcCAQEEIBkg4LVWM9nuwNSk\n"),
            "private-key",
        ),
        (
            format!("{begin} PGP PRIVATE KEY BLOCK-----\n\nlQOYBF\n"),
            "private-key",
        ),
        (
            format!("{begin} RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"),
            "private-key",
        ),
    ] {
        assert_eq!(rules_of("/w/f", &found), [rule], "{found:?}");
    }
}
