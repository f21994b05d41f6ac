//! The SSRF guard: which hosts and addresses upstream calls may reach.
//!
//! A URL's host must be on the allow-list, and the address actually connected to must be
//! public unless its network is explicitly allowed. Addresses are checked where they are
//! used: DNS answers inside the client's own resolver (so a name that resolves to a public
//! address when checked and a private one when connected, DNS rebinding, gains nothing), IP
//! literals before the request (the connector never resolves them), and every redirect hop.

use std::{
    error::Error,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
    redirect,
};
use url::Host;

/// Redirect hops one request may follow; each hop is checked like the first URL.
const MAX_REDIRECTS: usize = 5;

/// Why a call was refused before any connection was made. It travels inside reqwest's error
/// (from the resolver or the redirect policy), so it is found again by type, not by text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Refusal {}

impl Refusal {
    /// The refusal somewhere in an error's chain of causes, if there is one.
    pub fn find<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a Refusal> {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if let Some(refusal) = e.downcast_ref::<Refusal>() {
                return Some(refusal);
            }
            cause = e.source();
        }
        None
    }
}

/// The outbound policy: allowed hosts, and the non-public networks that are allowed anyway.
#[derive(Debug)]
pub struct Guard {
    hosts: Vec<Host>,
    allowed_nets: Vec<IpNet>,
}

impl Guard {
    pub fn new(hosts: Vec<Host>, allowed_nets: Vec<IpNet>) -> Self {
        Self { hosts, allowed_nets }
    }

    /// Checks a URL before it is requested (the first one and every redirect).
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal(format!(
                "{} URLs are not fetched, only http and https",
                url.scheme()
            )));
        }
        let host = url.host().ok_or_else(|| Refusal("the URL has no host".into()))?;
        self.check_host(&host.to_owned())?;
        match host {
            Host::Ipv4(ip) => self.check_ip(ip.into()),
            Host::Ipv6(ip) => self.check_ip(ip.into()),
            Host::Domain(_) => Ok(()), // its addresses are checked by the resolver
        }
    }

    fn check_host(&self, host: &Host) -> Result<(), Refusal> {
        if self.hosts.contains(host) {
            Ok(())
        } else {
            Err(Refusal(format!(
                "host {host} is not on the upstream allow-list (MCP_UPSTREAM_ALLOW_HOSTS)"
            )))
        }
    }

    /// Checks one address the client is about to connect to.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) reaches the IPv4 address: judge that.
        let ip = ip.to_canonical();
        if self.allowed_nets.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match non_public(ip) {
            None => Ok(()),
            Some(kind) => Err(Refusal(format!(
                "{ip} is a {kind} address; upstream calls reach only public addresses unless \
                 its network is allowed (MCP_UPSTREAM_ALLOW_PRIVATE)"
            ))),
        }
    }

    /// The redirect policy: follow at most a few hops, each one checked like the first URL.
    pub fn redirect_policy(self: &Arc<Self>) -> redirect::Policy {
        let guard = self.clone();
        redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(Refusal(format!("more than {MAX_REDIRECTS} redirects")));
            }
            match guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refusal) => attempt.error(Refusal(format!("it redirected, and {refusal}"))),
            }
        })
    }
}

/// Resolves names with the system resolver, then keeps only the addresses the guard allows,
/// so the address checked is the address connected to.
pub struct GuardedResolver(pub Arc<Guard>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let domain = Host::Domain(host.clone());
            guard.check_host(&domain)?;
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match guard.check_ip(addr.ip()) {
                    Ok(()) => true,
                    Err(refusal) => {
                        refused.get_or_insert(refusal);
                        false
                    }
                })
                .collect();
            match refused {
                Some(refusal) if allowed.is_empty() => Err(Box::new(Refusal(format!(
                    "{host} resolves to non-public addresses only: {refusal}"
                ))) as _),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// What kind of non-public address `ip` is, or `None` for a public one. Covers loopback,
/// private, shared (CGNAT), link-local (with the cloud metadata endpoints), unique-local,
/// multicast, documentation and reserved ranges.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => NON_PUBLIC_V4
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, kind)| *kind),
        IpAddr::V6(ip) => {
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address: judge that.
            if let Some(v4) = nat64_embedded(ip).or_else(|| six_to_four_embedded(ip)) {
                return non_public(v4.into());
            }
            NON_PUBLIC_V6
                .iter()
                .find(|(net, _)| net.contains(&ip))
                .map(|(_, kind)| *kind)
        }
    }
}

fn nat64_embedded(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [a, b, 0, 0, 0, 0, hi, lo] = ip.segments() else {
        return None;
    };
    ((a, b) == (0x64, 0xff9b)).then(|| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)))
}

fn six_to_four_embedded(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [0x2002, hi, lo, ..] = ip.segments() else {
        return None;
    };
    Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)))
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(segments: [u16; 8], len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len)
}

