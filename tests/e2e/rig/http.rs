//! The little HTTP/1.1 the rig speaks itself, over plain TCP: a one-shot
//! client for readiness checks and registry queries, and the heads, bodies,
//! answers and resets that the token server, the fault proxy and the Docker
//! Hub stand-in are made of.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

// ---------------------------------------------------------------------------
// The client side

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.0 request to `host` (no TLS, no redirects), read to the end.
pub fn http_request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::other("no end of headers"))?;
    let head = read_head(&mut &raw[..split + 4])?;
    if head.status == 0 {
        return Err(io::Error::other("no status line"));
    }
    Ok(HttpResponse {
        status: head.status,
        headers: head.headers,
        body: raw[split + 4..].to_vec(),
    })
}

// ---------------------------------------------------------------------------
// Heads and bodies, for the servers and the proxy

/// A request or response head.
#[derive(Debug, Clone)]
pub struct Head {
    /// `GET /v2/ HTTP/1.1` or `HTTP/1.1 200 OK`.
    pub line: String,
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn set_header(&mut self, name: &str, value: Option<String>) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        if let Some(value) = value {
            self.headers.push((name.to_owned(), value));
        }
    }

    /// The request target's path, without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The request target's query parameters, decoded.
    pub fn query(&self) -> Vec<(String, String)> {
        parse_form(self.target.split_once('?').map_or("", |(_, q)| q))
    }

    /// The head as it goes on the wire.
    pub fn bytes(&self) -> Vec<u8> {
        let mut text = format!("{}\r\n", self.line);
        for (k, v) in &self.headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str("\r\n");
        text.into_bytes()
    }

    /// How the body after this head ends; `request_method` is None for a
    /// request head, the request's method for a response head.
    pub fn body_length(&self, request_method: Option<&str>) -> Framing {
        if request_method == Some("HEAD") || matches!(self.status, 100..=199 | 204 | 304) {
            return Framing::Length(0);
        }
        if self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            return Framing::Chunked;
        }
        match self
            .header("content-length")
            .and_then(|v| v.trim().parse().ok())
        {
            Some(n) => Framing::Length(n),
            None if request_method.is_none() => Framing::Length(0),
            None => Framing::UntilClose,
        }
    }
}

/// How a message body ends.
pub enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// Reads a head; `Err(UnexpectedEof)` when the peer closed before one began.
pub fn read_head(reader: &mut impl BufRead) -> io::Result<Head> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut parts = line.split(' ');
    let first = parts.next().unwrap_or_default().to_owned();
    let second = parts.next().unwrap_or_default().to_owned();
    let (method, target, status) = if first.starts_with("HTTP/") {
        (String::new(), String::new(), second.parse().unwrap_or(0))
    } else {
        (first, second, 0)
    };
    Ok(Head {
        line,
        method,
        target,
        status,
        headers,
    })
}

/// Reads one request of a small server: its head and its Content-Length body.
pub fn read_request(stream: &TcpStream) -> io::Result<(Head, Vec<u8>)> {
    let mut reader = BufReader::new(stream);
    let head = read_head(&mut reader)?;
    let length = head
        .header("content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((head, body))
}

/// Answers with `status`, a JSON `body` and the `extra` headers, then
/// closes the connection.
pub fn respond(mut stream: &TcpStream, status: u16, extra: &[(&str, &str)], body: &[u8]) {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Fault",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}

/// Closes `stream` with a TCP reset instead of an orderly FIN, as a crashed
/// peer or a middlebox does.
///
/// The reset goes out when the last handle of the socket closes, so callers
/// return right after this.
pub fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// `a=1&b=x%2Fy` → [("a","1"), ("b","x/y")].
pub fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match byte {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
