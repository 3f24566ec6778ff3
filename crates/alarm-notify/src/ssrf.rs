//! Which addresses and ports a webhook may reach: public unicast only, unless the operator allows some non-public networks; never the cloud metadata service; only allowed ports. Checked on the URL at registration and again on every resolved address at delivery, so a name that later resolves inward (DNS rebinding) is still refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

/// Why a target is refused. Its text names the class of the address, never
/// the address: a name's resolved address stays the operator's to know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the target address is {class}: webhooks may only reach public addresses and allowed ports"
)]
pub struct Refused {
    /// The address (for logs; not in the text).
    pub address: IpAddr,
    /// Its class (`loopback`, `private`, `link-local`, `cloud metadata`…).
    pub class: &'static str,
}

/// The cloud metadata endpoints (AWS, OCI, GCP, Azure share the IPv4 one;
/// AWS's IPv6 one): refused whatever the allow-list says, since they hand
/// out the instance's credentials.
const METADATA: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
];

/// The ports webhooks may reach when the operator names none: HTTP, HTTPS
/// and the unprivileged range, not SSH, SMTP, databases and the like.
pub const DEFAULT_PORTS: &str = "80,443,1024-65535";

/// The operator's choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Allow every loopback, private and link-local target
    /// (`WEBHOOK_ALLOW_PRIVATE`, kept as an alias of listing every private
    /// range in `allow`). Off by default.
    pub allow_private: bool,
    /// Non-public networks webhooks may reach (`WEBHOOK_ALLOW_CIDRS`): a
    /// receiver inside the operator's own network.
    pub allow: Vec<ipnet::IpNet>,
    /// Ports webhooks may reach (`WEBHOOK_ALLOWED_PORTS`).
    pub ports: Vec<RangeInclusive<u16>>,
}

impl Default for AddressPolicy {
    fn default() -> Self {
        Self {
            allow_private: false,
            allow: Vec::new(),
            ports: parse_ports(DEFAULT_PORTS).unwrap_or_default(),
        }
    }
}

/// `80,443,1024-65535` as ranges.
///
/// # Errors
/// The item that is not a port or a range of ports.
pub fn parse_ports(text: &str) -> Result<Vec<RangeInclusive<u16>>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let bad = || format!("`{item}` is not a port or a range like 1024-65535");
            let (a, b) = item.split_once('-').unwrap_or((item, item));
            let (a, b): (u16, u16) = (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            );
            if a == 0 || a > b {
                return Err(bad());
            }
            Ok(a..=b)
        })
        .collect()
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

/// The IPv4 address an IPv6 address carries and reaches, if it is one of
/// the embedding forms: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-translated
/// (`::ffff:0:a.b.c.d`, SIIT), NAT64 (`64:ff9b::/96`), the deprecated
/// IPv4-compatible form (`::a.b.c.d`), and 6to4 (`2002::/16`, its network).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let seg = ip.segments();
    let low32 = Ipv4Addr::from(u32::from(seg[6]) << 16 | u32::from(seg[7]));
    if seg[..6] == [0, 0, 0, 0, 0xffff, 0]
        || seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
        || (seg[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified())
    {
        return Some(low32);
    }
    if seg[0] == 0x2002 {
        return Some(Ipv4Addr::from(u32::from(seg[1]) << 16 | u32::from(seg[2])));
    }
    None
}

fn class_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return class_v4(v4);
    }
    let seg = ip.segments();
    let first = seg[0];
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
        // What the address reaches: an IPv4 address inside an IPv6 form is
        // judged as itself, by the class rules, the metadata rule and the
        // allow-list alike.
        let reached = match address {
            IpAddr::V6(v6) => embedded_v4(v6).map_or(address, IpAddr::V4),
            v4 => v4,
        };
        if METADATA.contains(&reached) || METADATA.contains(&address) {
            return Err(Refused {
                address,
                class: "the cloud metadata service",
            });
        }
        let class = match reached {
            IpAddr::V4(v4) => class_v4(v4),
            IpAddr::V6(v6) => class_v6(v6),
        };
        match class {
            None => Ok(()),
            Some(_)
                if self.allow_private
                    || self
                        .allow
                        .iter()
                        .any(|net| net.contains(&reached) || net.contains(&address)) =>
            {
                Ok(())
            }
            Some(class) => Err(Refused { address, class }),
        }
    }

    /// Whether `port` is one webhooks may reach.
    pub fn port_allowed(&self, port: u16) -> bool {
        self.ports.iter().any(|r| r.contains(&port))
    }

    /// The registration-time check of a URL: an IP literal is judged now;
    /// a name is accepted (it may not resolve yet) and judged on each
    /// resolved address at delivery.
    ///
    /// # Errors
    /// [`Refused`] for a refused literal.
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        if let Some(port) = url.port_or_known_default()
            && !self.port_allowed(port)
        {
            return Err(Refused {
                address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                class: "on a port webhooks may not reach",
            });
        }
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
            ("169.254.169.254", "the cloud metadata service"),
            ("169.254.1.1", "link-local"),
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
            ..AddressPolicy::default()
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

    #[test]
    fn the_allow_list_opens_networks_but_never_the_metadata_service() {
        let policy = AddressPolicy {
            allow: vec![
                "10.20.0.0/16".parse().expect("net"),
                "169.254.0.0/16".parse().expect("net"),
            ],
            ..AddressPolicy::default()
        };
        assert_eq!(policy.check("10.20.3.4".parse().expect("ip")), Ok(()));
        assert!(policy.check("10.21.3.4".parse().expect("ip")).is_err());
        assert_eq!(
            policy.check("::ffff:10.20.3.4".parse().expect("ip")),
            Ok(())
        );
        for metadata in [
            "169.254.169.254",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            let r = policy
                .check(metadata.parse().expect("ip"))
                .expect_err(metadata);
            assert_eq!(r.class, "the cloud metadata service", "{metadata}");
            let everything = AddressPolicy {
                allow_private: true,
                ..AddressPolicy::default()
            };
            assert!(
                everything.check(metadata.parse().expect("ip")).is_err(),
                "{metadata}"
            );
        }
        assert_eq!(policy.check("169.254.10.1".parse().expect("ip")), Ok(()));
    }

    #[test]
    fn the_ipv4_translated_form_is_judged_by_its_ipv4() {
        let p = AddressPolicy::default();
        let r = p
            .check("::ffff:0:7f00:1".parse().expect("ip"))
            .expect_err("loopback");
        assert_eq!(r.class, "loopback");
        assert!(p.check("::ffff:0:a00:1".parse().expect("ip")).is_err());
        assert!(
            !r.to_string().contains("7f00"),
            "the text never names the address"
        );
    }

    #[test]
    fn only_allowed_ports_are_reached() {
        let p = AddressPolicy::default();
        let url = |u: &str| url::Url::parse(u).expect("url");
        assert!(p.check_url(&url("https://example.com:22/")).is_err());
        assert!(p.check_url(&url("http://example.com:25/")).is_err());
        assert!(p.check_url(&url("https://example.com/")).is_ok());
        assert!(p.check_url(&url("http://example.com/")).is_ok());
        assert!(p.check_url(&url("https://example.com:8443/")).is_ok());
        assert_eq!(parse_ports("80, 443,1024-65535").expect("ports").len(), 3);
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("90-80").is_err());
        assert!(parse_ports("http").is_err());
    }
}
