//! Which addresses a webhook may reach: public unicast only, unless the operator allows private targets. Checked on the URL at registration and again on every resolved address at delivery, so a name that later resolves inward (DNS rebinding) is still refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{address} is {class}: webhooks may only reach public addresses")]
pub struct Refused {
    /// The address.
    pub address: IpAddr,
    /// Its class (`loopback`, `private`, `link-local`…).
    pub class: &'static str,
}

/// The operator's choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Allow loopback, private and link-local targets (development, or
    /// receivers inside the operator's own network). Off by default.
    pub allow_private: bool,
}

fn class_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("not unicast")
    } else if a == 100 && (64..128).contains(&b) {
        Some("carrier-grade NAT (shared)")
    } else if ip.is_documentation()
        || (a == 198 && (18..20).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
    {
        Some("reserved")
    } else {
        None
    }
}

fn class_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return class_v4(v4);
    }
    let seg = ip.segments();
    let first = seg[0];
    let low32 = Ipv4Addr::from(u32::from(seg[6]) << 16 | u32::from(seg[7]));
    // Addresses that carry an IPv4 address inside are judged by it: NAT64
    // (64:ff9b::/96) and the deprecated IPv4-compatible form (::a.b.c.d)
    // reach that IPv4 host, 6to4 (2002::/16) its network.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
        || (seg[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified())
    {
        return class_v4(low32);
    }
    if first == 0x2002 {
        return class_v4(Ipv4Addr::from(u32::from(seg[1]) << 16 | u32::from(seg[2])));
    }
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_multicast() {
        Some("not unicast")
    } else if first & 0xfe00 == 0xfc00 {
        Some("private (unique local)")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if first & 0xffc0 == 0xfec0 {
        Some("private (site-local)")
    } else if first == 0x64 && seg[1] == 0xff9b && seg[2] == 1 {
        Some("private (local NAT64)")
    } else if first == 0x2001 && seg[1] == 0 {
        Some("a tunnel (Teredo)")
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        Some("reserved")
    } else {
        None
    }
}

impl AddressPolicy {
    /// Whether `address` may be reached.
    ///
    /// # Errors
    /// [`Refused`] naming the address's class.
    pub fn check(&self, address: IpAddr) -> Result<(), Refused> {
        if self.allow_private {
            return Ok(());
        }
        let class = match address {
            IpAddr::V4(v4) => class_v4(v4),
            IpAddr::V6(v6) => class_v6(v6),
        };
        match class {
            None => Ok(()),
            Some(class) => Err(Refused { address, class }),
        }
    }

    /// The registration-time check of a URL: an IP literal is judged now;
    /// a name is accepted (it may not resolve yet) and judged on each
    /// resolved address at delivery.
    ///
    /// # Errors
    /// [`Refused`] for a refused literal.
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        match url.host() {
            Some(url::Host::Ipv4(v4)) => self.check(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => self.check(IpAddr::V6(v6)),
            Some(url::Host::Domain(name)) if name.eq_ignore_ascii_case("localhost") => {
                Err(Refused {
                    address: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    class: "loopback",
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_forms_that_embed_ipv4_are_judged_by_the_ipv4_inside() {
        let p = AddressPolicy::default();
        for refused in [
            "64:ff9b::a00:5",      // NAT64 → 10.0.0.5
            "64:ff9b::7f00:1",     // NAT64 → 127.0.0.1
            "::a00:5",             // IPv4-compatible → 10.0.0.5
            "2002:a00:5::1",       // 6to4 of 10.0.0.5
            "2002:c0a8:101::1",    // 6to4 of 192.168.1.1
            "64:ff9b:1::1",        // local-use NAT64
            "2001:0:4136:e378::1", // Teredo
            "fec0::1",             // site-local
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(p.check(ip).is_err(), "{refused} must be refused");
        }
        assert!(p.check("192.0.0.8".parse().unwrap()).is_err());
        for allowed in ["64:ff9b::5db8:d822", "2002:5db8:d822::1", "2606:4700::1111"] {
            let ip: IpAddr = allowed.parse().unwrap();
            assert!(p.check(ip).is_ok(), "{allowed} is public");
        }
    }

    #[test]
    fn inward_addresses_are_refused_and_public_ones_allowed() {
        let policy = AddressPolicy::default();
        for (ip, class) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "carrier-grade NAT (shared)"),
            ("255.255.255.255", "not unicast"),
            ("::1", "loopback"),
            ("fd00::1", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
        ] {
            let address: IpAddr = ip.parse().expect("ip");
            assert_eq!(
                policy.check(address).map_err(|r| r.class),
                Err(class),
                "{ip}"
            );
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "172.32.0.1",
        ] {
            assert_eq!(policy.check(ip.parse().expect("ip")), Ok(()), "{ip}");
        }
        let open = AddressPolicy {
            allow_private: true,
        };
        assert_eq!(open.check("127.0.0.1".parse().expect("ip")), Ok(()));
    }

    #[test]
    fn urls_are_judged_by_literal_and_names_wait_for_delivery() {
        let policy = AddressPolicy::default();
        let url = |u: &str| url::Url::parse(u).expect("url");
        assert!(
            policy
                .check_url(&url("http://127.0.0.1:8080/hook"))
                .is_err()
        );
        assert!(policy.check_url(&url("http://[::1]/hook")).is_err());
        assert!(policy.check_url(&url("http://localhost/hook")).is_err());
        assert!(
            policy
                .check_url(&url("https://hooks.example.com/a"))
                .is_ok()
        );
        assert!(policy.check_url(&url("https://93.184.216.34/a")).is_ok());
    }
}
