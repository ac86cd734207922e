//! A tiny std-only HTTP/1.1 static file server for `dist/`, bound to 127.0.0.1.
//!
//! It answers GET and HEAD for files directly under the served folder tree, one
//! connection at a time, and closes each connection after one response. It never serves
//! a path with `..`, never reads a request past `REQUEST_BYTES_MAX`, and never waits on a
//! silent client longer than `READ_TIMEOUT_MS`: a development server, not a web server.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

/// Headers of a GET are a few hundred bytes; anything larger is not a browser loading
/// the demo.
const REQUEST_BYTES_MAX: usize = 16 * 1024;
const READ_TIMEOUT_MS: u64 = 5_000;
/// The bundle is a few MiB at most; this bounds what one request can make us read.
const FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;

pub fn serve(dir: &Path, port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("binding 127.0.0.1:{port} (try --port N)"))?;
    println!("serving faultline at http://127.0.0.1:{port}/");
    println!("  pick a run with http://127.0.0.1:{port}/?scenario=NAME&seed=N");
    println!("  (`faultline list` shows the scenario names; Ctrl-C stops)");
    serve_listener(listener, dir);
    Ok(())
}

/// Answers requests on `listener` until the process ends.
pub fn serve_listener(listener: TcpListener, dir: &Path) {
    for stream in listener.incoming() {
        // A broken connection is the client's problem; the server keeps serving.
        let result = stream
            .map_err(anyhow::Error::from)
            .and_then(|s| answer(s, dir));
        if let Err(error) = result {
            eprintln!("serve: {error:#}");
        }
    }
}

/// Reads one request from `stream` and writes one response.
fn answer(mut stream: TcpStream, dir: &Path) -> anyhow::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(READ_TIMEOUT_MS)))?;
    let head = match read_head(&mut stream)? {
        Some(head) => head,
        None => return respond(&mut stream, 431, "text/plain", b"request too large\n", true),
    };
    let request_line = head.lines().next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let send_body = method == "GET";
    if !send_body && method != "HEAD" {
        return respond(&mut stream, 405, "text/plain", b"only GET and HEAD\n", true);
    }
    let Some(path) = resolve(dir, target) else {
        return respond(&mut stream, 400, "text/plain", b"bad path\n", send_body);
    };
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() && meta.len() <= FILE_BYTES_MAX => {
            let body = std::fs::read(&path)?;
            respond(&mut stream, 200, content_type(&path), &body, send_body)
        }
        _ => respond(&mut stream, 404, "text/plain", b"not found\n", send_body),
    }
}

/// The request head (request line and headers), or None when it outgrows the bound.
fn read_head(stream: &mut TcpStream) -> anyhow::Result<Option<String>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        if head.len() >= REQUEST_BYTES_MAX {
            return Ok(None);
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            break; // The client closed early; answer what we have.
        }
        head.extend_from_slice(&chunk[..read]);
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

/// Maps a request target to a file under `dir`; None for anything that could escape it.
fn resolve(dir: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let relative = path.strip_prefix('/')?;
    // Refuse rather than normalise: `..`, backslashes, escapes and NUL have no place in
    // the names of the few files dist/ holds.
    let suspicious = ['\\', '%', '\0', ':'];
    if relative.contains("..") || relative.contains(suspicious) || relative.starts_with('/') {
        return None;
    }
    let mut resolved = dir.to_path_buf();
    if relative.is_empty() {
        resolved.push("index.html");
    } else {
        resolved.push(relative);
    }
    Some(resolved)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|ext| ext.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    send_body: bool,
) -> anyhow::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Request Header Fields Too Large",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if send_body {
        stream.write_all(body)?;
    }
    stream.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_serves_the_index_page_and_queries_are_ignored() {
        let dir = Path::new("/srv/dist");
        let index = Some(dir.join("index.html"));
        assert_eq!(resolve(dir, "/"), index);
        assert_eq!(resolve(dir, "/?scenario=ping-pong&seed=2"), index);
        assert_eq!(resolve(dir, "/web_ui.js"), Some(dir.join("web_ui.js")));
    }

    #[test]
    fn paths_that_could_escape_the_folder_are_refused() {
        let dir = Path::new("/srv/dist");
        for bad in [
            "/../etc/passwd",
            "/a/../../b",
            "//etc/passwd",
            "/%2e%2e/x",
            "/a\\b",
            "x",
        ] {
            assert_eq!(resolve(dir, bad), None, "{bad}");
        }
    }

    #[test]
    fn wasm_and_javascript_get_the_types_browsers_insist_on() {
        assert_eq!(
            content_type(Path::new("a/web_ui_bg.wasm")),
            "application/wasm"
        );
        assert!(content_type(Path::new("web_ui.js")).starts_with("text/javascript"));
        assert!(content_type(Path::new("index.html")).starts_with("text/html"));
    }
}
