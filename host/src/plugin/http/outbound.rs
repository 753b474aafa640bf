//! What the `http` import lets out, decided without I/O: a plugin's URL parsed and
//! validated, the `capabilities.http` grants it is matched against, the addresses a grant
//! reaches, and the request head built from the plugin's headers. Pure functions on plain
//! types (no WebAssembly runtime, no sockets), so that `plugin::net` does the I/O and a
//! fuzz target (`host/fuzz/fuzz_targets/http_url.rs`) can call every check directly.
//!
//! The rules, each refused with a reason rather than repaired:
//! * A URL is `http://` or `https://`, a host and an optional port, then the path and an
//!   optional query, which go into the request line as written. Every byte of the URL is
//!   visible ASCII: no CR, LF or other control character, no space, nothing non-ASCII
//!   (percent-encode it), no backslash. A `%` starts two hex digits. The fragment
//!   (`#...`) is dropped, never sent. No credentials (`user@`).
//! * No path segment is `.` or `..` once normalised: percent-decoded (`%2e%2e`, `%2E.`),
//!   split at decoded `/` and `\` (`..%2f`), and cut at `;` (`..;`, which some servers
//!   read as `..`); no segment decodes to a control character, to bytes that are not
//!   UTF-8, or to another `%XX` (double encoding).
//! * A host is a name (letters, digits, `-`, `_`, `.`), a dotted-quad IPv4 address or a
//!   bracketed IPv6 address; a name that ends like a number (`127.1`, `0x7f.1`) is
//!   refused rather than guessed at.
//! * A grant is `scheme://host[:port][/path]`: `*` in the host, the path (with the query)
//!   and as the whole port matches any run of characters; no path means any path, no
//!   port the scheme's. The matcher is linear in the pattern and the text.
//! * A grant whose host has no `*` names its destination: it reaches whatever that host
//!   is or resolves to, loopback and private addresses included. A wildcard host reaches
//!   public addresses only: loopback, link-local (the cloud metadata address
//!   169.254.169.254 among them), private, shared, unspecified, multicast and reserved
//!   addresses, and the IPv6 forms that embed such an IPv4 address, are refused.
//! * The plugin's headers are HTTP tokens with values of visible ASCII, spaces and tabs;
//!   the headers that frame the request (`Host`, `Content-Length`, `Transfer-Encoding`,
//!   `Connection`, ...) are the host's.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (default port 80).
    Http,
    /// HTTP over TLS, the server's certificate verified (default port 443).
    Https,
}

impl Scheme {
    /// The port a URL without one means: 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// The scheme as a URL writes it (`"https"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A URL's host: a name (lowercase) or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, lowercase, resolved when the request is made.
    Name(String),
    /// An IPv4 address in dotted-quad form, or an IPv6 one written in brackets.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    /// The host as matched against a grant: the name, or the address without brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A URL the `http` import may send to (its grant not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Where it goes, as the URL names it.
    pub host: Host,
    /// The port, the scheme's default when the URL gives none.
    pub port: u16,
    /// The path and the query, as they go into the request line: `/` when the URL has no
    /// path; never a fragment.
    pub target: String,
}

