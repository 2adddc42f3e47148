//! The fixed label values of the outcome labels: each enum's `ALL` is the
//! order of the counters resolved for it, so `outcome as usize` indexes them.

/// `tether_ws_messages_total{outcome}`: how a client message was answered
/// (the WebSocket error codes, README "Frames").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageOutcome {
    Ok,
    Forbidden,
    BadRequest,
    UnknownType,
    RateLimited,
    Unavailable,
    Internal,
}

impl MessageOutcome {
    pub const ALL: [MessageOutcome; 7] = [
        MessageOutcome::Ok,
        MessageOutcome::Forbidden,
        MessageOutcome::BadRequest,
        MessageOutcome::UnknownType,
        MessageOutcome::RateLimited,
        MessageOutcome::Unavailable,
        MessageOutcome::Internal,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            MessageOutcome::Ok => "ok",
            MessageOutcome::Forbidden => "forbidden",
            MessageOutcome::BadRequest => "bad_request",
            MessageOutcome::UnknownType => "unknown_type",
            MessageOutcome::RateLimited => "rate_limited",
            MessageOutcome::Unavailable => "unavailable",
            MessageOutcome::Internal => "internal",
        }
    }
}

/// `tether_logins_total{outcome}`: the answer to `POST /api/auth/login`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    Success,
    InvalidCredentials,
    RateLimited,
    Unavailable,
    BadRequest,
    /// Refused by the cross-site check before any password was looked at.
    Forbidden,
    Error,
}

impl LoginOutcome {
    pub const ALL: [LoginOutcome; 7] = [
        LoginOutcome::Success,
        LoginOutcome::InvalidCredentials,
        LoginOutcome::RateLimited,
        LoginOutcome::Unavailable,
        LoginOutcome::BadRequest,
        LoginOutcome::Forbidden,
        LoginOutcome::Error,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Success => "success",
            LoginOutcome::InvalidCredentials => "invalid_credentials",
            LoginOutcome::RateLimited => "rate_limited",
            LoginOutcome::Unavailable => "unavailable",
            LoginOutcome::BadRequest => "bad_request",
            LoginOutcome::Forbidden => "forbidden",
            LoginOutcome::Error => "error",
        }
    }

    /// From the route's HTTP status: each status of the sign-in route stands
    /// for exactly one error code (README "Errors").
    pub fn from_status(status: u16) -> Self {
        match status {
            200..=299 => LoginOutcome::Success,
            401 => LoginOutcome::InvalidCredentials,
            429 => LoginOutcome::RateLimited,
            503 => LoginOutcome::Unavailable,
            400 | 413 | 415 => LoginOutcome::BadRequest,
            403 => LoginOutcome::Forbidden,
            _ => LoginOutcome::Error,
        }
    }
}

/// `tether_ws_upgrades_total{outcome}`: the answer to `GET /ws`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeOutcome {
    Ok,
    Unauthenticated,
    ForbiddenOrigin,
    /// A socket cap (per session or per user) was reached.
    RateLimited,
    Unavailable,
    BadRequest,
    Error,
}

impl UpgradeOutcome {
    pub const ALL: [UpgradeOutcome; 7] = [
        UpgradeOutcome::Ok,
        UpgradeOutcome::Unauthenticated,
        UpgradeOutcome::ForbiddenOrigin,
        UpgradeOutcome::RateLimited,
        UpgradeOutcome::Unavailable,
        UpgradeOutcome::BadRequest,
        UpgradeOutcome::Error,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            UpgradeOutcome::Ok => "ok",
            UpgradeOutcome::Unauthenticated => "unauthenticated",
            UpgradeOutcome::ForbiddenOrigin => "forbidden_origin",
            UpgradeOutcome::RateLimited => "rate_limited",
            UpgradeOutcome::Unavailable => "unavailable",
            UpgradeOutcome::BadRequest => "bad_request",
            UpgradeOutcome::Error => "error",
        }
    }

    /// From the route's HTTP status (101 on success; each error status of
    /// `GET /ws` stands for one refusal, README "Upgrade").
    pub fn from_status(status: u16) -> Self {
        match status {
            101 => UpgradeOutcome::Ok,
            401 => UpgradeOutcome::Unauthenticated,
            403 => UpgradeOutcome::ForbiddenOrigin,
            429 => UpgradeOutcome::RateLimited,
            503 => UpgradeOutcome::Unavailable,
            400 => UpgradeOutcome::BadRequest,
            _ => UpgradeOutcome::Error,
        }
    }
}
