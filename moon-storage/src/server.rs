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
        crate::url::parse_server(authority, default_port)
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
