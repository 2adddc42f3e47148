//! `REDIS_URL` parsed once into the Redis topology the server runs on: one
//! node, a Sentinel-watched primary, or a Cluster. Passwords stay secret:
//! they never reach `Debug` or an error message.

use secrecy::SecretString;

/// Where sessions, events and counters live (`REDIS_URL`).
#[derive(Debug, Clone)]
pub enum RedisTopology {
    /// One server: `redis://…` or `rediss://…`, handed to the client as is.
    Single(SecretString),
    /// A primary watched by Sentinel:
    /// `redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT…]/MASTER_NAME`.
    /// The password is the primary's and replicas' (`requirepass`); the
    /// sentinels themselves are asked without one. Database 0.
    Sentinel {
        sentinels: Vec<RedisNode>,
        master: String,
        password: Option<SecretString>,
    },
    /// Seed nodes of a Redis Cluster:
    /// `redis+cluster://[:PASSWORD@]HOST:PORT[,HOST:PORT…]`. Database 0.
    Cluster {
        nodes: Vec<RedisNode>,
        password: Option<SecretString>,
    },
}

impl RedisTopology {
    /// Sentinel and Cluster keep a replica of every primary; one node has none.
    pub fn has_replicas(&self) -> bool {
        !matches!(self, RedisTopology::Single(_))
    }

    /// The topology's name in logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            RedisTopology::Single(_) => "single",
            RedisTopology::Sentinel { .. } => "sentinel",
            RedisTopology::Cluster { .. } => "cluster",
        }
    }
}

/// One `HOST:PORT` of a Sentinel or Cluster URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisNode {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for RedisNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a `REDIS_URL` was refused. Never quotes the part before `@`.
pub(super) fn parse(url: &str) -> Result<RedisTopology, String> {
    let url = url.trim();
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        return Ok(RedisTopology::Single(SecretString::from(url.to_owned())));
    }
    if let Some(rest) = url.strip_prefix("redis+sentinel://") {
        let (password, rest) = split_password(rest)?;
        let Some((hosts, master)) = rest.split_once('/') else {
            return Err("redis+sentinel:// needs the master's name as its path: \
                 redis+sentinel://HOST:PORT[,HOST:PORT…]/MASTER_NAME"
                .into());
        };
        if master.is_empty() || !master.chars().all(is_name_char) {
            return Err(format!(
                "{master:?} is not a master name (letters, digits, '.', '_', '-')"
            ));
        }
        return Ok(RedisTopology::Sentinel {
            sentinels: nodes(hosts)?,
            master: master.to_owned(),
            password,
        });
    }
    if let Some(rest) = url.strip_prefix("redis+cluster://") {
        let (password, rest) = split_password(rest)?;
        let hosts = rest.strip_suffix('/').unwrap_or(rest);
        if hosts.contains('/') {
            return Err("redis+cluster:// takes no path (a cluster has database 0 only)".into());
        }
        return Ok(RedisTopology::Cluster {
            nodes: nodes(hosts)?,
            password,
        });
    }
    Err("must start with redis://, rediss://, redis+sentinel:// or redis+cluster://".into())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Splits `[:PASSWORD@]REST` at its last `@`; the password is percent-decoded.
