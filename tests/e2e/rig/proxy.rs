//! The proxies the tests put between stowage and a registry.
//!
//! * [`FaultProxy`]: the faults a real registry will not produce on demand,
//!   for the reliability tests. An HTTP/1.1 proxy (std `TcpListener` and a
//!   thread per connection) between stowage and a registry. A rule sees
//!   each request and picks an [`Action`]: forward it (optionally
//!   resetting, stalling or corrupting it part-way, throttling it, delaying
//!   it, or rewriting auth and `Location`), answer it itself (500, 429,
//!   401, 307), or stall. Every request is recorded, with its Authorization
//!   header.
//! * [`Proxy`]: a plain TCP forwarder that counts the bytes each way (and
//!   can slow the upload direction down), for the registry tests that prove
//!   what did not go over the wire.
//!
//! distribution builds `Location` headers from the request's Host, so a
//! client that talks through either proxy keeps talking through it.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::http::{Framing, Head, read_head, reset, respond};

// ---------------------------------------------------------------------------
// The fault proxy

/// A request as a proxy rule sees it.
#[derive(Debug, Clone)]
pub struct Req {
    /// Position among all requests the proxy received, from 0.
    pub seq: usize,
    pub method: String,
    /// Path and query.
    pub target: String,
    pub authorization: Option<String>,
    /// The request body's declared length.
    pub content_length: Option<u64>,
    /// The Range header, as the client sent it.
    pub range: Option<String>,
}

impl Req {
    /// A PUT or PATCH that carries blob bytes.
    pub fn is_blob_upload(&self) -> bool {
        matches!(self.method.as_str(), "PUT" | "PATCH") && self.target.contains("/blobs/uploads/")
    }

    /// A GET of a blob by digest.
    pub fn is_blob_get(&self) -> bool {
        self.method == "GET" && self.target.contains("/blobs/sha256:")
    }

    /// A PUT of a manifest.
    pub fn is_manifest_put(&self) -> bool {
        self.method == "PUT" && self.target.contains("/manifests/")
    }
}

/// What the proxy does with a request.
#[derive(Clone)]
pub enum Action {
    Forward(Forward),
    /// Answer without asking the registry (the request body is read first).
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Read the request and never answer.
    Stall,
}

impl Action {
    pub fn forward() -> Action {
        Action::Forward(Forward::default())
    }

    pub fn status(status: u16) -> Action {
        Action::Respond {
            status,
            headers: Vec::new(),
            body: format!(
                "{{\"errors\":[{{\"code\":\"FAULT\",\"message\":\"injected {status}\"}}]}}"
            )
            .into_bytes(),
        }
    }
}

/// How a forwarded request is tampered with.
#[derive(Clone, Default)]
pub struct Forward {
    /// Reset both connections after this many request body bytes went up.
    pub reset_after_request_bytes: Option<u64>,
    /// Stop reading the request body after this many bytes went up, keeping
    /// the client's connection open: the client's socket buffers fill and
    /// its kernel waits on a zero window, forever.
    pub stall_after_request_bytes: Option<u64>,
    /// Reset the client after this many response body bytes came down.
    pub reset_after_response_bytes: Option<u64>,
    /// Stop sending the response body after this many bytes, forever.
    pub stall_after_response_bytes: Option<u64>,
    /// Flip the bits of the response body byte at this offset.
    pub corrupt_response_byte: Option<u64>,
    /// Send the request body up at no more than this many bytes a second.
    pub throttle_request: Option<u64>,
    /// Wait this long before forwarding.
    pub delay: Option<Duration>,
    /// Drop the Authorization header before forwarding.
    pub strip_auth: bool,
    /// Drop the Range header before forwarding: a registry that always sends the whole blob.
    pub strip_range: bool,
    /// Point a response's Location at this `host:port` instead.
    pub location_to: Option<String>,
}

/// One request the proxy saw, and what came of it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub req: Req,
    /// The status sent to the client, if a response was sent.
    pub status: Option<u16>,
    pub at: Instant,
}

type Rule = dyn Fn(&Req) -> Action + Send + Sync;

struct ProxyShared {
    upstream: String,
    rule: Box<Rule>,
    seq: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    stop: AtomicBool,
    /// Response body bytes sent down to clients.
    bytes_down: AtomicU64,
}

/// An HTTP proxy in front of `upstream`, applying `rule` to each request.
pub struct FaultProxy {
    /// `IP:PORT` to point stowage at.
    pub addr: String,
    shared: Arc<ProxyShared>,
}

