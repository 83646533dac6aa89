//! Addresses, ports and protocols as policies write them: CIDRs, port
//! numbers, ranges and names, and the protocols a rule can name.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/64`); a bare
/// address is a network of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a CIDR does not parse: the column (in characters, from 1) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CidrError {
    /// Where in the text.
    pub column: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for CidrError {}

impl Cidr {
    /// Parses `10.0.0.0/8`, `fd00::/64`, or a bare address. Host bits set
    /// below the prefix (`10.0.0.1/8`) are allowed and ignored, as
    /// Kubernetes and Calico do.
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr = IpAddr::from_str(addr_text).map_err(|_| CidrError {
            column: 1,
            message: format!("{addr_text:?} is not an IPv4 or IPv6 address"),
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => {
                let column = addr_text.chars().count() + 2;
                let prefix: u8 = p.parse().map_err(|_| CidrError {
                    column,
                    message: format!("prefix length {p:?} is not a number"),
                })?;
                if prefix > max {
                    return Err(CidrError {
                        column,
                        message: format!("prefix length {prefix} is over {max}"),
                    });
                }
                prefix
            }
        };
        Ok(Cidr { addr, prefix })
    }

    /// The network's address as written.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in this network (never across IP versions).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
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

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IP protocol a rule may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
    /// ICMP.
    Icmp,
    /// ICMPv6.
    IcmpV6,
    /// UDP-Lite.
    UdpLite,
    /// Any other, by number (1–255).
    Number(u8),
}

impl Protocol {
    /// Parses a protocol as Calico and Kubernetes write them: `TCP`, `UDP`,
    /// `SCTP`, `ICMP`, `ICMPv6`, `UDPLite` (any case), or a number.
    pub fn parse(text: &str) -> Option<Protocol> {
        Some(match text.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            "icmp" => Protocol::Icmp,
            "icmpv6" => Protocol::IcmpV6,
            "udplite" => Protocol::UdpLite,
            other => match other.parse::<u8>() {
                Ok(6) => Protocol::Tcp,
                Ok(17) => Protocol::Udp,
                Ok(132) => Protocol::Sctp,
                Ok(1) => Protocol::Icmp,
                Ok(n) if n > 0 => Protocol::Number(n),
                _ => return None,
            },
        })
    }

    /// Whether the protocol has ports, so that rules may name them.
    pub fn has_ports(&self) -> bool {
        matches!(
            self,
            Protocol::Tcp | Protocol::Udp | Protocol::Sctp | Protocol::UdpLite
        )
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Tcp => f.write_str("TCP"),
            Protocol::Udp => f.write_str("UDP"),
            Protocol::Sctp => f.write_str("SCTP"),
            Protocol::Icmp => f.write_str("ICMP"),
            Protocol::IcmpV6 => f.write_str("ICMPv6"),
            Protocol::UdpLite => f.write_str("UDPLite"),
            Protocol::Number(n) => write!(f, "{n}"),
        }
    }
}

/// A port, range of ports or named port, as a Calico rule writes it
/// (`80`, `"8000:8080"`, `"http"`) and Kubernetes's `port`/`endPort`
/// become.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PortMatch {
    /// `first..=last` (one port when they are equal).
    Range(u16, u16),
    /// A container port's name, resolved against the destination.
    Named(String),
}

impl PortMatch {
    /// Parses Calico's string form: `80`, `8000:8080` or a name.
    pub fn parse(text: &str) -> Result<PortMatch, CidrError> {
        let bad = |column: usize, message: String| CidrError { column, message };
        if let Some((first, last)) = text.split_once(':') {
            let first_n: u16 = first
                .parse()
                .map_err(|_| bad(1, format!("{first:?} is not a port number")))?;
            let last_n: u16 = last.parse().map_err(|_| {
                bad(
                    first.chars().count() + 2,
                    format!("{last:?} is not a port number"),
                )
            })?;
            if first_n > last_n {
                return Err(bad(1, format!("range {first_n}:{last_n} runs backwards")));
            }
            return Ok(PortMatch::Range(first_n, last_n));
        }
        if let Ok(n) = text.parse::<u16>() {
            return Ok(PortMatch::Range(n, n));
        }
        if text.is_empty()
            || text.len() > 15
            || !text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            || !text.chars().any(|c| c.is_ascii_lowercase())
        {
            return Err(bad(
                1,
                format!(
                    "{text:?} is neither a port, a range (from:to) nor a port name \
                     (1-15 lower-case letters, digits and '-', with a letter)"
                ),
            ));
        }
        Ok(PortMatch::Named(text.to_owned()))
    }