impl Url {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The `Host` header's value: the host (an IPv6 address in brackets) and the port
    /// unless it is the scheme's.
    pub fn authority(&self) -> String {
        let host = match &self.host {
            Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
            other => other.to_string(),
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Why a URL (or a grant's pattern) is refused. Displayed after the URL it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// No `scheme://` at the start.
    #[error("is not an absolute URL (scheme://host/path)")]
    NotAbsolute,
    /// A scheme other than `http` and `https` (the scheme given).
    #[error("has the scheme `{0}`: http and https only")]
    Scheme(String),
    /// A CR or LF anywhere in the text.
    #[error("has a line break ({which}) at byte {at}: refused, not escaped (it would end the request line and start a header of the URL's choosing)")]
    LineBreak {
        /// `"CR"` or `"LF"`.
        which: &'static str,
        /// Its byte offset in the text.
        at: usize,
    },
    /// Another control character (below 0x20, or DEL).
    #[error("has a control character (byte {byte:#04x}) at byte {at}: refused, not escaped")]
    Control {
        /// The byte.
        byte: u8,
        /// Its byte offset in the text.
        at: usize,
    },
    /// A space, which would split the request line.
    #[error("has a space at byte {at}: write it as %20")]
    Space {
        /// Its byte offset in the text.
        at: usize,
    },
    /// A character outside ASCII.
    #[error("has a non-ASCII character {ch:?} at byte {at}: percent-encode its UTF-8 bytes")]
    NonAscii {
        /// The character.
        ch: char,
        /// Its byte offset in the text.
        at: usize,
    },
    /// A `\`, which some servers read as `/`.
    #[error(
        "has a backslash at byte {at}: some servers read it as `/`; write it as %5C if it is data"
    )]
    Backslash {
        /// Its byte offset in the text.
        at: usize,
    },
    /// A `%` not followed by two hex digits.
    #[error("has a `%` not followed by two hex digits at byte {at}: write a literal % as %25")]
    Percent {
        /// Its byte offset in the text.
        at: usize,
    },
    /// Nothing between `://` and the path.
    #[error("has no host")]
    NoHost,
    /// A `user@` (or `user:password@`) before the host.
    #[error("has credentials (`user@`) before its host: they are not supported; send them in a header (Authorization)")]
    Userinfo,
    /// A host that is neither a name, a dotted-quad IPv4 address nor a bracketed IPv6 one
    /// (a name ending like a number, `127.1`, included).
    #[error("has the host `{host}`, which is not {why}")]
    BadHost {
        /// The host, lower-cased.
        host: String,
        /// What it should have been.
        why: &'static str,
    },
    /// A port that is not a number from 1 to 65535 (the port as written).
    #[error("has the port `{0}`: a port is a number from 1 to 65535")]
    BadPort(String),
    /// A `*` in a URL's host or port (only a grant may have one).
    #[error("has a wildcard `*` in its host or port: only a grant may")]
    Wildcard,
    /// A path segment that is `.` or `..`, as written or once decoded, split or cut.
    #[error("has the path segment `{segment}`, which is `{dots}`{how}: a path may not climb out of what its grant allows")]
    DotSegment {
        /// The segment as written.
        segment: String,
        /// `"."` or `".."`.
        dots: &'static str,
        /// How it became one, as the message says it (once percent-decoded, or once cut at
        /// `;`); empty when it is written so.
        how: &'static str,
    },
    /// A path segment that decodes to a control character, to bytes that are not UTF-8,
    /// or to another `%XX`.
    #[error("has the path segment `{segment}`, which decodes to {what}")]
    BadDecoding {
        /// The segment as written.
        segment: String,
        /// Which of the three it decodes to.
        what: &'static str,
    },
}

/// Parses and validates a URL a plugin gives the `http` import (see the module's rules).
pub fn parse_url(url: &str) -> Result<Url, UrlError> {
    let parts = split(url, false)?;
    let HostPattern::Exact(host) = parts.host else {
        return Err(UrlError::Wildcard);
    };
    let Some(port) = parts.port else {
        return Err(UrlError::Wildcard);
    };
    Ok(Url {
        scheme: parts.scheme,
        host,
        port,
        target: parts.target.unwrap_or_else(|| "/".to_string()),
    })
}

/// A grant's host: exact, or a pattern with `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// One host: it reaches whatever that host is, private addresses included.
    Exact(Host),
    /// A pattern with `*`, lowercase: it reaches public addresses only.
    Wildcard(String),
}

/// One `capabilities.http` entry, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// As written in the manifest.
    pub text: String,
    /// The scheme a URL must have (no wildcard).
    pub scheme: Scheme,
    /// The host a URL must have or match.
    pub host: HostPattern,
    /// `None`: any port (`:*`).
    pub port: Option<u16>,
    /// The pattern the URL's path and query must match.
    pub target: String,
}

/// Parses a `capabilities.http` entry (see the module's rules).
pub fn parse_grant(text: &str) -> Result<Grant, UrlError> {
    let parts = split(text, true)?;
    Ok(Grant {
        text: text.to_string(),
        scheme: parts.scheme,
        host: parts.host,
        port: parts.port,
        target: parts.target.unwrap_or_else(|| "/*".to_string()),
    })
}