impl FaultProxy {
    /// A proxy on 127.0.0.1.
    pub fn start(
        upstream: &str,
        rule: impl Fn(&Req) -> Action + Send + Sync + 'static,
    ) -> FaultProxy {
        FaultProxy::start_on("127.0.0.1", upstream, rule)
    }

    /// A proxy on `ip` (any 127.x.y.z is loopback on Linux: another "host").
    pub fn start_on(
        ip: &str,
        upstream: &str,
        rule: impl Fn(&Req) -> Action + Send + Sync + 'static,
    ) -> FaultProxy {
        let listener = TcpListener::bind(format!("{ip}:0")).expect("bind the proxy");
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(ProxyShared {
            upstream: upstream.to_owned(),
            rule: Box::new(rule),
            seq: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            bytes_down: AtomicU64::new(0),
        });
        let accept = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = accept.clone();
                std::thread::spawn(move || {
                    let _ = shared.serve(stream);
                });
            }
        });
        FaultProxy { addr, shared }
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        let mut seen = self.shared.seen.lock().unwrap().clone();
        seen.sort_by_key(|s| s.req.seq);
        seen
    }

    /// `ADDR/REPO:TAG`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.addr)
    }

    /// Response body bytes (of known length) sent to clients so far, cut responses included.
    pub fn bytes_down(&self) -> u64 {
        self.shared.bytes_down.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

impl ProxyShared {
    fn record(&self, req: &Req, status: Option<u16>) {
        self.seen.lock().unwrap().push(Seen {
            req: req.clone(),
            status,
            at: Instant::now(),
        });
    }

    fn stall(&self) {
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Serves one client connection, request after request.
    fn serve(&self, client: TcpStream) -> io::Result<()> {
        let mut from_client = BufReader::new(client.try_clone()?);
        let mut upstream: Option<Upstream> = None;
        loop {
            let Ok(mut head) = read_head(&mut from_client) else {
                return Ok(());
            };
            let req = self.request(&head);
            let action = (self.rule)(&req);
            let request_framing = head.body_length(None);
            let Some(forward) = self.answer_unless_forwarded(
                &req,
                action,
                &mut from_client,
                &request_framing,
                &client,
            )?
            else {
                return Ok(());
            };
            if let Some(delay) = forward.delay {
                std::thread::sleep(delay);
            }
            let Some((up, from_up)) = self.connect_upstream(&mut upstream, &req, &client)? else {
                return Ok(());
            };
            if forward.strip_auth {
                head.set_header("authorization", None);
            }
            if forward.strip_range {
                head.set_header("range", None);
            }
            // The Host header stays the proxy's: the registry builds upload
            // Locations from it, and the client must keep coming here.
            let sent = send_request(&head, &mut from_client, up, &request_framing, &forward);
            if !self.request_went_up(&req, sent, &forward, up, &client) {
                return Ok(());
            }
            if !self.pass_response_down(&req, &forward, from_up, &client)? {
                return Ok(());
            }
        }
    }

    /// The request as the rule sees it, numbered in arrival order.
    fn request(&self, head: &Head) -> Req {
        Req {
            seq: self.seq.fetch_add(1, Ordering::SeqCst),
            method: head.method.clone(),
            target: head.target.clone(),
            authorization: head.header("authorization").map(str::to_owned),
            content_length: head
                .header("content-length")
                .and_then(|v| v.trim().parse().ok()),
            range: head.header("range").map(str::to_owned),
        }
    }

    /// Carries out an action that is not to forward: reads the request body,
    /// then answers or stalls. `Some` is the forwarding to do instead.
    fn answer_unless_forwarded(
        &self,
        req: &Req,
        action: Action,
        from_client: &mut BufReader<TcpStream>,
        request_framing: &Framing,
        client: &TcpStream,
    ) -> io::Result<Option<Forward>> {
        match action {
            Action::Stall => {
                drain_body(from_client, request_framing)?;
                self.record(req, None);
                self.stall();
            }
            Action::Respond {
                status,
                headers,
                body,
            } => {
                drain_body(from_client, request_framing)?;
                self.record(req, Some(status));
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                respond(client, status, &headers, &body);
            }
            Action::Forward(forward) => return Ok(Some(forward)),
        }
        Ok(None)
    }

    /// The connection to the registry, opened on first use. `None` when the
    /// registry is down: the client then sees its connection reset.
    fn connect_upstream<'a>(
        &self,
        conn: &'a mut Option<Upstream>,
        req: &Req,
        client: &TcpStream,
    ) -> io::Result<Option<&'a mut Upstream>> {
        if conn.is_none() {
            match TcpStream::connect(&self.upstream) {
                Ok(up) => {
                    let reader = BufReader::new(up.try_clone()?);
                    *conn = Some((up, reader));
                }
                Err(_) => {
                    // The registry is down: the client sees its connection reset.
                    self.record(req, None);
                    reset(client);
                    return Ok(None);
                }
            }
        }
        Ok(conn.as_mut())
    }

    /// Whether the whole request went up. When it did not (cut by a fault,
    /// or an error), the request is recorded unanswered and the connections
    /// are reset or stalled.
    fn request_went_up(
        &self,
        req: &Req,
        sent: io::Result<Copied>,
        forward: &Forward,
        up: &TcpStream,
        client: &TcpStream,
    ) -> bool {
        match sent {
            Ok(Copied::All) => return true,
            Ok(Copied::Cut) if forward.stall_after_request_bytes.is_some() => {
                self.record(req, None);
                reset(up);
                self.stall();
            }
            Ok(Copied::Cut) => {
                self.record(req, None);
                reset(up);
                reset(client);
            }
            Err(_) => {
                self.record(req, None);
                reset(client);
            }
        }
        false
    }

    /// Relays the registry's response to the client, with the response
    /// faults. Whether the connection can carry another request.
    fn pass_response_down(
        &self,
        req: &Req,
        forward: &Forward,
        from_up: &mut BufReader<TcpStream>,
        client: &TcpStream,
    ) -> io::Result<bool> {
        let mut response = match read_head(from_up) {
            Ok(head) => head,
            Err(_) => {
                self.record(req, None);
                reset(client);
                return Ok(false);
            }
        };
        if let (Some(to), Some(location)) = (
            &forward.location_to,
            response.header("location").map(str::to_owned),
        ) {
            response.set_header("location", Some(relocate(&location, to)));
        }
        self.record(req, Some(response.status));
        let framing = response.body_length(Some(&req.method));
        let mut out = client;
        out.write_all(&response.bytes())?;
        let result = relay_response(from_up, client, &framing, forward, &self.bytes_down)?;
        match result {
            Relayed::All => return Ok(true),
            Relayed::Cut => reset(client),
            Relayed::Stalled => self.stall(),
            Relayed::Closed => {}
        }
        Ok(false)
    }
}

