//! The one retry policy of every registry request, the client's and the token fetch's alike: which answers and failures are worth another attempt, and how long to wait first.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::Response;
use reqwest::header::RETRY_AFTER;

use super::NetworkFailure;

/// `what`, saying that retrying did not help when there were retries.
pub(super) fn after_attempts(what: &str, attempts: u32) -> String {
    match attempts {
        0 | 1 => what.to_string(),
        n => format!("{what}; gave up after {n} attempts"),
    }
}

/// How long to wait before retry `attempt + 1` of a request that got no
/// answer, or `None` to give up; never more than `retries` retries.
///
/// A refused connection is an answer: nothing listens there. crane
/// (go-containerregistry) never retries it (ECONNREFUSED is not a temporary
/// error in Go's net package); containers/image retries it like any network
/// error, three times from 2 s doubling. On a loopback host it is one quick
/// retry (a registry a script has just started may be a moment late);
/// elsewhere two short ones, about 1.5 s in all, which cover a registry
/// restarting behind a load balancer without making a wrong host or port
/// wait. A name that does not resolve gets one retry after a second (a
/// resolver may fail once; neither peer retries it at all). A certificate,
/// plain HTTP or a request that cannot be built never passes; a timeout or a
/// connection broken mid-answer gets the full backoff.
pub(super) fn retry_wait_without_answer(
    failure: NetworkFailure,
    loopback: bool,
    attempt: u32,
    retries: u32,
) -> Option<Duration> {
    let (most, wait) = match failure {
        NetworkFailure::Refused if loopback => (1, Duration::from_millis(250)),
        NetworkFailure::Refused | NetworkFailure::NoRoute => (2, backoff(attempt)),
        NetworkFailure::Unresolved => (1, Duration::from_secs(1)),
        NetworkFailure::Untrusted | NetworkFailure::PlainHttp | NetworkFailure::Unusable => {
            (0, Duration::ZERO)
        }
        NetworkFailure::Timeout | NetworkFailure::BrokeOff | NetworkFailure::NoConnection => {
            (retries, backoff(attempt))
        }
    };
    (attempt < most.min(retries)).then_some(wait)
}

/// Answers a retry may get past: a timeout, rate limiting, a server error.
pub(super) fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// Exponential backoff from 0.5 s, capped at 30 s, with ±25% jitter so retrying clients spread out.
pub(super) fn backoff(attempt: u32) -> Duration {
    let base = 500u64.saturating_mul(1 << attempt.min(6)).min(30_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as u64;
    let jitter = (nanos % (base / 2 + 1)) as i64 - (base / 4) as i64;
    Duration::from_millis((base as i64 + jitter).max(50) as u64)
}

/// `Retry-After` (seconds or an HTTP date, capped at 5 minutes) when given, else the backoff.
pub(super) fn retry_wait(response: &Response, attempt: u32) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after_secs(v, now))
        .map(|secs| Duration::from_secs(secs.min(300)))
        .unwrap_or_else(|| backoff(attempt))
}

/// A `Retry-After` value in seconds from `now` (Unix seconds): delay-seconds,
/// or an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110).
fn retry_after_secs(value: &str, now: u64) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let (_, date) = value.split_once(", ")?;
    let mut parts = date.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: u64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (clock.next()??, clock.next()??, clock.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from 1970-01-01 to the civil date (Howard Hinnant's days_from_civil).
    let (y, mo) = if month <= 2 {
        (year.checked_sub(1)?, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y % 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    let at = days * 86_400 + h * 3600 + m * 60 + sec;
    Some(at.saturating_sub(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_and_unresolved_are_retried_briefly() {
        let total = |failure, loopback, retries| {
            (0..)
                .map_while(|attempt| retry_wait_without_answer(failure, loopback, attempt, retries))
                .collect::<Vec<Duration>>()
        };
        let loopback_refused = total(NetworkFailure::Refused, true, 5);
        assert_eq!(loopback_refused.len(), 1, "one quick retry");
        assert!(loopback_refused[0] <= Duration::from_millis(500));
        let refused = total(NetworkFailure::Refused, false, 5);
        assert_eq!(refused.len(), 2);
        assert!(
            refused.iter().sum::<Duration>() < Duration::from_secs(2),
            "{refused:?}"
        );
        let no_route = total(NetworkFailure::NoRoute, false, 5);
        assert_eq!(no_route.len(), 2);
        let unresolved = total(NetworkFailure::Unresolved, false, 5);
        assert_eq!(unresolved, [Duration::from_secs(1)]);
        for never in [
            NetworkFailure::Untrusted,
            NetworkFailure::PlainHttp,
            NetworkFailure::Unusable,
        ] {
            assert!(total(never, false, 5).is_empty(), "{never:?}");
        }
        // What may pass keeps every retry asked for.
        for passing in [
            NetworkFailure::Timeout,
            NetworkFailure::BrokeOff,
            NetworkFailure::NoConnection,
        ] {
            assert_eq!(total(passing, true, 5).len(), 5, "{passing:?}");
        }
        // --retries 0 means none, whatever the failure.
        assert!(total(NetworkFailure::Refused, true, 0).is_empty());
        assert!(total(NetworkFailure::Unresolved, false, 0).is_empty());
        assert_eq!(total(NetworkFailure::Refused, false, 1).len(), 1);
    }

    #[test]
    fn attempts_are_counted_only_when_there_were_retries() {
        assert_eq!(after_attempts("the manifest", 1), "the manifest");
        assert_eq!(
            after_attempts("the manifest", 2),
            "the manifest; gave up after 2 attempts"
        );
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 0..10 {
            let wait = backoff(attempt);
            assert!(
                wait >= Duration::from_millis(50) && wait <= Duration::from_millis(37_500),
                "{wait:?}"
            );
        }
        assert!(backoff(4) > backoff(0));
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(retry_after_secs(" 7 ", 0), Some(7));
        // 1994-11-06T08:49:37Z is 784111777.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(retry_after_secs(date, 784_111_777 - 30), Some(30));
        assert_eq!(
            retry_after_secs(date, 784_111_777 + 5),
            Some(0),
            "a past date: now"
        );
        assert_eq!(
            retry_after_secs("Thu, 29 Feb 2024 00:00:00 GMT", 1_709_164_800 - 1),
            Some(1)
        );
        for bad in [
            "soon",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "",
        ] {
            assert_eq!(retry_after_secs(bad, 0), None, "{bad}");
        }
    }
}
