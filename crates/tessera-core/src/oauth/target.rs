//! Where the server may send requests of its own (back-channel logout): public unicast
//! addresses only, unless the deployment allows private ones (`[oauth]
//! allow_private_backchannel`, for development and tests). Registration checks the URI's
//! host as written; delivery (the binary's resolver) checks every address the name resolves
//! to when it connects, so a name that later resolves to a private address (DNS rebinding)
//! is refused too.

use crate::CoreError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is a public unicast address: not loopback, private, link-local, shared
/// (CGNAT), unique-local, multicast, broadcast, unspecified, documentation or reserved,
/// also when wrapped in an IPv4-mapped or NAT64 IPv6 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let [s0, s1, ..] = s;
    if s0 == 0x0064 && s1 == 0xff9b {
        // NAT64 (64:ff9b::/96): the IPv4 address it stands for decides.
        let [.., hi, lo] = s;
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s0 & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s0 & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s0 & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || (s0 == 0x2001 && s1 == 0x0db8) // documentation
        || s.iter().take(6).all(|x| *x == 0)) // IPv4-compatible ::a.b.c.d (deprecated)
}

/// Checks the host of a back-channel logout URI as written: an IP address must be public,
/// and `localhost` (and `*.localhost`) is refused, unless `allow_private`. Names are checked
/// again, by address, at delivery.
pub fn check_backchannel_uri(uri: &str, allow_private: bool) -> Result<(), CoreError> {
    if allow_private {
        return Ok(());
    }
    let refused = || {
        CoreError::Invalid(format!(
            "back-channel logout URI {uri:?} points at a private, loopback or link-local address; \
             only public targets are allowed (set [oauth] allow_private_backchannel for development)"
        ))
    };
    let url = url::Url::parse(uri).map_err(|_| CoreError::Invalid(format!("back-channel logout URI {uri:?} is not a URL")))?;
    let host = url.host_str().ok_or_else(refused)?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return if is_public(ip) { Ok(()) } else { Err(refused()) };
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return Err(refused());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for ip in [
            "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
            "100.64.0.1", "0.0.0.0", "0.1.2.3", "255.255.255.255", "224.0.0.1", "192.0.2.1", "198.18.0.1", "240.0.0.1",
            "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "fec0::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.1.2.3",
            "64:ff9b::a9fe:a9fe", "2001:db8::1", "::127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} is not public");
        }
        for ip in ["93.184.215.14", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"] {
            assert!(is_public(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[test]
    fn registration_refuses_private_targets_unless_allowed() {
        for uri in [
            "http://127.0.0.1:9000/bcl", "http://localhost/bcl", "http://LOCALHOST./bcl", "http://app.localhost/bcl",
            "http://[::1]:8080/bcl", "http://169.254.169.254/latest", "https://10.1.2.3/bcl", "http://2130706433/bcl",
            "http://0x7f.0.0.1/bcl", "http://[::ffff:127.0.0.1]/bcl", "http://192.168.0.10/bcl",
        ] {
            assert!(check_backchannel_uri(uri, false).is_err(), "{uri} is refused");
            assert!(check_backchannel_uri(uri, true).is_ok(), "{uri} is allowed for development");
        }
        for uri in ["https://rp.example/bcl", "https://93.184.215.14/bcl", "https://[2606:4700::1111]/bcl"] {
            assert!(check_backchannel_uri(uri, false).is_ok(), "{uri} is allowed");
        }
    }
}
