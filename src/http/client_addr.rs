//! Who a web request comes from, for the per-address rate limit: the peer's address, or, when the
//! peer is a configured reverse proxy (`web.trusted_proxies`), the address that proxy reports in
//! `X-Forwarded-For`.
//!
//! `X-Forwarded-For` is a list each proxy appends its peer to, so only its right end can be
//! believed: walking from the right, every address that is itself a trusted proxy passes the
//! question on, and the first one that is not is the client. Anything the client wrote into the
//! header itself sits left of that and is never read. Without trusted proxies the header is
//! ignored altogether. An IPv6 client counts by its /64, since one host gets a whole /64.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::state::AppState;

/// An address or a network (`10.0.0.0/8`, `2001:db8::/32`, `127.0.0.1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<IpNet, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map(canonical)
            .map_err(|_| format!("{s:?} is not an IP address or network (like 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be from 0 to {max}"))?,
        };
        Ok(IpNet { addr, prefix })
    }
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The client's address: `peer`, or what trusted proxies say (see the module doc).
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = canonical(peer);
    if !is_trusted(client) {
        return client;
    }
    // Several headers count as one list, in order.
    let hops = forwarded_for.iter().flat_map(|h| h.split(',')).rev();
    for hop in hops {
        match parse_hop(hop) {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            // A hop that does not parse was written by whoever is left of the last proxy we
            // believe: stop at that proxy.
            None => break,
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, maybe with a port (`1.2.3.4:5678`, `[2001:db8::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// The key the rate limit counts by: an IPv4 address, or an IPv6 /64.
pub fn limit_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The client's address, as the per-address rate limit sees it (see the module doc). Unknown (no
/// socket info, as in in-process tests): one shared key.
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<ClientAddr, Self::Rejection> {
        let Some(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
        else {
            return Ok(ClientAddr("unknown".into()));
        };
        let headers = forwarded_for(&parts.headers);
        Ok(ClientAddr(limit_key(client_ip(
            peer,
            &headers,
            &state.config.web.trusted_proxies,
        ))))
    }
}

fn forwarded_for(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn networks_parse_and_contain() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains(ip("10.200.3.4")));
        assert!(n.contains(ip("::ffff:10.1.2.3")));
        assert!(!n.contains(ip("11.0.0.1")));
        let one: IpNet = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0/8", "::/129", "1.2.3.4/"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let got = client_ip(ip("203.0.113.7"), &["198.51.100.1"], &[]);
        assert_eq!(got, ip("203.0.113.7"));
    }

    #[test]
    fn a_trusted_proxy_reports_the_client() {
        let trusted = nets(&["127.0.0.1", "10.0.0.0/8"]);
        // client → 10.0.0.5 (load balancer) → 127.0.0.1 (local proxy) → concierge
        let got = client_ip(ip("127.0.0.1"), &["203.0.113.7, 10.0.0.5"], &trusted);
        assert_eq!(got, ip("203.0.113.7"));
        // Split over two headers, with ports.
        let got = client_ip(ip("127.0.0.1"), &["203.0.113.7:5555", "10.0.0.5"], &trusted);
        assert_eq!(got, ip("203.0.113.7"));
    }

    #[test]
    fn what_the_client_wrote_itself_is_not_believed() {
        let trusted = nets(&["127.0.0.1"]);
        // The client sent "X-Forwarded-For: 1.1.1.1"; the proxy appended the real peer.
        let got = client_ip(ip("127.0.0.1"), &["1.1.1.1, 203.0.113.7"], &trusted);
        assert_eq!(got, ip("203.0.113.7"));
        // An untrusted peer's header is not read at all.
        let got = client_ip(ip("203.0.113.8"), &["1.1.1.1"], &trusted);
        assert_eq!(got, ip("203.0.113.8"));
        // Garbage left of the trusted hops stops the walk at the last trusted proxy's report.
        let got = client_ip(ip("127.0.0.1"), &["junk, 203.0.113.7"], &trusted);
        assert_eq!(got, ip("203.0.113.7"));
        let got = client_ip(ip("127.0.0.1"), &["203.0.113.7, junk"], &trusted);
        assert_eq!(got, ip("127.0.0.1"));
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        assert_eq!(
            limit_key(ip("2001:db8:aa:bb:1:2:3:4")),
            "2001:db8:aa:bb::/64"
        );
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
    }
}