impl Grant {
    /// Whether `url` is one this grant allows.
    pub fn matches(&self, url: &Url) -> bool {
        self.scheme == url.scheme
            && self.port.is_none_or(|p| p == url.port)
            && match &self.host {
                HostPattern::Exact(host) => *host == url.host,
                HostPattern::Wildcard(pattern) => glob_match(pattern, &url.host.to_string()),
            }
            && glob_match(&self.target, &url.target)
    }

    /// Whether this grant reaches `ip`: a grant naming its host exactly reaches whatever
    /// that host is; a wildcard host, public addresses only. Else the class refused.
    pub fn reaches(&self, ip: IpAddr) -> Result<(), AddressClass> {
        match (&self.host, classify(ip)) {
            (HostPattern::Exact(_), _) | (_, AddressClass::Public) => Ok(()),
            (HostPattern::Wildcard(_), class) => Err(class),
        }
    }
}

/// The first of `grants` that allows `url`, if any.
pub fn find_grant<'g>(grants: &'g [Grant], url: &Url) -> Option<&'g Grant> {
    grants.iter().find(|g| g.matches(url))
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (none
/// included) and every other character itself. Linear in both: the pieces between stars
/// are found leftmost-first (for `*`-only patterns the leftmost place of each piece is
/// never worse than a later one), each search starting where the last one ended.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let Some((head, last)) = pattern.rsplit_once('*') else {
        return pattern == text;
    };
    let mut pieces = head.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for piece in pieces {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// A URL or grant cut into its parts, each validated.
struct Parts {
    scheme: Scheme,
    host: HostPattern,
    port: Option<u16>,
    /// The path (`/` when only a query is given) and the query; `None` without either.
    target: Option<String>,
}

fn split(url: &str, wildcards: bool) -> Result<Parts, UrlError> {
    check_bytes(url)?;
    let (scheme, rest) = url.split_once("://").ok_or(UrlError::NotAbsolute)?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ if scheme.is_empty() || scheme.contains(['/', '?', '#']) => {
            return Err(UrlError::NotAbsolute)
        }
        _ => return Err(UrlError::Scheme(scheme.to_string())),
    };
    let offset = url.len() - rest.len();
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(end);
    let (host, port) = authority_parts(authority, scheme, wildcards)?;
    // The fragment is dropped: never sent, never matched.
    let rest = rest.split('#').next().unwrap_or_default();
    let target = if rest.is_empty() {
        None
    } else {
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        check_percent(rest, offset + end)?;
        check_path(path)?;
        let path = if path.is_empty() { "/" } else { path };
        Some(match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        })
    };
    Ok(Parts {
        scheme,
        host,
        port,
        target,
    })
}

