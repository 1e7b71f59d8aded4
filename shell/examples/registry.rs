//! A DNS server whose first resolver asks an HTTP service registry (the seed's
//! `Deferred`, with real I/O): `NAME.svc.test. A` (any case, `NAME` one label) sends
//! `GET {URL}/v1/NAME` and answers with the IPv4 address in a 200 response's plain-text
//! body (TTL 30, AA). A 404 passes the query to the forwarder; any other status, a
//! malformed body, a refused connection or the end of the query's budget is SERVFAIL.
//! Other names pass at once. Every lookup is a task on the worker's executor, so a slow
//! registry never delays other queries.
//!
//! ```sh
//! cargo run -p names-shell --example registry -- --registry http://127.0.0.1:8500
//! dig -p 10053 @127.0.0.1 web.svc.test A +short
//! ```
//!
//! The HTTP client is a minimal HTTP/1.1 GET over smol's TCP (http:// only, the response
//! bounded to 16 KiB, `Content-Length`, chunked or read to the end).

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;

use argh::FromArgs;
use names_core::domain::base::iana::Rtype;
use names_core::domain::rdata::A;
use names_core::setup::Setup;
use names_core::{parse_server, ConfigError, Query};
use names_shell::{
    deferred, resolv_conf, serve, AsyncResolver, LookupError, Options, OwnedQuery, Resolved,
};
use smol::io::{AsyncReadExt, AsyncWriteExt};

/// The largest registry response read (status line, headers and body).
const MAX_RESPONSE: usize = 16 * 1024;

#[derive(FromArgs)]
/// A DNS server answering NAME.svc.test. A from an HTTP service registry
/// (GET URL/v1/NAME), and forwarding everything else.
struct Args {
    /// address to serve on, UDP and TCP (default 127.0.0.1:10053)
    #[argh(option, default = "String::from(\"127.0.0.1:10053\")")]
    listen: String,
    /// base URL of the registry, http:// only (required)
    #[argh(option)]
    registry: String,
    /// upstream server IP[:PORT] (repeatable; default: the nameservers of /etc/resolv.conf)
    #[argh(option)]
    upstream: Vec<String>,
    /// time budget of a query in milliseconds (default 5000)
    #[argh(option, default = "5000")]
    timeout: u64,
}

/// Where the registry is: `http://HOST[:PORT][/PREFIX]`.
#[derive(Clone, Debug)]
struct Registry {
    /// `HOST:PORT`, to connect to.
    addr: String,
    /// `HOST[:PORT]` as written, for the Host header.
    host: String,
    /// The path before `/v1/NAME`, without a trailing slash.
    prefix: String,
}

