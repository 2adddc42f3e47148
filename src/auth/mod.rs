//! Who the caller is and what they may do: password hashing, sign-in/out and
//! "who am I" routes, the extractors that put the required permission in a
//! handler's signature, and the user-management service functions shared by
//! the CLI and the admin API.

pub mod access;
pub mod extractors;
pub mod own_sessions;
pub mod password;
pub mod password_routes;
pub mod routes;
pub mod sign_in;
pub mod throttle;

pub use crate::sessions::CurrentSession;
pub use access::{AccessCache, Me, UserAccess, UserJson};
pub use extractors::{Authorized, CurrentUser};
pub use password::{HashError, Hasher};