/// Every byte visible ASCII, no backslash.
fn check_bytes(url: &str) -> Result<(), UrlError> {
    for (at, b) in url.bytes().enumerate() {
        match b {
            b'\r' => return Err(UrlError::LineBreak { which: "CR", at }),
            b'\n' => return Err(UrlError::LineBreak { which: "LF", at }),
            b' ' => return Err(UrlError::Space { at }),
            b'\\' => return Err(UrlError::Backslash { at }),
            0..=0x1f | 0x7f => return Err(UrlError::Control { byte: b, at }),
            0x80.. => {
                let ch = url[at..].chars().next().unwrap_or_default();
                return Err(UrlError::NonAscii { ch, at });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every `%` starts two hex digits (`offset`: where `text` starts in the URL).
fn check_percent(text: &str, offset: usize) -> Result<(), UrlError> {
    let bytes = text.as_bytes();
    for (at, b) in bytes.iter().enumerate() {
        if *b == b'%' && decode_escape(&bytes[at..]).is_none() {
            return Err(UrlError::Percent { at: offset + at });
        }
    }
    Ok(())
}

/// The byte `%XX` at the start of `bytes` stands for, if it is one.
fn decode_escape(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [b'%', hi, lo, ..] => {
            let digit = |c: u8| (c as char).to_digit(16);
            Some((digit(*hi)? * 16 + digit(*lo)?) as u8)
        }
        _ => None,
    }
}

/// No segment of `path` is a dot segment once normalised, nor decodes to anything a
/// server could read differently from what the grant was matched against.
fn check_path(path: &str) -> Result<(), UrlError> {
    for segment in path.split('/') {
        let mut decoded = Vec::with_capacity(segment.len());
        let bytes = segment.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match decode_escape(&bytes[i..]) {
                Some(b) => {
                    decoded.push(b);
                    i += 3;
                }
                None => {
                    decoded.push(bytes[i]);
                    i += 1;
                }
            }
        }
        let bad = |what| {
            Err(UrlError::BadDecoding {
                segment: segment.to_string(),
                what,
            })
        };
        if decoded.iter().any(|b| b.is_ascii_control()) {
            return bad("a control character");
        }
        if std::str::from_utf8(&decoded).is_err() {
            return bad("bytes that are not UTF-8");
        }
        if (0..decoded.len()).any(|i| decoded[i] == b'%' && decode_escape(&decoded[i..]).is_some())
        {
            return bad("another percent-encoded byte (double encoding)");
        }
        for piece in decoded.split(|b| *b == b'/' || *b == b'\\') {
            let name = piece.split(|b| *b == b';').next().unwrap_or_default();
            let dots = match name {
                b"." => ".",
                b".." => "..",
                _ => continue,
            };
            let how = if decoded.as_slice() != bytes {
                " once percent-decoded"
            } else if name.len() != piece.len() {
                " once cut at `;`"
            } else {
                ""
            };
            return Err(UrlError::DotSegment {
                segment: segment.to_string(),
                dots,
                how,
            });
        }
    }
    Ok(())
}

/// The host and port of an authority (`host`, `host:port`, `[v6]`, `[v6]:port`).
fn authority_parts(
    authority: &str,
    scheme: Scheme,
    wildcards: bool,
) -> Result<(HostPattern, Option<u16>), UrlError> {
    if authority.contains('@') {
        return Err(UrlError::Userinfo);
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or_else(|| UrlError::BadHost {
            host: authority.to_string(),
            why: "an IPv6 address in brackets (no closing `]`)",
        })?;
        let ip: Ipv6Addr = inside.parse().map_err(|_| UrlError::BadHost {
            host: inside.to_string(),
            why: "an IPv6 address (zone ids are not supported)",
        })?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| UrlError::BadPort(p.to_string()))?,
            ),
        };
        (HostPattern::Exact(Host::Ip(IpAddr::V6(ip))), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if port.is_some_and(|p| p.contains(':')) {
            return Err(UrlError::BadHost {
                host: authority.to_string(),
                why: "a name or an address (an IPv6 address goes in brackets: [::1])",
            });
        }
        (host_pattern(host, wildcards)?, port)
    };
    let port = match port {
        None => Some(scheme.default_port()),
        Some("*") if wildcards => None,
        Some("*") => return Err(UrlError::Wildcard),
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|n| *n > 0 && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| UrlError::BadPort(p.to_string()))?,
        ),
    };
    Ok((host, port))
}

fn host_pattern(host: &str, wildcards: bool) -> Result<HostPattern, UrlError> {
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    let host = host.to_ascii_lowercase();
    let bad = |why| {
        Err(UrlError::BadHost {
            host: host.clone(),
            why,
        })
    };
    if host.contains('*') && !wildcards {
        return Err(UrlError::Wildcard);
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._*".contains(&b);
    if !host.bytes().all(allowed) {
        return bad("a name (letters, digits, `-`, `_` and `.`) or an address");
    }
    if host.len() > 253 || host.split('.').any(str::is_empty) {
        return bad("a name: empty labels (`..`, a leading or trailing `.`), or longer than 253");
    }
    if host.contains('*') {
        return Ok(HostPattern::Wildcard(host));
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(HostPattern::Exact(Host::Ip(IpAddr::V4(ip))));
    }
    // `127.1`, `2130706433` or `0x7f.0.0.1` are addresses to some resolvers and names to
    // others: refused rather than guessed at.
    let last = host.rsplit('.').next().unwrap_or_default();
    if last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x") {
        return bad("an IPv4 address in dotted-quad form (four numbers 0-255), nor a name");
    }
    Ok(HostPattern::Exact(Host::Name(host)))
}

/// What kind of address an IP address is, for the grants that may reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Anything not below: reachable by every grant that matches.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 169.254.0.0/16 (the cloud metadata address among them), fe80::/10.
    LinkLocal,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (shared), fc00::/7, fec0::/10.
    Private,
    /// 0.0.0.0/8, :: (connecting there reaches this machine).
    Unspecified,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 240.0.0.0/4 (broadcast among them).
    Reserved,
}