/// The connection to the registry, and a reader on it.
type Upstream = (TcpStream, BufReader<TcpStream>);

/// Sends the request head and body up, with the request faults.
fn send_request(
    head: &Head,
    from_client: &mut BufReader<TcpStream>,
    up: &mut TcpStream,
    request_framing: &Framing,
    forward: &Forward,
) -> io::Result<Copied> {
    up.write_all(&head.bytes()).and_then(|()| {
        copy_body(
            from_client,
            up,
            request_framing,
            forward
                .reset_after_request_bytes
                .or(forward.stall_after_request_bytes),
            forward.throttle_request,
        )
    })
}

/// `http://a:1/x?y` with its host and port replaced by `to`.
fn relocate(location: &str, to: &str) -> String {
    match location.split_once("://") {
        Some((scheme, rest)) => {
            let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
            format!("{scheme}://{to}{path}")
        }
        None => format!("http://{to}{location}"),
    }
}

enum Copied {
    All,
    Cut,
}

fn drain_body(from: &mut impl BufRead, framing: &Framing) -> io::Result<()> {
    let mut sink = io::sink();
    copy_body(from, &mut sink, framing, None, None).map(drop)
}

/// Copies a message body (chunked bodies as they are, chunk headers and all).
fn copy_body(
    from: &mut impl BufRead,
    to: &mut impl Write,
    framing: &Framing,
    cut_after: Option<u64>,
    throttle: Option<u64>,
) -> io::Result<Copied> {
    match framing {
        Framing::Length(n) => {
            let mut left = *n;
            let mut done = 0u64;
            let mut buf = [0u8; 16 * 1024];
            let started = Instant::now();
            while left > 0 {
                let want = (left as usize).min(buf.len());
                let got = from.read(&mut buf[..want])?;
                if got == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                let take = match cut_after {
                    Some(cut) if done + got as u64 >= cut => (cut - done) as usize,
                    _ => got,
                };
                to.write_all(&buf[..take])?;
                done += take as u64;
                left -= got as u64;
                if take < got || cut_after == Some(done) && left > 0 {
                    to.flush()?;
                    return Ok(Copied::Cut);
                }
                if let Some(rate) = throttle {
                    let due = Duration::from_secs_f64(done as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
            }
            to.flush()?;
            Ok(Copied::All)
        }
        Framing::Chunked => loop {
            let mut size_line = String::new();
            if from.read_line(&mut size_line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            to.write_all(size_line.as_bytes())?;
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            from.read_exact(&mut chunk)?;
            to.write_all(&chunk)?;
            if size == 0 {
                to.flush()?;
                return Ok(Copied::All);
            }
        },
        Framing::UntilClose => {
            io::copy(from, to)?;
            Ok(Copied::All)
        }
    }
}

enum Relayed {
    All,
    Cut,
    Stalled,
    Closed,
}

/// Relays a response body of a known length, applying the response faults;
/// other framings are relayed as they are.
fn relay_response(
    from: &mut BufReader<TcpStream>,
    client: &TcpStream,
    framing: &Framing,
    forward: &Forward,
    bytes_down: &AtomicU64,
) -> io::Result<Relayed> {
    let mut out = client;
    let Framing::Length(n) = framing else {
        let until_close = matches!(framing, Framing::UntilClose);
        copy_body(from, &mut out, framing, None, None)?;
        return Ok(if until_close {
            Relayed::Closed
        } else {
            Relayed::All
        });
    };
    let mut done = 0u64;
    let mut buf = [0u8; 16 * 1024];
    while done < *n {
        let want = ((*n - done) as usize).min(buf.len());
        let got = from.read(&mut buf[..want])?;
        if got == 0 {
            return Ok(Relayed::Cut);
        }
        let chunk = &mut buf[..got];
        if let Some(at) = forward.corrupt_response_byte
            && at >= done
            && at < done + got as u64
        {
            chunk[(at - done) as usize] ^= 0xff;
        }
        let limit = forward
            .reset_after_response_bytes
            .map(|cut| (cut, Relayed::Cut))
            .or(forward
                .stall_after_response_bytes
                .map(|cut| (cut, Relayed::Stalled)));
        if let Some((cut, outcome)) = limit
            && done + got as u64 >= cut
        {
            out.write_all(&chunk[..(cut - done) as usize])?;
            out.flush()?;
            bytes_down.fetch_add(cut - done, Ordering::SeqCst);
            return Ok(outcome);
        }
        out.write_all(chunk)?;
        done += got as u64;
        bytes_down.fetch_add(got as u64, Ordering::SeqCst);
    }
    out.flush()?;
    Ok(Relayed::All)
}

/// Counts how often each (method, is-blob) request was answered with each status; for messages.
pub fn summary(seen: &[Seen]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for s in seen {
        let path = s.req.target.split('?').next().unwrap_or("");
        let key = format!(
            "{} {} -> {}",
            s.req.method,
            path,
            s.status.map(|c| c.to_string()).unwrap_or("cut".into())
        );
        *counts.entry(key).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(k, n)| format!("{n}x {k}"))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------
// A counting (and optionally slowing) TCP proxy

/// Forwards 127.0.0.1:PORT to an upstream host, counting the bytes each way;
/// with `up_rate` it also holds the client→server direction to about that
/// many bytes per second. Stops accepting when dropped.
pub struct Proxy {
    /// `127.0.0.1:PORT`.
    pub host: String,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: &str, up_rate: Option<u64>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicU64::new(0));
        let down = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (up2, down2, stop2) = (up.clone(), down.clone(), stop.clone());
        let upstream = upstream.to_owned();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (up, down) = (up2.clone(), down2.clone());
                std::thread::spawn(move || pipe(client, server, &up, up_rate));
                std::thread::spawn(move || pipe(s2, c2, &down, None));
            }
        });
        Proxy {
            host,
            up,
            down,
            stop,
        }
    }

    /// Bytes sent by clients to the upstream so far.
    pub fn up_bytes(&self) -> u64 {
        self.up.load(Ordering::SeqCst)
    }

    /// Bytes sent by the upstream to clients so far.
    pub fn down_bytes(&self) -> u64 {
        self.down.load(Ordering::SeqCst)
    }

    /// `HOST/PATH` through the proxy.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.host)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, count: &AtomicU64, rate: Option<u64>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(rate) = rate {
            std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        count.fetch_add(n as u64, Ordering::SeqCst);
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