const NON_PUBLIC_V4: &[(Ipv4Net, &str)] = &[
    (v4(0, 0, 0, 0, 8), "\"this network\""),
    (v4(10, 0, 0, 0, 8), "private"),
    (v4(100, 64, 0, 0, 10), "shared (CGNAT)"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    // 169.254.169.254 is the metadata endpoint of AWS, GCP, Azure and others.
    (v4(169, 254, 0, 0, 16), "link-local"),
    (v4(172, 16, 0, 0, 12), "private"),
    (v4(192, 0, 0, 0, 24), "reserved"),
    (v4(192, 0, 2, 0, 24), "documentation"),
    (v4(192, 168, 0, 0, 16), "private"),
    (v4(198, 18, 0, 0, 15), "benchmarking"),
    (v4(198, 51, 100, 0, 24), "documentation"),
    (v4(203, 0, 113, 0, 24), "documentation"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (v4(240, 0, 0, 0, 4), "reserved"),
];

const NON_PUBLIC_V6: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    // ::a.b.c.d, deprecated; some stacks still route it to the IPv4 address.
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 96), "deprecated IPv4-compatible"),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), "NAT64 local-use"),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard"),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    // Teredo tunnels to an obfuscated IPv4 address that cannot be judged.
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), "Teredo"),
    // fd00:ec2::254 is AWS's IPv6 metadata endpoint.
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "unique-local"),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(hosts: &[&str], nets: &[&str]) -> Guard {
        Guard::new(
            hosts.iter().map(|h| Host::parse(h).unwrap()).collect(),
            nets.iter().map(|n| n.parse().unwrap()).collect(),
        )
    }

    #[test]
    fn non_public_addresses_are_named_and_public_ones_pass() {
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.31.255.255", "private"),
            ("192.168.0.1", "private"),
            ("100.100.100.200", "shared (CGNAT)"), // Alibaba Cloud metadata
            ("169.254.169.254", "link-local"),     // AWS, GCP, Azure metadata
            ("0.0.0.0", "\"this network\""),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00:ec2::254", "unique-local"), // AWS IPv6 metadata
            ("fe80::1", "link-local"),
            ("64:ff9b::a9fe:a9fe", "link-local"), // NAT64 of 169.254.169.254
            ("2002:7f00:1::", "loopback"),        // 6to4 of 127.0.0.1
            ("2002:a9fe:a9fe::1", "link-local"),  // 6to4 of 169.254.169.254
            ("::127.0.0.1", "deprecated IPv4-compatible"),
            ("::8.8.8.8", "deprecated IPv4-compatible"),
            ("2001::1", "Teredo"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
            ("ff02::1", "multicast"),
        ] {
            assert_eq!(non_public(ip.parse().unwrap()), Some(kind), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1", // 6to4 of 8.8.8.8
        ] {
            assert_eq!(non_public(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_is_judged_as_ipv4() {
        let guard = guard(&[], &[]);
        let refusal = guard.check_ip("::ffff:127.0.0.1".parse().unwrap());
        assert!(refusal.unwrap_err().0.contains("loopback"));
        assert!(guard.check_ip("::ffff:1.1.1.1".parse().unwrap()).is_ok());
    }

    #[test]
    fn allowed_networks_open_only_themselves() {
        let guard = guard(&[], &["127.0.0.0/8", "fd00::/8"]);
        assert!(guard.check_ip("127.0.0.1".parse().unwrap()).is_ok());
        assert!(guard.check_ip("fd00:ec2::254".parse().unwrap()).is_ok());
        let refusal = guard.check_ip("169.254.169.254".parse().unwrap()).unwrap_err();
        assert!(refusal.0.contains("MCP_UPSTREAM_ALLOW_PRIVATE"), "{refusal}");
    }

    #[test]
    fn urls_need_an_allowed_host_and_a_public_literal_address() {
        let guard = guard(&["api.example.com", "127.0.0.1", "[::1]"], &[]);
        let check = |url: &str| guard.check_url(&Url::parse(url).unwrap());
        assert!(check("https://api.example.com/v1/orders?x=1").is_ok());
        assert!(check("https://API.Example.com/").is_ok());
        let off_list = check("https://example.com/").unwrap_err();
        assert!(off_list.0.contains("not on the upstream allow-list"));
        assert!(check("http://127.0.0.1:8080/").unwrap_err().0.contains("loopback"));
        assert!(check("http://[::1]/").unwrap_err().0.contains("loopback"));
        // An IP in another spelling is still that IP, and still not on the list.
        assert!(check("http://2130706433/").unwrap_err().0.contains("loopback"));
        assert!(check("http://169.254.169.254/").unwrap_err().0.contains("allow-list"));
        assert!(check("ftp://api.example.com/").unwrap_err().0.contains("ftp"));
    }

    #[tokio::test]
    async fn the_resolver_drops_non_public_answers() {
        let guard = Arc::new(guard(&["localhost"], &[]));
        let resolver = GuardedResolver(guard.clone());
        let error = match resolver.resolve("localhost".parse().unwrap()).await {
            Err(error) => error,
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
        };
        let refusal = Refusal::find(&*error).expect("a refusal");
        assert!(refusal.0.contains("localhost resolves to non-public"), "{refusal}");
        assert!(refusal.0.contains("loopback"), "{refusal}");

        let off_list = resolver.resolve("example.com".parse().unwrap()).await;
        assert!(off_list.is_err(), "names off the allow-list are not even looked up");

        let open = GuardedResolver(Arc::new(Guard::new(
            vec![Host::parse("localhost").unwrap()],
            vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        )));
        let addrs: Vec<_> = match open.resolve("localhost".parse().unwrap()).await {
            Ok(addrs) => addrs.collect(),
            Err(e) => panic!("{e}"),
        };
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
