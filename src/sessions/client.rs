//! Who is on the other end of a request, as recorded with a session: the
//! client IP and the user agent.
//!
//! `X-Forwarded-For` is written by whoever sends it, so it is believed only
//! when the TCP peer is a trusted proxy (`TETHER_TRUSTED_PROXIES`), and then
//! only as far back as the chain of trusted proxies goes: the client is the
//! right-most address that is not itself a trusted proxy.

use std::net::IpAddr;

use actix_web::{http::header, HttpRequest};
use ipnet::IpNet;

fn trusted(ip: &IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(ip))
}

/// Parses one `X-Forwarded-For` entry: an IP, possibly `[v6]` or with a port.
fn parse_hop(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    if let Ok(ip) = raw.parse() {
        return Some(ip);
    }
    if let Some(rest) = raw.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    raw.rsplit_once(':')?.0.parse().ok()
}

/// The client's IP address, or `None` when the peer address is unknown.
pub fn client_ip(req: &HttpRequest, proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted(&peer, proxies) {
        return Some(peer);
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all(header::X_FORWARDED_FOR)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) if trusted(&ip, proxies) => client = ip,
            Some(ip) => return Some(ip),
            // Garbage was written before any trusted proxy: stop believing.
            None => break,
        }
    }
    Some(client)
}

/// The `User-Agent` header, if it is text ([`super::ClientMeta`] bounds its length).
pub fn user_agent(req: &HttpRequest) -> Option<&str> {
    req.headers().get(header::USER_AGENT)?.to_str().ok()
}

/// The client as the audit trail records it: bounded as a session's
/// [`super::ClientMeta`] is.
pub fn audit_client(req: &HttpRequest, proxies: &[IpNet]) -> crate::audit::Client {
    let meta = super::ClientMeta::new(client_ip(req, proxies), user_agent(req));
    crate::audit::Client {
        ip: meta.ip,
        user_agent: meta.user_agent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn req(peer: &str, xff: Option<&str>) -> HttpRequest {
        let mut r = TestRequest::default().peer_addr(peer.parse().unwrap());
        if let Some(xff) = xff {
            r = r.insert_header(("X-Forwarded-For", xff));
        }
        r.to_http_request()
    }

    fn proxies(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let r = req("203.0.113.9:5555", Some("198.51.100.1"));
        assert_eq!(client_ip(&r, &[]), Some("203.0.113.9".parse().unwrap()));
        assert_eq!(
            client_ip(&r, &proxies(&["10.0.0.0/8"])),
            Some("203.0.113.9".parse().unwrap())
        );
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let p = proxies(&["10.0.0.0/8"]);
        // A client-forged first entry cannot win: the proxy appended the real one.
        let r = req("10.0.0.2:80", Some("1.2.3.4, 198.51.100.7, 10.0.0.3"));
        assert_eq!(client_ip(&r, &p), Some("198.51.100.7".parse().unwrap()));
        let r = req("10.0.0.2:80", Some("[2001:db8::1]:443"));
        assert_eq!(client_ip(&r, &p), Some("2001:db8::1".parse().unwrap()));
        // Only proxies in the chain, or garbage: the last trusted hop.
        let r = req("10.0.0.2:80", Some("junk, 10.0.0.5"));
        assert_eq!(client_ip(&r, &p), Some("10.0.0.5".parse().unwrap()));
        let r = req("10.0.0.2:80", None);
        assert_eq!(client_ip(&r, &p), Some("10.0.0.2".parse().unwrap()));
    }
}
