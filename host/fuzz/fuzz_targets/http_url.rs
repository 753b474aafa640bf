//! The `http` import's checks (`metaclaude::plugin::http::outbound`), on a grant (the input's
//! first line) and a URL (the rest, line breaks included). A URL accepted has nothing in
//! its request target that could change the request (visible ASCII only, no backslash, no
//! fragment) and no dot segment however it is decoded; it prints back to itself. A grant
//! matches a URL exactly when a plain reference matcher says so, a wildcard grant reaches
//! public addresses only, and the linear matcher agrees with a quadratic reference. A
//! header accepted adds one line to the request head, no more. An IPv6 form embedding an
//! IPv4 address has that address's class.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use metaclaude::plugin::http::outbound::{
    check_header, classify, glob_match, parse_grant, parse_url, request_head, AddressClass, Host,
    HostPattern, Url,
};

fuzz_target!(|data: &[u8]| {
    addresses(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (grant, url) = text.split_once('\n').unwrap_or(("", text));
    if grant.len() <= 64 && url.len() <= 64 {
        assert_eq!(
            glob_match(grant, url),
            reference_glob(grant.as_bytes(), url.as_bytes()),
            "{grant:?} against {url:?}"
        );
    }
    if let Ok(u) = parse_url(url) {
        accepted(url, &u);
        if let Ok(g) = parse_grant(grant) {
            let host_ok = match &g.host {
                HostPattern::Exact(h) => *h == u.host,
                HostPattern::Wildcard(p) => {
                    reference_glob(p.as_bytes(), u.host.to_string().as_bytes())
                }
            };
            let expected = g.scheme == u.scheme
                && g.port.is_none_or(|p| p == u.port)
                && host_ok
                && reference_glob(g.target.as_bytes(), u.target.as_bytes());
            assert_eq!(g.matches(&u), expected, "{grant:?} against {url:?}");
            if let Host::Ip(ip) = u.host {
                let public = classify(ip) == AddressClass::Public;
                match g.host {
                    HostPattern::Exact(_) => assert!(g.reaches(ip).is_ok()),
                    HostPattern::Wildcard(_) => assert_eq!(g.reaches(ip).is_ok(), public),
                }
            }
        }
        // The grant's line as a header name, the URL as its value.
        if check_header(grant, url).is_ok() {
            let head = request_head(&u, &[(grant.to_string(), url.to_string())], 0).unwrap();
            let plain = request_head(&u, &[], 0).unwrap();
            assert_eq!(
                head.matches("\r\n").count(),
                plain.matches("\r\n").count() + 1
            );
            assert!(!url.contains(['\r', '\n']));
        }
    }
});

/// What every accepted URL keeps.
fn accepted(url: &str, u: &Url) {
    let target = u.target.as_bytes();
    assert_eq!(target.first(), Some(&b'/'), "{url:?} {u:?}");
    assert!(
        target
            .iter()
            .all(|b| (0x21..=0x7e).contains(b) && *b != b'#' && *b != b'\\'),
        "{url:?} {u:?}"
    );
    let authority = u.authority();
    assert!(
        authority
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !b"@/?#\\".contains(&b)),
        "{url:?} {u:?}"
    );
    for segment in u.path().split('/') {
        let decoded = percent_decode(segment.as_bytes());
        assert!(!decoded.iter().any(|b| b.is_ascii_control()), "{url:?}");
        for piece in decoded.split(|b| *b == b'/' || *b == b'\\') {
            let name = piece.split(|b| *b == b';').next().unwrap_or_default();
            assert!(
                name != b"." && name != b"..",
                "{url:?}: a dot segment got through"
            );
        }
    }
    // Printed back, it is the same URL; the request line is the target.
    let again = format!("{}://{}{}", u.scheme.as_str(), authority, u.target);
    assert_eq!(
        parse_url(&again).as_ref(),
        Ok(u),
        "{url:?} printed as {again:?}"
    );
    let head = request_head(u, &[], 0).unwrap();
    assert_eq!(
        head.split("\r\n").next(),
        Some(format!("POST {} HTTP/1.1", u.target).as_str())
    );
    assert!(head.ends_with("\r\n\r\n"));
}

/// `%XX` decoded once; anything else as it is.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// `*` matches any run of bytes: the textbook dynamic programme.
fn reference_glob(pattern: &[u8], text: &[u8]) -> bool {
    if pattern.len().saturating_mul(text.len()) > 1 << 20 {
        // Too big for the reference: the linear matcher's answer stands unchecked.
        return glob_match(
            std::str::from_utf8(pattern).unwrap(),
            std::str::from_utf8(text).unwrap(),
        );
    }
    let mut row = vec![false; text.len() + 1];
    row[0] = true;
    for &c in pattern {
        let mut next = vec![false; text.len() + 1];
        if c == b'*' {
            let mut any = false;
            for j in 0..=text.len() {
                any |= row[j];
                next[j] = any;
            }
        } else {
            for j in 1..=text.len() {
                next[j] = row[j - 1] && text[j - 1] == c;
            }
        }
        row = next;
    }
    row[text.len()]
}

/// An IPv4 address and its IPv6 embeddings are of one class.
fn addresses(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let v4 = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
    let class = classify(IpAddr::V4(v4));
    assert_eq!(classify(IpAddr::V6(v4.to_ipv6_mapped())), class, "{v4}");
    let nat64 =
        u128::from(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0)) | u128::from(u32::from(v4));
    assert_eq!(classify(IpAddr::V6(Ipv6Addr::from(nat64))), class, "{v4}");
    if data.len() >= 16 {
        let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(&data[..16]).unwrap());
        if let Some(embedded) = v6.to_ipv4_mapped() {
            assert_eq!(classify(IpAddr::V6(v6)), classify(IpAddr::V4(embedded)));
        }
    }
}
