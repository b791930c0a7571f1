//! The bundled example's app: a small notebook server that serves its
//! workspace over HTTP, so the example image starts and answers on its port.
//!
//! It uses only `std`, so the README builds it with one `rustc` call, fully
//! static (`-C target-feature=+crt-static`): the image's base is `scratch`,
//! which has no libc, no loader and no shell. It is not part of stowage.
//!
//! `notebook-server [--port=N] [DIR]` serves DIR (default: the working
//! folder, the image's workspace) on 0.0.0.0:N (default 8888): `/` is a page
//! listing the workspace's files and the library's extensions, `/NAME` a
//! workspace file. One thread per connection, one request per connection.
//! The library is found through `APP_HOME` (default `/opt/app`).

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A request line and headers larger than this are refused.
const MAX_HEAD: usize = 16 * 1024;

/// What the server reads once at start.
struct App {
    workspace: PathBuf,
    home: PathBuf,
    api: bool,
}

fn main() {
    let mut port = 8888u16;
    let mut workspace = PathBuf::from(".");
    for arg in std::env::args().skip(1) {
        if let Some(p) = arg.strip_prefix("--port=") {
            port = p
                .parse()
                .unwrap_or_else(|_| fail(&format!("bad port `{p}`")));
        } else if arg.starts_with('-') {
            fail(&format!(
                "unknown option `{arg}`; usage: notebook-server [--port=N] [DIR]"
            ));
        } else {
            workspace = PathBuf::from(arg);
        }
    }
    exit_on_stop_signals();
    // The secret arrives with `docker run -e`, never from the image.
    let api = std::env::var_os("NOTEBOOK_API_TOKEN").is_some_and(|t| !t.is_empty());
    if !api {
        eprintln!("note: NOTEBOOK_API_TOKEN not set; running without the API");
    }
    let home = PathBuf::from(std::env::var_os("APP_HOME").unwrap_or_else(|| "/opt/app".into()));
    let listener = TcpListener::bind(("0.0.0.0", port))
        .unwrap_or_else(|e| fail(&format!("cannot listen on port {port}: {e}")));
    let shown = fs::canonicalize(&workspace).unwrap_or_else(|_| workspace.clone());
    println!(
        "notebook app from {} serving {} on http://0.0.0.0:{port}/",
        home.display(),
        shown.display()
    );
    let app = Arc::new(App {
        workspace,
        home,
        api,
    });
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let app = Arc::clone(&app);
        std::thread::spawn(move || {
            // A client that goes away mid-answer is no error of ours.
            let _ = serve(&app, stream);
        });
    }
}

fn fail(message: &str) -> ! {
    eprintln!("notebook-server: error: {message}");
    std::process::exit(2);
}

/// As PID 1 in a container, a process that sets no handler ignores SIGINT
/// and SIGTERM, and `docker stop` or Ctrl-C would wait for SIGKILL; std has
/// no signal API, so the two libc calls are declared here.
fn exit_on_stop_signals() {
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    unsafe extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
        fn _exit(status: i32) -> !;
    }
    extern "C" fn stop(_: i32) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { _exit(0) }
    }
    for signum in [SIGINT, SIGTERM] {
        // SAFETY: the handler only calls _exit.
        unsafe { signal(signum, stop) };
    }
}

/// Reads one request from `stream` and answers it.
fn serve(app: &App, stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut head = Vec::new();
    loop {
        let before = head.len();
        (&mut reader).take(1024).read_until(b'\n', &mut head)?;
        if head.len() == before || head.len() > MAX_HEAD {
            return respond(stream, 400, "text/plain", b"bad request\n", false);
        }
        if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") || head == b"\r\n" {
            break;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let with_body = method != "HEAD";
    if method != "GET" && method != "HEAD" {
        return respond(stream, 405, "text/plain", b"only GET and HEAD\n", with_body);
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    if path == "/" {
        let page = index_page(app);
        return respond(
            stream,
            200,
            "text/html; charset=utf-8",
            page.as_bytes(),
            with_body,
        );
    }
    match workspace_file(&app.workspace, path) {
        Some(file) => match fs::read(&file) {
            Ok(bytes) => respond(stream, 200, content_type(&file), &bytes, with_body),
            Err(_) => respond(stream, 404, "text/plain", b"not found\n", with_body),
        },
        None => respond(stream, 404, "text/plain", b"not found\n", with_body),
    }
}

/// The file under `workspace` that a request path names: plain names only,
/// so nothing outside the workspace is ever read.
fn workspace_file(workspace: &Path, path: &str) -> Option<PathBuf> {
    let rel = path.strip_prefix('/')?;
    let ok = |part: &str| !part.is_empty() && part != "." && part != ".." && !part.contains('%');
    if !rel.split('/').all(ok) {
        return None;
    }
    let file = workspace.join(rel);
    file.is_file().then_some(file)
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "txt" | "py" | "r" | "R" => "text/plain; charset=utf-8",
        "ipynb" | "json" => "application/json",
        "csv" => "text/csv; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// The home page: the library's version and extensions, the workspace's files.
fn index_page(app: &App) -> String {
    let version = fs::read_to_string(app.home.join("VERSION")).unwrap_or_default();
    let version = version.trim();
    let mut page = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>notebook {v}</title></head>\n\
         <body>\n<h1>notebook {v}</h1>\n<p>API: {api}</p>\n<h2>Extensions</h2>\n<ul>\n",
        v = escape(version),
        api = if app.api { "on" } else { "off" },
    );
    for name in names(&app.home.join("extensions"), false) {
        let _ = writeln!(page, "<li>{}</li>", escape(&name));
    }
    page.push_str("</ul>\n<h2>Workspace</h2>\n<ul>\n");
    for name in names(&app.workspace, true) {
        let _ = writeln!(page, "<li><a href=\"/{0}\">{0}</a></li>", escape(&name));
    }
    page.push_str("</ul>\n</body></html>\n");
    page
}

/// The sorted, visible entry names in `dir`: files when `files`, else folders.
fn names(dir: &Path, files: bool) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_type()
                .is_ok_and(|t| t.is_file() == files && (files || t.is_dir()))
        })
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes a whole HTTP/1.1 response and closes the connection.
fn respond(
    mut stream: TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    with_body: bool,
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status == 405 {
        head.push_str("Allow: GET, HEAD\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if with_body {
        stream.write_all(body)?;
    }
    stream.flush()
}