impl AddressClass {
    /// The class as a refusal names it ("a loopback address (this machine)").
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address (this machine)",
            AddressClass::LinkLocal => {
                "a link-local address (the cloud metadata service lives at 169.254.169.254)"
            }
            AddressClass::Private => "a private network address",
            AddressClass::Unspecified => "an unspecified address (it reaches this machine)",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

/// The class of `ip`; an IPv6 address embedding an IPv4 one (mapped `::ffff:a.b.c.d`,
/// compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`) has the
/// class of the IPv4 address.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, ..] = ip.octets();
    match (a, b) {
        (0, _) => AddressClass::Unspecified,
        (127, _) => AddressClass::Loopback,
        (169, 254) => AddressClass::LinkLocal,
        (10, _) | (192, 168) => AddressClass::Private,
        (172, 16..=31) | (100, 64..=127) => AddressClass::Private,
        (224..=239, _) => AddressClass::Multicast,
        (240.., _) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        classify_v4(Ipv4Addr::new(a, b, c, d))
    };
    match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => AddressClass::Unspecified,
        [0, 0, 0, 0, 0, 0, 0, 1] => AddressClass::Loopback,
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0, 0, hi, lo] => embedded(hi, lo),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => embedded(hi, lo),
        [0x64, 0xff9b, 1, ..] => AddressClass::Private,
        [0x2002, hi, lo, ..] => embedded(hi, lo),
        [first, ..] if first & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
        [first, ..] if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 => {
            AddressClass::Private
        }
        [first, ..] if first & 0xff00 == 0xff00 => AddressClass::Multicast,
        _ => AddressClass::Public,
    }
}

/// Why a plugin's header is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The name is empty or not an HTTP token (the name given).
    #[error("the header name {0:?} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)")]
    Name(String),
    /// The header frames the request, so the host writes or forbids it (the name given).
    #[error("the header {0} is the host's (it writes Host, Content-Length, Connection and User-Agent itself, and never Transfer-Encoding, TE, Trailer, Upgrade, Keep-Alive, Expect or Proxy-Connection): leave it out")]
    Reserved(String),
    /// The value holds a CR or LF.
    #[error(
        "the header {name} has a line break in its value: refused (it would start another header)"
    )]
    LineBreak {
        /// The header's name.
        name: String,
    },
    /// The value holds another control character (tabs are allowed).
    #[error("the header {name} has a control character (byte {byte:#04x}) in its value")]
    Control {
        /// The header's name.
        name: String,
        /// The byte.
        byte: u8,
    },
    /// The value holds a byte outside ASCII.
    #[error("the header {name} has a non-ASCII character in its value: encode it (e.g. RFC 8187's UTF-8'' form, or base64)")]
    NonAscii {
        /// The header's name.
        name: String,
    },
}

/// The headers that frame a request: the host writes or forbids them.
const HOST_HEADERS: [&str; 11] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "user-agent",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "expect",
    "proxy-connection",
];

/// Whether a plugin may send the header `name: value`.
pub fn check_header(name: &str, value: &str) -> Result<(), HeaderError> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(HeaderError::Name(name.to_string()));
    }
    let lower = name.to_ascii_lowercase();
    if HOST_HEADERS.contains(&lower.as_str()) {
        return Err(HeaderError::Reserved(name.to_string()));
    }
    for b in value.bytes() {
        match b {
            b'\r' | b'\n' => {
                return Err(HeaderError::LineBreak {
                    name: name.to_string(),
                })
            }
            b'\t' | 0x20..=0x7e => {}
            0x80.. => {
                return Err(HeaderError::NonAscii {
                    name: name.to_string(),
                })
            }
            _ => {
                return Err(HeaderError::Control {
                    name: name.to_string(),
                    byte: b,
                })
            }
        }
    }
    Ok(())
}

