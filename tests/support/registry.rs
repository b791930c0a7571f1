//! A real registry for a test: Debian's `docker-registry` (distribution
//! 2.8) on a free loopback port with its own storage folder and
//! `storage.delete.enabled: true`, stopped when dropped. Plain HTTP, so
//! stowage gets `--insecure-registry` for it; dockerd and skopeo treat
//! 127.0.0.1 as insecure by themselves or with `--tls-verify=false`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{require_tool, skip_or_fail};

/// How long the registry may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(15);

pub struct LocalRegistry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

impl LocalRegistry {
    /// Starts a registry, or returns None when docker-registry is missing
    /// (which fails the test under CI=true).
    pub fn start() -> Option<LocalRegistry> {
        if !require_tool("docker-registry") {
            return None;
        }
        // The port is free when picked but may be taken before the registry
        // binds it (tests run in parallel): try a few.
        let mut last = String::new();
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("stowage-registry-")
                .tempdir()
                .expect("registry folder");
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            );
            std::fs::write(dir.path().join("config.yml"), config).expect("write config");
            let mut cmd = Command::new("docker-registry");
            cmd.arg("serve")
                .arg(dir.path().join("config.yml"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(
                    std::fs::File::create(dir.path().join("log"))
                        .map(Stdio::from)
                        .unwrap_or_else(|_| Stdio::null()),
                );
            // Every REGISTRY_* variable overrides the registry's config, and
            // the rig exports podman's REGISTRY_AUTH_FILE.
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("REGISTRY_") {
                    cmd.env_remove(key);
                }
            }
            let child = cmd.spawn().expect("start docker-registry");
            let mut registry = LocalRegistry {
                child,
                port,
                _dir: dir,
            };
            match registry.wait_ready() {
                Ok(()) => return Some(registry),
                Err(why) => last = why,
            }
        }
        skip_or_fail(&format!("docker-registry did not start: {last}"));
        None
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self._dir.path().join("log")).unwrap_or_default();
                return Err(format!("exited with {status}: {log}"));
            }
            if self.get("/v2/").is_ok_and(|(status, _)| status == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("no answer to GET /v2/".into())
    }

    /// `127.0.0.1:PORT`, the registry part of references to it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A plain HTTP/1.1 GET: status and body.
    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json\r\nConnection: close\r\n\r\n",
            self.host()
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// The repositories the registry holds, from `/v2/_catalog`.
    pub fn catalog(&self) -> Vec<String> {
        let (status, body) = self.get("/v2/_catalog").expect("GET /v2/_catalog");
        assert_eq!(status, 200, "catalog: {body}");
        let doc: Value = serde_json::from_str(&body).expect("catalog JSON");
        doc["repositories"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The HTTP status of the manifest `reference` (a tag or digest) in `repo`.
    pub fn manifest_status(&self, repo: &str, reference: &str) -> u16 {
        self.get(&format!("/v2/{repo}/manifests/{reference}"))
            .map(|(s, _)| s)
            .unwrap_or(0)
    }

    /// Where the registry keeps its files (to check that nothing was written).
    pub fn data_dir(&self) -> &Path {
        self._dir.path()
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
