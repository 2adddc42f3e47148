//! WebSocket client side: connections with small buffers (tokio-tungstenite
//! ≥ 0.25 would otherwise allocate a 128 KiB read buffer per socket, which
//! alone would cost 2.4 GiB at 19k sockets), spread over loopback source
//! addresses so many sockets do not run out of ephemeral ports.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    client_async_with_config,
    tungstenite::{
        client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig, Error, Message,
    },
    WebSocketStream,
};

pub type Socket = WebSocketStream<TcpStream>;

/// How long any single wait on a socket may take before it counts as an error.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Loopback source addresses used round-robin: 127.0.0.2 … 127.0.0.9.
const SOURCES: u8 = 8;
static NEXT_SOURCE: AtomicUsize = AtomicUsize::new(0);

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// How an upgrade ended: a socket, or the HTTP status of a refusal.
pub enum Upgrade {
    Open(Box<Socket>),
    Refused(u16),
}

/// Opens a WebSocket to `url` with `cookie` (if any), from the next source address.
pub async fn connect(url: &str, cookie: Option<&str>) -> anyhow::Result<Upgrade> {
    let mut request = url.into_client_request()?;
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", HeaderValue::from_str(cookie)?);
    }
    let host = request.uri().host().context("url host")?;
    let port = request.uri().port_u16().unwrap_or(80);
    let server: SocketAddr = (host.parse::<IpAddr>()?, port).into();
    let source = NEXT_SOURCE.fetch_add(1, Ordering::Relaxed) % SOURCES as usize;
    let socket = TcpSocket::new_v4()?;
    socket.bind((Ipv4Addr::new(127, 0, 0, 2 + source as u8), 0).into())?;
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    match client_async_with_config(request, stream, Some(config())).await {
        Ok((socket, _)) => Ok(Upgrade::Open(Box::new(socket))),
        Err(Error::Http(response)) => Ok(Upgrade::Refused(response.status().as_u16())),
        Err(e) => Err(e.into()),
    }
}

/// Connects and reads the first frame (`hello`); returns the socket and that frame.
pub async fn connect_hello(url: &str, cookie: Option<&str>) -> anyhow::Result<(Socket, Value)> {
    match tokio::time::timeout(TIMEOUT, connect(url, cookie)).await?? {
        Upgrade::Open(mut socket) => {
            let hello = next_json(&mut socket).await?;
            Ok((*socket, hello))
        }
        Upgrade::Refused(status) => bail!("upgrade refused: HTTP {status}"),
    }
}

/// The next text frame as JSON (control frames are skipped; tungstenite
/// answers pings by itself while reading).
pub async fn next_json(socket: &mut Socket) -> anyhow::Result<Value> {
    loop {
        let frame = tokio::time::timeout(TIMEOUT, socket.next())
            .await?
            .context("socket ended")??;
        match frame {
            Message::Text(text) => return Ok(serde_json::from_str(text.as_str())?),
            Message::Close(close) => bail!("closed: {close:?}"),
            _ => continue,
        }
    }
}

/// Sends one request frame and waits for the reply carrying its id
/// (events in between are skipped). Returns whether the reply was `ok`.
pub async fn round_trip(socket: &mut Socket, id: u64, kind: &str) -> anyhow::Result<bool> {
    socket
        .send(Message::text(format!(
            r#"{{"id":{id},"type":"{kind}","data":{{}}}}"#
        )))
        .await?;
    loop {
        let reply = next_json(socket).await?;
        if reply.get("re").and_then(Value::as_u64) == Some(id) || reply.get("id").is_some() {
            return Ok(reply.get("ok").and_then(Value::as_bool).unwrap_or(true));
        }
    }
}

/// Sends a close frame and waits (briefly) for the server's.
pub async fn close(mut socket: Socket) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = socket.close(None).await;
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}

/// Opens one socket per cookie, `parallel` at a time; each with its `hello`.
pub async fn open_all(
    url: &str,
    cookies: Vec<String>,
    parallel: usize,
) -> Vec<anyhow::Result<(Socket, Value)>> {
    futures_util::stream::iter(cookies)
        .map(|cookie| async move { connect_hello(url, Some(&cookie)).await })
        .buffer_unordered(parallel)
        .collect()
        .await
}