    /// Whether `port` matches, named ports resolved by `named`.
    pub fn matches(&self, port: u16, named: impl Fn(&str) -> Option<u16>) -> bool {
        match self {
            PortMatch::Range(first, last) => (*first..=*last).contains(&port),
            PortMatch::Named(name) => named(name) == Some(port),
        }
    }
}

impl fmt::Display for PortMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortMatch::Range(a, b) if a == b => write!(f, "{a}"),
            PortMatch::Range(a, b) => write!(f, "{a}:{b}"),
            PortMatch::Named(name) => f.write_str(name),
        }
    }
}

/// A port as written in YAML: a number or a string (`"80:90"`, `"http"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortText {
    /// A number.
    Number(u16),
    /// A range or a name.
    Text(String),
}

impl PortText {
    /// Parses it.
    pub fn to_match(&self) -> Result<PortMatch, CidrError> {
        match self {
            PortText::Number(n) => Ok(PortMatch::Range(*n, *n)),
            PortText::Text(text) => PortMatch::parse(text),
        }
    }
}

impl From<u16> for PortText {
    fn from(port: u16) -> Self {
        PortText::Number(port)
    }
}

impl From<&str> for PortText {
    fn from(text: &str) -> Self {
        PortText::Text(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_contain_what_their_prefix_covers() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.255.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            Cidr::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        let one = Cidr::parse("169.254.169.254").unwrap();
        assert_eq!(one.to_string(), "169.254.169.254/32");
        assert!(!one.contains("169.254.169.253".parse().unwrap()));
    }

    #[test]
    fn bad_cidrs_say_where() {
        assert_eq!(Cidr::parse("10.0.0/8").unwrap_err().column, 1);
        let e = Cidr::parse("10.0.0.0/33").unwrap_err();
        assert_eq!(e.column, 10, "{e}");
        assert!(e.message.contains("over 32"), "{e}");
        assert_eq!(Cidr::parse("10.0.0.0/x").unwrap_err().column, 10);
    }

    #[test]
    fn ports_are_numbers_ranges_or_names() {
        assert_eq!(PortMatch::parse("80").unwrap(), PortMatch::Range(80, 80));
        assert_eq!(
            PortMatch::parse("8000:8080").unwrap(),
            PortMatch::Range(8000, 8080)
        );
        assert_eq!(
            PortMatch::parse("serve-80-tcp").unwrap(),
            PortMatch::Named("serve-80-tcp".into())
        );
        assert_eq!(PortMatch::parse("90:80").unwrap_err().column, 1);
        assert_eq!(PortMatch::parse("80:x").unwrap_err().column, 4);
        assert!(PortMatch::parse("HTTP").is_err());
        let http = PortMatch::parse("http").unwrap();
        assert!(http.matches(8080, |n| (n == "http").then_some(8080)));
        assert!(!http.matches(8080, |_| None));
    }

    #[test]
    fn protocols_by_name_or_number() {
        assert_eq!(Protocol::parse("tcp"), Some(Protocol::Tcp));
        assert_eq!(Protocol::parse("17"), Some(Protocol::Udp));
        assert_eq!(Protocol::parse("ICMPv6"), Some(Protocol::IcmpV6));
        assert_eq!(Protocol::parse("0"), None);
        assert_eq!(Protocol::parse("carrier-pigeon"), None);
    }
}
