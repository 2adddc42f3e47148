//! Server-side sessions: storage backends, the actix-session adapter, and the
//! revocation bus that carries "this session ended" to every live socket.

pub mod backend;
