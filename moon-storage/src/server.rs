//! A server named in a store URL.

use std::fmt;

/// A server named in a URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Server {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port, the scheme's default when the URL names none.
    pub port: u16,
    /// User information from the URL, if any; never printed.
    pub userinfo: Option<String>,
}

impl Server {
    /// The server of a URL's authority (`host`, `host:port`, `[::1]:port`), with
    /// `default_port` when it names none; a malformed one answers why.
    pub fn parse(authority: &str, default_port: u16) -> Result<Server, String> {
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((user, hostport)) => (Some(user.to_string()), hostport),
            None => (None, authority),
        };
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or("an IPv6 address lacks its closing ']'")?;
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or("expected ':PORT' after the IPv6 address")?,
                    ),
                ),
            }
        } else {
            match hostport.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err("the server's host is missing".to_string());
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:".contains(c))
        {
            return Err(format!("'{host}' is not a host name or IP address"));
        }
        let port = match port {
            None => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(format!("'{p}' is not a port (1-65535)")),
                Ok(port) => port,
            },
        };
        Ok(Server {
            host: host.to_string(),
            port,
            userinfo,
        })
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("userinfo", &self.userinfo.as_ref().map(|_| "***"))
            .finish()
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}