fn split_password(rest: &str) -> Result<(Option<SecretString>, &str), String> {
    let Some((userinfo, rest)) = rest.rsplit_once('@') else {
        return Ok((None, rest));
    };
    let Some(encoded) = userinfo.strip_prefix(':') else {
        return Err("only a password may come before '@', as :PASSWORD@ (no user name)".into());
    };
    let password = percent_decode(encoded)
        .ok_or("the password is not valid percent-encoding (write '%' as %25)")?;
    if password.is_empty() {
        return Err("the password before '@' is empty".into());
    }
    Ok((Some(SecretString::from(password)), rest))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `HOST:PORT[,HOST:PORT…]`; an IPv6 host goes in brackets (`[::1]:26379`).
fn nodes(list: &str) -> Result<Vec<RedisNode>, String> {
    if list.trim().is_empty() {
        return Err("names no HOST:PORT".into());
    }
    list.split(',').map(|n| node(n.trim())).collect()
}

fn node(hostport: &str) -> Result<RedisNode, String> {
    let bad = || format!("{hostport:?} is not HOST:PORT");
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            (host, after.strip_prefix(':').ok_or_else(bad)?)
        }
        None => hostport.rsplit_once(':').ok_or_else(bad)?,
    };
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    let port: u16 = port.parse().map_err(|_| bad())?;
    if !valid_host || port == 0 {
        return Err(bad());
    }
    Ok(RedisNode {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    fn node(host: &str, port: u16) -> RedisNode {
        RedisNode {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn a_plain_url_is_one_node() {
        for url in [
            "redis://127.0.0.1:6379",
            "rediss://:pw@cache.example:6380/2",
        ] {
            match parse(url).unwrap() {
                RedisTopology::Single(u) => assert_eq!(u.expose_secret(), url),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_sentinel_url_names_its_sentinels_and_master() {
        let RedisTopology::Sentinel {
            sentinels,
            master,
            password,
        } = parse(
            "redis+sentinel://:s%40cret@10.0.0.1:26379,sentinel-2:26380,[::1]:26381/mymaster",
        )
        .unwrap()
        else {
            panic!("not sentinel")
        };
        assert_eq!(
            sentinels,
            vec![
                node("10.0.0.1", 26379),
                node("sentinel-2", 26380),
                node("::1", 26381)
            ]
        );
        assert_eq!(master, "mymaster");
        assert_eq!(password.unwrap().expose_secret(), "s@cret");
        assert_eq!(node("::1", 26381).to_string(), "[::1]:26381");
    }

    #[test]
    fn a_cluster_url_names_its_seed_nodes() {
        let RedisTopology::Cluster { nodes, password } =
            parse("redis+cluster://127.0.0.1:7101,127.0.0.1:7102/").unwrap()
        else {
            panic!("not cluster")
        };
        assert_eq!(
            nodes,
            vec![node("127.0.0.1", 7101), node("127.0.0.1", 7102)]
        );
        assert!(password.is_none());
    }

    #[test]
    fn malformed_urls_are_refused() {
        for url in [
            "http://x",
            "redis+sentinel://127.0.0.1:26379",
            "redis+sentinel://127.0.0.1:26379/",
            "redis+sentinel://127.0.0.1:26379/my/master",
            "redis+sentinel:///mymaster",
            "redis+sentinel://127.0.0.1/mymaster",
            "redis+sentinel://127.0.0.1:0/mymaster",
            "redis+sentinel://127.0.0.1:99999/mymaster",
            "redis+sentinel://127.0.0.1:26379,,h:1/mymaster",
            "redis+sentinel://:@127.0.0.1:26379/mymaster",
            "redis+cluster://",
            "redis+cluster://127.0.0.1:7101/0",
            "redis+cluster://[::1:7101",
            "redis+cluster://bad host:7101",
            "redis+cluster://:bad%zz@127.0.0.1:7101",
        ] {
            assert!(parse(url).is_err(), "{url} was accepted");
        }
    }

    #[test]
    fn secrets_stay_out_of_errors_and_debug() {
        for url in [
            "redis+sentinel://hunter2@127.0.0.1:26379/mymaster",
            "redis+sentinel://user:hunter2@127.0.0.1:26379/mymaster",
            "redis+cluster://:hunter2%zz@127.0.0.1:7101",
            "redis+cluster://:hunter2@127.0.0.1:7101/path",
            "redis+sentinel://:hunter2@127.0.0.1:26379",
        ] {
            let error = parse(url).unwrap_err();
            assert!(!error.contains("hunter2"), "{url}: {error}");
        }
        let parsed = parse("redis+sentinel://:hunter2@127.0.0.1:26379/m").unwrap();
        assert!(!format!("{parsed:?}").contains("hunter2"));
        let parsed = parse("redis://:hunter2@127.0.0.1:6379").unwrap();
        assert!(!format!("{parsed:?}").contains("hunter2"));
    }
}
