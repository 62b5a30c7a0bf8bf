//! Just enough HTTP/1.1: requests and responses with `Content-Length` bodies.

use std::fmt::Write as _;

/// The outcome of parsing a buffer that may hold a partial message.
#[derive(Debug, PartialEq)]
pub enum Parse<T> {
    /// More bytes are needed.
    Incomplete,
    /// A message and the bytes it took.
    Done(T, usize),
    /// Not HTTP.
    Invalid(String),
}

/// An HTTP request.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub method: String,
    /// The request target (origin form: `/path?query`).
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// An HTTP response.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn write_headers(out: &mut String, headers: &[(String, String)], body: &[u8]) {
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("content-length") {
            let _ = write!(out, "{name}: {value}\r\n");
        }
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
}

impl Request {
    /// A `GET` with `Host` and `Connection: close`.
    pub fn get(host: &str, path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            headers: vec![
                ("Host".into(), host.into()),
                ("User-Agent".into(), "kubenat-sim".into()),
                ("Connection".into(), "close".into()),
            ],
            body: Vec::new(),
        }
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The `Host` header without its port, lower case (empty if absent).
    pub fn host(&self) -> String {
        let host = self.header("host").unwrap_or_default();
        let host = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        host.to_ascii_lowercase()
    }

    /// The path without the query.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("/")
    }

    /// Sets (or replaces) a header.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
    }

    /// The request on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        write_headers(&mut head, &self.headers, &self.body);
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

impl Response {
    /// A response with a text body.
    pub fn new(status: u16, reason: &str, body: &str) -> Response {
        Response {
            status,
            reason: reason.into(),
            headers: vec![
                ("Content-Type".into(), "text/html; charset=utf-8".into()),
                ("Connection".into(), "close".into()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Sets (or replaces) a header.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
    }

    /// The response on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        write_headers(&mut head, &self.headers, &self.body);
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// A message head: start line, headers, and its length with the blank line.
type Head = (String, Vec<(String, String)>, usize);

/// Splits a head (`start line`, headers) from `buf`; `None` while incomplete.
fn split_head(buf: &[u8]) -> Option<Result<Head, String>> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return Some(Err("head is not UTF-8".into()));
    };
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Some(Err(format!("bad header line {line:?}")));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    Some(Ok((start, headers, end + 4)))
}

/// The body after a head of `head_len` bytes, per `Content-Length` (or to the end of the
/// stream when `eof` and there is none).
fn body(
    buf: &[u8],
    headers: &[(String, String)],
    head_len: usize,
    eof: bool,
) -> Option<Result<(Vec<u8>, usize), String>> {
    match header(headers, "content-length") {
        Some(len) => {
            let Ok(len) = len.parse::<usize>() else {
                return Some(Err(format!("bad Content-Length {len:?}")));
            };
            let end = head_len + len;
            (buf.len() >= end).then(|| Ok((buf[head_len..end].to_vec(), end)))
        }
        None if eof => Some(Ok((buf[head_len..].to_vec(), buf.len()))),
        None => None,
    }
}

/// Parses a request (requests without `Content-Length` have no body).
pub fn parse_request(buf: &[u8]) -> Parse<Request> {
    let (start, headers, head_len) = match split_head(buf) {
        None => return Parse::Incomplete,
        Some(Err(e)) => return Parse::Invalid(e),
        Some(Ok(head)) => head,
    };
    let parts: Vec<&str> = start.split(' ').collect();
    let [method, path, version] = parts[..] else {
        return Parse::Invalid(format!("bad request line {start:?}"));
    };
    if !version.starts_with("HTTP/1.") {
        return Parse::Invalid(format!("unsupported version {version:?}"));
    }
    let (body, used) = match header(&headers, "content-length") {
        None => (Vec::new(), head_len),
        Some(_) => match body(buf, &headers, head_len, false) {
            None => return Parse::Incomplete,
            Some(Err(e)) => return Parse::Invalid(e),
            Some(Ok(b)) => b,
        },
    };
    Parse::Done(
        Request {
            method: method.into(),
            path: path.into(),
            headers,
            body,
        },
        used,
    )
}

/// Parses a response; `eof` says the stream has ended (for bodies without a length).
pub fn parse_response(buf: &[u8], eof: bool) -> Parse<Response> {
    let (start, headers, head_len) = match split_head(buf) {
        None => return Parse::Incomplete,
        Some(Err(e)) => return Parse::Invalid(e),
        Some(Ok(head)) => head,
    };
    let mut parts = start.splitn(3, ' ');
    let (Some(version), Some(status)) = (parts.next(), parts.next()) else {
        return Parse::Invalid(format!("bad status line {start:?}"));
    };
    let Ok(status) = status.parse::<u16>() else {
        return Parse::Invalid(format!("bad status {status:?}"));
    };
    if !version.starts_with("HTTP/1.") {
        return Parse::Invalid(format!("unsupported version {version:?}"));
    }
    let reason = parts.next().unwrap_or_default().to_string();
    match body(buf, &headers, head_len, eof) {
        None => Parse::Incomplete,
        Some(Err(e)) => Parse::Invalid(e),
        Some(Ok((body, used))) => Parse::Done(
            Response {
                status,
                reason,
                headers,
                body,
            },
            used,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_and_partial() {
        let mut r = Request::get("web1.miempresa.com:80", "/blog?p=1");
        r.body = b"x".to_vec();
        let bytes = r.to_bytes();
        assert_eq!(parse_request(&bytes[..bytes.len() - 1]), Parse::Incomplete);
        let Parse::Done(parsed, used) = parse_request(&bytes) else {
            panic!("complete request expected");
        };
        assert_eq!(used, bytes.len());
        assert_eq!(parsed.host(), "web1.miempresa.com");
        assert_eq!(parsed.path_only(), "/blog");
        assert_eq!(parsed.body, b"x");
    }

    #[test]
    fn response_with_and_without_length() {
        let bytes = Response::new(200, "OK", "hello").to_bytes();
        let Parse::Done(r, _) = parse_response(&bytes, false) else {
            panic!()
        };
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let raw = b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nnope";
        assert_eq!(parse_response(raw, false), Parse::Incomplete);
        let Parse::Done(r, _) = parse_response(raw, true) else {
            panic!()
        };
        assert_eq!((r.status, r.body.as_slice()), (404, &b"nope"[..]));
        assert!(matches!(
            parse_request(b"SSH-2.0\r\n\r\n"),
            Parse::Invalid(_)
        ));
    }
}