impl Registry {
    fn parse(url: &str) -> Result<Registry, String> {
        let bad = |why: &str| format!("--registry {url:?}: {why}");
        if url.len() >= 8 && url[..8].eq_ignore_ascii_case("https://") {
            return Err(bad("https is not supported, only http://"));
        }
        let rest = match url.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &url[7..],
            _ => return Err(bad("not an http:// URL")),
        };
        let (host, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if host.is_empty() || host.contains(['@', '?', '#', ' ']) {
            return Err(bad("no usable host"));
        }
        if prefix.contains(['?', '#', ' ', '\r', '\n']) {
            return Err(bad("a query or fragment is not supported"));
        }
        let has_port = match host.rfind(':') {
            Some(i) => !host.ends_with(']') && host[i + 1..].parse::<u16>().is_ok(),
            None => false,
        };
        let addr = if has_port {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        Ok(Registry {
            addr,
            host: host.to_string(),
            prefix: prefix.trim_end_matches('/').to_string(),
        })
    }

    /// The service name of `NAME.svc.test.` (any case), lowercased; `None` for others.
    fn service(query: &Query<'_>) -> Option<String> {
        if query.qtype() != Rtype::A {
            return None;
        }
        let mut labels = query.qname().iter();
        let name = labels.next()?;
        let (svc, test) = (labels.next()?, labels.next()?);
        let root = labels.next()?;
        let ours = svc.as_slice().eq_ignore_ascii_case(b"svc")
            && test.as_slice().eq_ignore_ascii_case(b"test")
            && root.is_root()
            && labels.next().is_none()
            && !name.is_root();
        ours.then(|| String::from_utf8_lossy(&path_segment(name.as_slice())).into_owned())
    }

    /// `GET {prefix}/v1/{name}`: the status and the body.
    async fn get(&self, name: &str) -> Result<(u16, Vec<u8>), LookupError> {
        let mut stream = async_net::TcpStream::connect(self.addr.as_str())
            .await
            .map_err(|e| format!("registry {}: {e}", self.addr))?;
        let request = format!(
            "GET {}/v1/{name} HTTP/1.1\r\nHost: {}\r\nAccept: text/plain\r\n\
             User-Agent: names-registry\r\nConnection: close\r\n\r\n",
            self.prefix, self.host
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            if response.len() + n > MAX_RESPONSE {
                return Err(format!("registry response over {MAX_RESPONSE} bytes").into());
            }
            response.extend_from_slice(&buf[..n]);
            if let Some(done) = parse_response(&response, false)? {
                return Ok(done);
            }
        }
        parse_response(&response, true)?.ok_or_else(|| "registry response cut short".into())
    }
}

/// A label as a path segment: letters, digits, `-` and `_` as they are (lowercased),
/// every other byte percent-encoded, so no label escapes `/v1/`.
fn path_segment(label: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(label.len());
    for &b in label {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b.to_ascii_lowercase());
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// An HTTP/1.x response: `Ok(None)` while incomplete (`eof`: the peer closed, so a body
/// without a length ends here).
fn parse_response(bytes: &[u8], eof: bool) -> Result<Option<(u16, Vec<u8>)>, LookupError> {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "registry headers not text")?;
    let body = &bytes[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut parts = status.split(' ');
    let (version, code) = (parts.next().unwrap_or_default(), parts.next());
    let code: u16 = match code.map(str::parse) {
        Some(Ok(code)) if version.starts_with("HTTP/1.") => code,
        _ => return Err(format!("registry: not an HTTP/1 status line: {status:?}").into()),
    };
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err("registry: a malformed header".into());
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| "registry: bad length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    if chunked {
        return dechunk(body).map(|b| b.map(|b| (code, b)));
    }
    match length {
        Some(n) if body.len() >= n => Ok(Some((code, body[..n].to_vec()))),
        Some(_) if eof => Err("registry response cut short".into()),
        Some(_) => Ok(None),
        None if eof => Ok(Some((code, body.to_vec()))),
        None => Ok(None),
    }
}

/// A chunked body, once complete.
fn dechunk(mut body: &[u8]) -> Result<Option<Vec<u8>>, LookupError> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size = std::str::from_utf8(&body[..eol]).map_err(|_| "registry: bad chunk")?;
        let size = size.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| "registry: bad chunk size")?;
        let rest = &body[eol + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// The registry as an asynchronous resolver.
struct RegistryResolver(Registry);

impl AsyncResolver for RegistryResolver {
    fn name(&self) -> &str {
        "registry"
    }

    fn accepts(&self, query: &Query<'_>) -> bool {
        Registry::service(query).is_some()
    }

    async fn resolve(&self, query: OwnedQuery) -> Result<Resolved, LookupError> {
        let label = path_segment(query.first_label());
        let name = String::from_utf8_lossy(&label);
        let (status, body) = self.0.get(&name).await?;
        match status {
            200 => {
                let text = std::str::from_utf8(&body).map_err(|_| "registry body not text")?;
                let addr: Ipv4Addr = text
                    .trim()
                    .parse()
                    .map_err(|_| format!("registry body is not an IPv4 address: {text:?}"))?;
                Ok(Resolved::records([query.record(30, A::new(addr))]))
            }
            404 => Ok(Resolved::Pass),
            other => Err(format!("registry answered {other} for {name}").into()),
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let strs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let cmd = strs.first().copied().unwrap_or("registry");
    let args = match Args::from_args(&[cmd], strs.get(1..).unwrap_or_default()) {
        Ok(args) => args,
        Err(early) if early.status.is_ok() => {
            print!("{}", early.output);
            return ExitCode::SUCCESS;
        }
        Err(early) => {
            eprint!("{}", early.output);
            return ExitCode::from(2);
        }
    };
    let options = match setup(&args) {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("registry: {e}");
            return ExitCode::from(2);
        }
    };
    let (options, setup) = options;
    match serve(options, move || setup.build()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("registry: cannot serve: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The flags into options and a chain: the registry, then the forwarder.
fn setup(args: &Args) -> Result<(Options, Setup), String> {
    let registry = Registry::parse(&args.registry)?;
    if args.timeout == 0 {
        return Err("--timeout must be at least 1 ms".into());
    }
    let upstreams = if args.upstream.is_empty() {
        resolv_conf("/etc/resolv.conf")
    } else {
        let servers = args.upstream.iter().map(|u| parse_server(u));
        servers.collect::<Result<Vec<_>, ConfigError>>()
    }
    .map_err(|e| e.to_string())?;
    let mut options = Options::on(&args.listen).map_err(|e| e.to_string())?;
    options.config.budget = Duration::from_millis(args.timeout);
    let resolver = deferred(RegistryResolver(registry));
    let setup = Setup::new()
        .resolver(move || resolver.clone())
        .forward_to(upstreams);
    Ok((options, setup))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let r = Registry::parse("http://127.0.0.1:8500/base/").unwrap();
        assert_eq!(
            (r.addr.as_str(), r.prefix.as_str()),
            ("127.0.0.1:8500", "/base")
        );
        let r = Registry::parse("HTTP://registry.example").unwrap();
        assert_eq!(
            (r.addr.as_str(), r.prefix.as_str()),
            ("registry.example:80", "")
        );
        assert!(Registry::parse("https://x").unwrap_err().contains("https"));
        assert!(Registry::parse("ftp://x").is_err());
        assert!(Registry::parse("http://").is_err());
    }

    #[test]
    fn responses() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n10.0.0.1\n";
        assert_eq!(
            parse_response(ok, false).unwrap(),
            Some((200, b"10.0.0.1\n".to_vec()))
        );
        assert_eq!(parse_response(&ok[..20], false).unwrap(), None);
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n10.0\r\n4\r\n.0.1\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked, false).unwrap(),
            Some((200, b"10.0.0.1".to_vec()))
        );
        let close = b"HTTP/1.0 404 Not Found\r\n\r\nno";
        assert_eq!(parse_response(close, false).unwrap(), None);
        assert_eq!(
            parse_response(close, true).unwrap(),
            Some((404, b"no".to_vec()))
        );
        assert!(parse_response(b"garbage\r\n\r\n", true).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nx", true).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nx", true).is_err());
    }

    #[test]
    fn labels_stay_one_path_segment() {
        assert_eq!(path_segment(b"Web-1_a"), b"web-1_a");
        assert_eq!(path_segment(b"../x/y"), b"%2E%2E%2Fx%2Fy");
        assert_eq!(path_segment(b"a b\r\n"), b"a%20b%0D%0A");
    }
}
