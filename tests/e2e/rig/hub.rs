//! A stand-in for Docker Hub's repository API (hub.docker.com), which the
//! tests cannot reach: `POST /v2/users/login` checks a username and password
//! and hands out a JWT-shaped token, and
//! `DELETE /v2/repositories/NAMESPACE/REPO/tags/TAG/` with that token as
//! `Authorization: Bearer` deletes a tag it knows (204), answers 404 for one
//! it does not and 401 without the token — the answers Docker Hub gives.
//! Every request line is kept for the test to read.

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::http::{read_request, respond};

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJodWItc3RhbmQtaW4ifQ.c3RhbmQtaW4tc2lnbmF0dXJl";

struct State {
    username: String,
    password: String,
    /// `namespace/repo:tag` that exist.
    tags: Mutex<BTreeSet<String>>,
    requests: Mutex<Vec<String>>,
}

pub struct HubStandIn {
    port: u16,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HubStandIn {
    /// Serves on a free loopback port; `tags` are `namespace/repo:tag`.
    pub fn start(username: &str, password: &str, tags: &[&str]) -> HubStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the hub stand-in");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(State {
            username: username.to_owned(),
            password: password.to_owned(),
            tags: Mutex::new(tags.iter().map(|t| t.to_string()).collect()),
            requests: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let _ = serve(stream, &state);
                    }
                }
            })
        };
        HubStandIn {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The base URL for `STOWAGE_DOCKER_HUB_API`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `METHOD PATH` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.state.tags.lock().unwrap().contains(tag)
    }
}

impl Drop for HubStandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, state: &State) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let (head, body) = read_request(&stream)?;
    let (method, path) = (head.method.as_str(), head.target.as_str());
    let authorization = head.header("authorization").unwrap_or_default();
    state
        .requests
        .lock()
        .unwrap()
        .push(format!("{method} {path}"));

    let (status, answer) = match (method, path) {
        ("POST", "/v2/users/login") => {
            let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if doc["username"] == state.username.as_str()
                && doc["password"] == state.password.as_str()
            {
                (200, format!("{{\"token\":\"{TOKEN}\"}}"))
            } else {
                (
                    401,
                    r#"{"detail":"Incorrect authentication credentials"}"#.to_owned(),
                )
            }
        }
        ("DELETE", p) if p.starts_with("/v2/repositories/") && p.ends_with('/') => {
            let rest = &p["/v2/repositories/".len()..p.len() - 1];
            let parts: Vec<&str> = rest.split('/').collect();
            if authorization != format!("Bearer {TOKEN}") {
                (401, r#"{"detail":"authentication required"}"#.to_owned())
            } else if let [ns, repo, "tags", tag] = parts[..] {
                let key = format!("{ns}/{repo}:{tag}");
                if state.tags.lock().unwrap().remove(&key) {
                    (204, String::new())
                } else {
                    (404, r#"{"message":"tag not found"}"#.to_owned())
                }
            } else {
                (404, String::new())
            }
        }
        _ => (404, String::new()),
    };
    respond(&stream, status, &[], answer.as_bytes());
    Ok(())
}