/// The head of a POST of `length` bytes to `url` with the plugin's `headers`, each
/// checked (see [`check_header`]).
pub fn request_head(
    url: &Url,
    headers: &[(String, String)],
    length: usize,
) -> Result<String, HeaderError> {
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {length}\r\nConnection: close\r\nUser-Agent: metaclaude/{}\r\n",
        url.target,
        url.authority(),
        env!("CARGO_PKG_VERSION")
    );
    for (name, value) in headers {
        check_header(name, value)?;
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        parse_url(text).unwrap_or_else(|e| panic!("{text:?} {e}"))
    }

    /// Asserts that each URL is refused with a message containing its reason.
    fn assert_refused(cases: &[(&str, &str)]) {
        for (text, reason) in cases {
            match parse_url(text) {
                Ok(u) => panic!("{text:?} was accepted: {u:?}"),
                Err(e) => assert!(e.to_string().contains(reason), "{text:?}: {e}"),
            }
        }
    }

    fn grant(text: &str) -> Grant {
        parse_grant(text).unwrap_or_else(|e| panic!("{text:?} {e}"))
    }

    #[test]
    fn urls_keep_their_path_and_query_and_drop_the_fragment() {
        let u = url("http://127.0.0.1:9093/api/v2/alerts");
        assert_eq!(u.scheme, Scheme::Http);
        assert_eq!(u.host, Host::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!((u.port, u.target.as_str()), (9093, "/api/v2/alerts"));
        assert_eq!(u.authority(), "127.0.0.1:9093");
        let u = url("HTTPS://Hooks.Example.COM/x/y?token=a%20b&z=1#part");
        assert_eq!(u.scheme, Scheme::Https);
        assert_eq!(u.host, Host::Name("hooks.example.com".into()));
        assert_eq!((u.port, u.target.as_str()), (443, "/x/y?token=a%20b&z=1"));
        assert_eq!(
            (u.path(), u.authority().as_str()),
            ("/x/y", "hooks.example.com")
        );
        assert_eq!(url("http://example.com").target, "/");
        assert_eq!(url("http://example.com#f").target, "/");
        assert_eq!(url("http://example.com?q").target, "/?q");
        let u = url("http://[::1]:8080/h");
        assert_eq!(u.host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(u.authority(), "[::1]:8080");
        assert_eq!(url("https://[2001:db8::1]/").authority(), "[2001:db8::1]");
        // What a path may hold: sub-delimiters, `:` and `@`, encoded bytes, dots that
        // are not whole segments, empty segments, GitLab's encoded `/` in a name.
        for ok in [
            "http://h/a/b.c/.d/..e/...//f;g=h/$!'()*+,=:@~-_",
            "http://h/api/v4/projects/group%2Fproject/hooks",
            "http://h/caf%C3%A9/%20",
            "http://h/x?next=/../../etc&y=%2e%2e",
        ] {
            url(ok);
        }
    }

    #[test]
    fn bytes_that_would_change_the_request_line_are_refused() {
        assert_refused(&[
            ("http://h/a\r\nX-Injected: 1", "line break (CR) at byte 10"),
            ("http://h/a\nX: 1", "line break (LF)"),
            ("http://h/a HTTP/1.1", "space at byte 10: write it as %20"),
            ("http://h/a\0", "control character (byte 0x00)"),
            ("http://h/a\t", "control character (byte 0x09)"),
            ("http://h/a\x7f", "control character (byte 0x7f)"),
            ("http://h/caf\u{e9}", "non-ASCII character 'é' at byte 12"),
            ("http://h/a\\..\\b", "backslash at byte 10"),
            (
                "http://h/a%zz",
                "`%` not followed by two hex digits at byte 10",
            ),
            (
                "http://h/a?b=%",
                "`%` not followed by two hex digits at byte 13",
            ),
            ("http://h/#\r\n", "line break"),
        ]);
    }

    #[test]
    fn dot_segments_are_refused_however_they_are_written() {
        assert_refused(&[
            ("http://h/hooks/../admin", "which is `..`:"),
            ("http://h/hooks/./x", "which is `.`:"),
            (
                "http://h/hooks/..",
                "which is `..`: a path may not climb out",
            ),
            ("http://h/hooks/%2e%2e/admin", "`..` once percent-decoded"),
            ("http://h/hooks/%2E./admin", "`..` once percent-decoded"),
            (
                "http://h/hooks/.%2E/admin",
                "which is `..` once percent-decoded",
            ),
            (
                "http://h/hooks/%2e/admin",
                "which is `.` once percent-decoded",
            ),
            (
                "http://h/hooks/..%2fadmin",
                "segment `..%2fadmin`, which is `..`",
            ),
            (
                "http://h/hooks/x%2F..%2F..%2Fadmin",
                "which is `..` once percent-decoded",
            ),
            (
                "http://h/hooks/..%5cadmin",
                "which is `..` once percent-decoded",
            ),
            ("http://h/hooks/..;/admin", "`..` once cut at `;`"),
            ("http://h/hooks/..;x=1", "which is `..` once cut at `;`"),
            (
                "http://h/hooks/%2e%2e;/admin",
                "which is `..` once percent-decoded",
            ),
        ]);
        assert_refused(&[
            ("http://h/a/%252e%252e/b", "double encoding"),
            ("http://h/a/%25%32%65/b", "double encoding"),
            ("http://h/a/%0d%0aX", "control character"),
            ("http://h/a/%00", "control character"),
            ("http://h/a/%c0%ae%c0%ae/b", "not UTF-8"),
        ]);
    }

    #[test]
    fn hosts_and_ports_are_names_or_addresses() {
        assert_refused(&[
            ("http://user:pw@h/x", "credentials"),
            ("http://h@evil.example/x", "credentials"),
            ("http:///x", "no host"),
            ("http://:80/x", "no host"),
            ("http://h:0/", "the port `0`"),
            ("http://h:65536/", "the port `65536`"),
            ("http://h:+80/", "the port `+80`"),
            ("http://h:/", "the port ``"),
            ("http://h:*/", "wildcard"),
            ("http://*.example.com/", "wildcard"),
            ("http://h%2f/", "not a name"),
            ("http://a..b/", "empty labels"),
            ("http://example.com./", "empty labels"),
            ("http://127.1/", "dotted-quad"),
            ("http://2130706433/", "dotted-quad"),
            ("http://0x7f.0.0.1/", "dotted-quad"),
            ("http://127.000.000.001/", "dotted-quad"),
            ("http://::1/", "in brackets"),
            ("http://[::1/", "no closing"),
            ("http://[fe80::1%25eth0]/", "zone ids"),
            ("http://[::1]x/", "the port `x`"),
            ("ftp://h/", "the scheme `ftp`"),
            ("h/x", "not an absolute URL"),
            ("//h/x", "not an absolute URL"),
        ]);
    }

    #[test]
    fn grants_match_scheme_host_port_and_path() {
        let u = url("http://127.0.0.1:9093/api/v2/alerts");
        assert!(grant("http://127.0.0.1:9093/*").matches(&u));
        assert!(grant("http://127.0.0.1:9093").matches(&u));
        assert!(grant("http://127.0.0.1:9093/api/*").matches(&u));
        assert!(grant("http://127.0.0.1:9093/api/v2/alerts").matches(&u));
        assert!(grant("http://127.0.0.1:*/api/v2/alerts").matches(&u));
        assert!(!grant("http://127.0.0.1:9094/*").matches(&u));
        assert!(!grant("http://127.0.0.1/*").matches(&u));
        assert!(!grant("https://127.0.0.1:9093/*").matches(&u));
        assert!(!grant("http://127.0.0.1:9093/other/*").matches(&u));
        assert!(!grant("http://127.0.0.1:9093/api/v2/alerts/").matches(&u));
        let u = url("http://hooks.example.com/x");
        assert!(grant("http://*.example.com/*").matches(&u));
        assert!(grant("http://HOOKS.example.com/x").matches(&u));
        assert!(!grant("http://*.example.org/*").matches(&u));
        assert!(!grant("http://hooks.example.com/").matches(&u));
        // An exact path grant does not allow a query it does not name; one naming it does.
        let u = url("https://hooks.example.com/hook?token=1#ignored");
        assert!(!grant("https://hooks.example.com/hook").matches(&u));
        assert!(grant("https://hooks.example.com/hook?token=1").matches(&u));
        assert!(grant("https://hooks.example.com/hook*").matches(&u));
        // Addresses compare as addresses.
        assert!(grant("http://[0:0::1]:8080/*").matches(&url("http://[::1]:8080/x")));
        assert!(!grant("http://localhost/*").matches(&url("http://127.0.0.1/x")));
        // Bad grants are refused the way bad URLs are, and a grant may not climb either.
        for bad in [
            "http://h/a/../*",
            "http://h/a b",
            "http://u@h/*",
            "ftp://h/*",
            "http://h:x/",
        ] {
            assert!(parse_grant(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_matcher_is_linear_where_backtracking_was_exponential() {
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(glob_match("a*b*c", "abcbc"));
        assert!(!glob_match("a*b*c", "acb"));
        assert!(glob_match("*ab", "aab"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("**a**", "xax"));
        // 40 stars against 10 000 characters that do not match: the old recursive
        // matcher tried C(10 000, 40) splits; this one reads each character once or so.
        let pattern = format!("{}b", "a*".repeat(40));
        let text = "a".repeat(10_000);
        assert!(!glob_match(&pattern, &text));
        assert!(glob_match(&pattern, &format!("{text}b")));
    }

    #[test]
    fn wildcard_grants_reach_public_addresses_only() {
        let wildcard = grant("http://*:*/*");
        let exact = grant("http://127.0.0.1:9093/*");
        let by_name = grant("http://localhost:9093/*");
        for (ip, class) in [
            ("127.0.0.1", AddressClass::Loopback),
            ("127.9.9.9", AddressClass::Loopback),
            ("::1", AddressClass::Loopback),
            ("169.254.169.254", AddressClass::LinkLocal),
            ("fe80::1", AddressClass::LinkLocal),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("100.64.0.1", AddressClass::Private),
            ("fc00::1", AddressClass::Private),
            ("fd12:3456::1", AddressClass::Private),
            ("0.0.0.0", AddressClass::Unspecified),
            ("::", AddressClass::Unspecified),
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:169.254.169.254", AddressClass::LinkLocal),
            ("::ffff:10.0.0.1", AddressClass::Private),
            ("::127.0.0.1", AddressClass::Loopback),
            ("64:ff9b::a9fe:a9fe", AddressClass::LinkLocal),
            ("2002:7f00:1::", AddressClass::Loopback),
            ("224.0.0.1", AddressClass::Multicast),
            ("ff02::1", AddressClass::Multicast),
            ("255.255.255.255", AddressClass::Reserved),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(classify(ip), class, "{ip}");
            assert_eq!(wildcard.reaches(ip), Err(class), "{ip}");
            assert_eq!(exact.reaches(ip), Ok(()), "{ip}");
            assert_eq!(by_name.reaches(ip), Ok(()), "{ip}");
        }
        for ip in [
            "93.184.215.14",
            "172.32.0.1",
            "100.128.0.1",
            "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
            "::ffff:93.184.215.14",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(classify(ip), AddressClass::Public, "{ip}");
            assert_eq!(wildcard.reaches(ip), Ok(()), "{ip}");
        }
    }

    #[test]
    fn headers_cannot_add_lines_or_replace_the_framing() {
        let u = url("http://[::1]:8080/hook?x=1");
        let head =
            request_head(&u, &[("Content-Type".into(), "application/json".into())], 2).unwrap();
        assert!(
            head.starts_with(
                "POST /hook?x=1 HTTP/1.1\r\nHost: [::1]:8080\r\nContent-Length: 2\r\n"
            ),
            "{head}"
        );
        assert!(
            head.ends_with("\r\nContent-Type: application/json\r\n\r\n"),
            "{head}"
        );
        for (name, value, reason) in [
            ("X-A", "v\r\nX-Injected: 1", "line break"),
            ("X-A", "v\nX: 1", "line break"),
            ("X-A\r\nX-Injected", "1", "not an HTTP token"),
            ("X-A:", "1", "not an HTTP token"),
            ("X A", "1", "not an HTTP token"),
            ("", "1", "not an HTTP token"),
            ("X-A", "v\0", "control character (byte 0x00)"),
            ("X-A", "caf\u{e9}", "non-ASCII"),
            ("Host", "evil.example", "is the host's"),
            ("content-length", "0", "is the host's"),
            ("Transfer-Encoding", "chunked", "is the host's"),
            ("Connection", "keep-alive", "is the host's"),
            ("Proxy-Connection", "x", "is the host's"),
        ] {
            let err = request_head(&u, &[(name.into(), value.into())], 0).unwrap_err();
            assert!(err.to_string().contains(reason), "{name:?}: {err}");
        }
        check_header("Authorization", "Bearer a.b-c_d~e+f/g=\t").unwrap();
    }
}
