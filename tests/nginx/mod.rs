//! A real nginx (Debian's `/usr/sbin/nginx`) for tests: `mod nginx;` in a test file.
//!
//! [`Nginx::start`] writes a config into its own temp dir (daemon off, single process, its own
//! pid/log/temp paths), runs `nginx -p DIR -c DIR/nginx.conf -e DIR/error.log` on a free port
//! of 127.0.0.1, waits until it accepts connections, and stops it on drop. [`Cert`] makes a
//! self-signed certificate for 127.0.0.1 with `openssl req`.
//!
//! A missing nginx (or openssl) makes the test fail with a message saying what to install,
//! unless `ZSYNC3_SKIP_NGINX=1` is set: then [`nginx_available`] returns false and the test
//! skips itself.
#![allow(dead_code)]

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::TempDir;

/// Where Debian installs nginx.
pub const NGINX: &str = "/usr/sbin/nginx";
/// Set to 1 to skip the nginx tests when nginx is not installed.
pub const SKIP_NGINX: &str = "ZSYNC3_SKIP_NGINX";

/// True if `path` exists. Otherwise: false (the caller skips) when `$skip_var` is `1`, else a
/// panic that says what to install.
pub fn require(path: &str, skip_var: &str, install: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    if std::env::var(skip_var).as_deref() == Ok("1") {
        eprintln!("SKIPPED: {path} is not installed and {skip_var}=1");
        return false;
    }
    panic!(
        "{path} is not installed, and this test needs it: install it with `{install}` \
         (or set {skip_var}=1 to skip the tests that need it)"
    );
}

/// Whether the nginx tests can run (see [`require`]).
pub fn nginx_available() -> bool {
    require(NGINX, SKIP_NGINX, "apt-get install -y nginx")
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// A self-signed certificate for `127.0.0.1` (CN and subjectAltName IP).
pub struct Cert {
    _dir: TempDir,
    /// The certificate (PEM); also the CA file clients need.
    pub cert: PathBuf,
    /// The private key (PEM, unencrypted).
    pub key: PathBuf,
}

impl Cert {
    /// Generate one with `openssl req -x509`.
    pub fn generate() -> Cert {
        require("/usr/bin/openssl", SKIP_NGINX, "apt-get install -y openssl");
        let dir = TempDir::new("cert");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let out = Command::new("/usr/bin/openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success() && cert.is_file() && key.is_file(),
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Cert {
            _dir: dir,
            cert,
            key,
        }
    }
}

/// A running nginx serving one directory. Dropping it stops it.
pub struct Nginx {
    child: Child,
    dir: TempDir,
    port: u16,
    tls: bool,
}

impl Nginx {
    /// Serve `root` over http, or over https with `tls`.
    pub fn start(root: &Path, tls: Option<&Cert>) -> Nginx {
        let mut last = String::new();
        // The port is picked before nginx binds it; another process may take it meanwhile.
        for _ in 0..5 {
            match Self::try_start(root, tls) {
                Ok(n) => return n,
                Err(e) if e.contains("in use") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("nginx could not get a free port: {last}");
    }

    fn try_start(root: &Path, tls: Option<&Cert>) -> Result<Nginx, String> {
        let dir = TempDir::new("nginx");
        let port = free_port();
        let d = dir.path().display();
        let ssl = match tls {
            Some(c) => format!(
                "ssl_certificate {};\n        ssl_certificate_key {};",
                c.cert.display(),
                c.key.display()
            ),
            None => String::new(),
        };
        let conf = format!(
            "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port}{listen_ssl};
        server_name localhost;
        root {root};
        {ssl}
    }}
}}
",
            listen_ssl = if tls.is_some() { " ssl" } else { "" },
            root = root.display(),
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let stderr = File::create(dir.path().join("stderr.log")).expect("create stderr.log");
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot run {NGINX}: {e}"))?;
        let mut n = Nginx {
            child,
            dir,
            port,
            tls: tls.is_some(),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = n.child.try_wait() {
                return Err(format!("nginx exited at startup ({st}): {}", n.logs()));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(n);
            }
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!("nginx did not start within 10 s: {}", n.logs()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http(s)://127.0.0.1:PORT` + `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// The access log so far (one line per request).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Error log and stderr, for failure messages.
    pub fn logs(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
