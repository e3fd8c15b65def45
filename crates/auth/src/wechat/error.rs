//! Errors returned by the WeChat server-API client, one variant per errcode a caller treats
//! differently.

/// Why a WeChat server-API call failed.
///
/// WeChat answers failures as HTTP 200 with `{"errcode": N, "errmsg": "..."}`; the errcodes
/// callers need to tell apart (to choose an HTTP answer or a message for the user) have their
/// own variant, everything else lands in [`WeChatError::Upstream`].
#[derive(Debug, thiserror::Error)]
pub enum WeChatError {
    /// The login or phone code is unknown or expired (40029).
    #[error("the code is invalid or expired (errcode 40029)")]
    InvalidCode,
    /// The login or phone code has already been exchanged (40163).
    #[error("the code has already been used (errcode 40163)")]
    CodeUsed,
    /// WeChat throttles this caller (45011).
    #[error("too many requests for this user or app (errcode 45011)")]
    RateLimited,
    /// WeChat flags the user as high risk and refuses the login (40226).
    #[error("the user is blocked as high risk (errcode 40226)")]
    HighRiskUser,
    /// WeChat kept answering "system busy" (-1) until the retries ran out.
    #[error("WeChat is busy (errcode -1)")]
    Busy,
    /// The access token was rejected (40001, 40014, 42001) even after a forced refresh.
    #[error("the access token was rejected (errcode {errcode})")]
    AccessTokenInvalid { errcode: i64 },
    /// WeChat does not accept the configured appid (40013) or secret (40125).
    #[error("the app credentials were rejected (errcode {errcode})")]
    AppCredentialsRejected { errcode: i64 },
    /// A request argument was refused (template, page, scene, openid, missing code, ...).
    #[error("invalid argument (errcode {errcode}): {errmsg}")]
    InvalidArgument { errcode: i64, errmsg: String },
    /// Any other errcode.
    #[error("WeChat answered errcode {errcode}: {errmsg}")]
    Upstream { errcode: i64, errmsg: String },
    /// The request failed on the way: connection refused, timeout, reset, gateway error.
    #[error("request to WeChat failed: {0}")]
    Transport(String),
    /// WeChat answered something that is not a valid reply for the endpoint.
    #[error("unexpected answer from WeChat: {0}")]
    UnexpectedResponse(String),
    /// The client configuration cannot be used (bad base URL, HTTP client setup).
    #[error("invalid WeChat client configuration: {0}")]
    InvalidConfig(String),
}

/// Errcodes meaning the access token used for the call is no longer accepted.
pub(crate) const ACCESS_TOKEN_ERRCODES: [i64; 3] = [40001, 40014, 42001];

/// Errcodes meaning the caller sent an argument WeChat refuses.
const INVALID_ARGUMENT_ERRCODES: [i64; 8] = [
    40003, // invalid openid
    40037, // invalid template_id
    40097, // invalid arguments
    40129, // invalid scene
    40169, // scene too long
    41008, // missing code
    41030, // page does not exist in the published version
    47003, // template data does not match the template
];

impl WeChatError {
    /// Maps a non-zero errcode to its variant.
    pub fn from_errcode(errcode: i64, errmsg: impl Into<String>) -> WeChatError {
        match errcode {
            40029 => WeChatError::InvalidCode,
            40163 => WeChatError::CodeUsed,
            45011 => WeChatError::RateLimited,
            40226 => WeChatError::HighRiskUser,
            -1 => WeChatError::Busy,
            40013 | 40125 => WeChatError::AppCredentialsRejected { errcode },
            code if ACCESS_TOKEN_ERRCODES.contains(&code) => {
                WeChatError::AccessTokenInvalid { errcode }
            }
            code if INVALID_ARGUMENT_ERRCODES.contains(&code) => WeChatError::InvalidArgument {
                errcode,
                errmsg: errmsg.into(),
            },
            _ => WeChatError::Upstream {
                errcode,
                errmsg: errmsg.into(),
            },
        }
    }

    /// The WeChat errcode behind this error, when WeChat answered one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            WeChatError::InvalidCode => Some(40029),
            WeChatError::CodeUsed => Some(40163),
            WeChatError::RateLimited => Some(45011),
            WeChatError::HighRiskUser => Some(40226),
            WeChatError::Busy => Some(-1),
            WeChatError::AccessTokenInvalid { errcode }
            | WeChatError::AppCredentialsRejected { errcode }
            | WeChatError::InvalidArgument { errcode, .. }
            | WeChatError::Upstream { errcode, .. } => Some(*errcode),
            WeChatError::Transport(_)
            | WeChatError::UnexpectedResponse(_)
            | WeChatError::InvalidConfig(_) => None,
        }
    }

    /// Whether the error says the access token must be replaced.
    pub(crate) fn is_access_token_rejection(&self) -> bool {
        matches!(self, WeChatError::AccessTokenInvalid { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapped_errcode_round_trips_through_errcode() {
        for code in [
            40029, 40163, 45011, 40226, -1, 40013, 40125, 40001, 42001, 40097, 40169, 41030, 40003,
            40037, 41008, 43101,
        ] {
            assert_eq!(WeChatError::from_errcode(code, "x").errcode(), Some(code));
        }
    }

    #[test]
    fn unknown_errcodes_are_upstream_errors() {
        assert!(matches!(
            WeChatError::from_errcode(43101, "user refuse to accept the msg"),
            WeChatError::Upstream { errcode: 43101, .. }
        ));
    }
}
