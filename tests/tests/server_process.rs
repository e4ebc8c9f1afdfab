//! The `server` binary as an operator runs it: `--help` and `--version` print and exit, a bad
//! setting stops it with one line naming the variable, and `LOG_FORMAT=json` makes every line of
//! its output JSON (the banner, the demo token and one access-log line per request included), with
//! no ANSI colour when the output is not a terminal. `/metrics` has its counters at zero from the
//! start, the build, the pool and the job queue.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn run(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Output> {
    let dir = std::env::temp_dir().join(format!("server-process-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let output = Command::new(tests::workspace_binary("server")?)
        .args(args)
        .current_dir(&dir)
        .env_clear()
        .envs(env.iter().copied())
        .output()?;
    std::fs::remove_dir_all(&dir)?;
    Ok(output)
}

#[test]
fn help_and_version_print_and_exit_and_bad_settings_stop_with_one_line() -> anyhow::Result<()> {
    let help = run(&["--help"], &[])?;
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("Usage: server") && text.contains("DATABASE_URL"),
        "{text}"
    );
    let version = run(&["--version"], &[])?;
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("server {}", env!("CARGO_PKG_VERSION"))
    );
    for (name, value) in [
        ("APP_ENV", "prod"),
        ("CORS_ALLOWED_ORIGINS", "app.example.com"),
        ("AUTH_JWT_LEEWAY_SECONDS", "600"),
    ] {
        let output = run(&[], &[(name, value)])?;
        assert!(!output.status.success(), "{name}={value} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].starts_with(&format!("server: {name} is invalid")),
            "{stderr}"
        );
    }
    Ok(())
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn json_logs_are_json_on_every_line_with_an_access_line_per_request() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("server-json-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let database = format!("sqlite://{}/p.db?mode=rwc", dir.display());
    let mut child = Running(
        Command::new(tests::workspace_binary("server")?)
            .current_dir(&dir)
            .env_clear()
            .env("LOG_FORMAT", "json")
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", &database)
            .env("BACKGROUND_WORKERS", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?,
    );
    let stdout = child
        .0
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let wait_for = |lines: &mut Vec<String>, needle: &str| -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !lines.iter().any(|line| line.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            anyhow::ensure!(!left.is_zero(), "no line with {needle:?} in {lines:#?}");
            if let Ok(line) = lines_rx.recv_timeout(left) {
                lines.push(line);
            }
        }
        Ok(())
    };
    wait_for(&mut lines, "\"listening\"")?;
    let metrics = http_get(port, "/metrics")?;
    let healthz = http_get(port, "/healthz")?;
    assert!(healthz.contains("\"ok\""), "{healthz}");
    wait_for(&mut lines, "\"route\":\"/healthz\"")?;
    for series in [
        "build_info{version=\"",
        "db_pool_connections{state=\"idle\"}",
        "job_queue_depth{kind=\"sync\",state=\"queued\"} 0",
        "job_runs_total{kind=\"sync\",outcome=\"failed\"} 0",
        "job_runs_total{kind=\"sync\",outcome=\"yielded\"} 0",
        "job_queue_wait_seconds_count{kind=\"sync\"} 0",
        "webhook_deliveries_total{provider=\"stripe\",result=\"accepted\"} 0",
        "token_refreshes_total{outcome=\"revoked\",provider=\"hubspot\"} 0",
    ] {
        assert!(metrics.contains(series), "{series} missing from /metrics");
    }
    for line in &lines {
        let parsed: serde_json::Value = serde_json::from_str(line)
            .map_err(|error| anyhow::anyhow!("not JSON ({error}): {line}"))?;
        assert!(parsed["level"].is_string(), "{line}");
        assert!(!line.contains('\u{1b}'), "ANSI in {line}");
    }
    let banner = lines
        .iter()
        .find(|line| line.contains("demo_token"))
        .ok_or_else(|| anyhow::anyhow!("no demo token line in {lines:#?}"))?;
    assert!(banner.contains("graphiql_url"), "{banner}");
    let access: serde_json::Value = serde_json::from_str(
        lines
            .iter()
            .find(|line| line.contains("\"route\":\"/healthz\""))
            .map_or("{}", String::as_str),
    )?;
    let fields = &access["fields"];
    assert_eq!(fields["method"], "GET");
    assert_eq!(fields["status"], 200);
    assert!(
        fields["duration_ms"].is_number() && fields["request_id"].is_string(),
        "{access}"
    );
    drop(child);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A plain HTTP/1.1 GET on loopback; the body.
fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default())
}
