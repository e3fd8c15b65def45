//! Access tokens: HS256 JWTs with key ids, so signing keys can rotate.
//!
//! One key signs (the active one); every configured key verifies. To rotate, add a new key,
//! make it active, and drop the old one once the longest access-token lifetime has passed.
//! Only HS256 is accepted, whatever the token header claims, so `alg: none` and algorithm
//! confusion are rejected before any signature check.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// HMAC keys shorter than this are refused: they can be brute-forced offline.
pub const MIN_SECRET_BYTES: usize = 32;
/// Clock skew tolerated between servers, in seconds.
const LEEWAY_SECS: u64 = 5;

/// One signing/verification key.
#[derive(Clone)]
pub struct JwtKey {
    pub kid: String,
    pub secret: SecretString,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("secret", &"[redacted]")
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub keys: Vec<JwtKey>,
    /// The kid of the key that signs new tokens.
    pub active_kid: String,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
}

/// Whether the bearer is a member of staff or a visitor of the mini-program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    Staff,
    Visitor,
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Staff id or visitor id, as a string (RFC 7519).
    pub sub: String,
    /// Tenant of a staff member; visitors have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<i64>,
    /// Staff role (`admin`, `manager`, `sales`) or `visitor`.
    pub role: String,
    pub kind: PrincipalKind,
    /// The login session the token belongs to; revoking the session revokes the token.
    pub sid: i64,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// Who a token is issued to.
#[derive(Debug, Clone)]
pub struct Subject {
    pub id: i64,
    pub tenant_id: Option<i64>,
    pub role: String,
    pub kind: PrincipalKind,
    pub session_id: i64,
}

#[derive(Debug, Clone)]
pub struct IssuedAccessToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("invalid JWT configuration: {0}")]
    Config(String),
    #[error("token is malformed")]
    Malformed,
    #[error("token is signed with an unknown key")]
    UnknownKey,
    #[error("token has expired")]
    Expired,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token claims are invalid")]
    BadClaims,
    #[error("could not sign token")]
    Signing,
}

/// The configured keys, ready to sign and verify.
pub struct JwtKeys {
    active_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl: Duration,
}

impl JwtKeys {
    pub fn new(config: &JwtConfig) -> Result<Self, JwtError> {
        let mut decoding = HashMap::new();
        let mut encoding = None;
        for key in &config.keys {
            let secret = key.secret.expose_secret().as_bytes();
            if key.kid.is_empty() {
                return Err(JwtError::Config("a key has an empty kid".into()));
            }
            if secret.len() < MIN_SECRET_BYTES {
                return Err(JwtError::Config(format!(
                    "key {} is shorter than {MIN_SECRET_BYTES} bytes",
                    key.kid
                )));
            }
            if decoding
                .insert(key.kid.clone(), DecodingKey::from_secret(secret))
                .is_some()
            {
                return Err(JwtError::Config(format!("kid {} appears twice", key.kid)));
            }
            if key.kid == config.active_kid {
                encoding = Some(EncodingKey::from_secret(secret));
            }
        }
        let encoding = encoding.ok_or_else(|| {
            JwtError::Config(format!("no key with the active kid {}", config.active_kid))
        })?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        // Expiry is judged against the server's clock in `verify_at`.
        validation.validate_exp = false;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(JwtKeys {
            active_kid: config.active_kid.clone(),
            encoding,
            decoding,
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl: config.access_ttl,
        })
    }

    /// How long an access token lives.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// Signs an access token for `subject` with the active key, issued now.
    pub fn issue(&self, subject: &Subject) -> Result<IssuedAccessToken, JwtError> {
        self.issue_at(subject, Utc::now())
    }

    /// Signs an access token for `subject` with the active key, issued at `now` (the server's
    /// clock, which a test may have moved).
    pub fn issue_at(
        &self,
        subject: &Subject,
        now: DateTime<Utc>,
    ) -> Result<IssuedAccessToken, JwtError> {
        let ttl = chrono::Duration::from_std(self.access_ttl).map_err(|_| JwtError::Signing)?;
        let expires_at = now + ttl;
        let claims = Claims {
            sub: subject.id.to_string(),
            tid: subject.tenant_id,
            role: subject.role.clone(),
            kind: subject.kind,
            sid: subject.session_id,
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.active_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|_| JwtError::Signing)?;
        Ok(IssuedAccessToken { token, expires_at })
    }

    /// Verifies `token` now and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        self.verify_at(token, Utc::now())
    }

    /// Verifies `token` as of `now` (the server's clock) and returns its claims; the token
    /// has expired once `now` is past `exp` by more than the leeway.
    pub fn verify_at(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(JwtError::Malformed);
        }
        let kid = header.kid.ok_or(JwtError::UnknownKey)?;
        let key = self.decoding.get(&kid).ok_or(JwtError::UnknownKey)?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => JwtError::Expired,
                ErrorKind::InvalidSignature => JwtError::BadSignature,
                ErrorKind::InvalidToken
                | ErrorKind::Base64(_)
                | ErrorKind::Json(_)
                | ErrorKind::Utf8(_)
                | ErrorKind::InvalidAlgorithm => JwtError::Malformed,
                _ => JwtError::BadClaims,
            })?;
        // `exp` is checked here, against the server's clock, not the library's.
        if claims
            .exp
            .saturating_add(i64::try_from(LEEWAY_SECS).unwrap_or(0))
            < now.timestamp()
        {
            return Err(JwtError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, secret: &str) -> JwtKey {
        JwtKey {
            kid: kid.into(),
            secret: SecretString::from(secret.to_owned()),
        }
    }

    fn config(keys: Vec<JwtKey>, active: &str) -> JwtConfig {
        JwtConfig {
            keys,
            active_kid: active.into(),
            issuer: "scantag".into(),
            audience: "scantag-api".into(),
            access_ttl: Duration::from_secs(900),
        }
    }

    fn subject() -> Subject {
        Subject {
            id: 7,
            tenant_id: Some(3),
            role: "admin".into(),
            kind: PrincipalKind::Staff,
            session_id: 11,
        }
    }

    const A: &str = "a-very-long-secret-of-at-least-32-bytes!";
    const B: &str = "another-long-secret-of-at-least-32-bytes";

    #[test]
    fn issued_token_verifies_with_its_claims() {
        let keys = JwtKeys::new(&config(vec![key("k1", A)], "k1")).unwrap();
        let issued = keys.issue(&subject()).unwrap();
        let claims = keys.verify(&issued.token).unwrap();
        assert_eq!(claims.sub, "7");
        assert_eq!(claims.tid, Some(3));
        assert_eq!(claims.kind, PrincipalKind::Staff);
        assert_eq!(claims.sid, 11);
    }

    #[test]
    fn tokens_of_a_retired_active_key_still_verify_after_rotation() {
        let old = JwtKeys::new(&config(vec![key("k1", A)], "k1")).unwrap();
        let token = old.issue(&subject()).unwrap().token;
        let rotated = JwtKeys::new(&config(vec![key("k1", A), key("k2", B)], "k2")).unwrap();
        assert!(rotated.verify(&token).is_ok());
        let dropped = JwtKeys::new(&config(vec![key("k2", B)], "k2")).unwrap();
        assert!(matches!(dropped.verify(&token), Err(JwtError::UnknownKey)));
    }

    #[test]
    fn short_secrets_and_missing_active_keys_are_refused() {
        assert!(JwtKeys::new(&config(vec![key("k1", "short")], "k1")).is_err());
        assert!(JwtKeys::new(&config(vec![key("k1", A)], "k9")).is_err());
        assert!(JwtKeys::new(&config(vec![key("k1", A), key("k1", B)], "k1")).is_err());
    }

    #[test]
    fn a_tampered_payload_fails_the_signature_check() {
        let keys = JwtKeys::new(&config(vec![key("k1", A)], "k1")).unwrap();
        let token = keys.issue(&subject()).unwrap().token;
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let other = keys.issue(&Subject { id: 8, ..subject() }).unwrap().token;
        parts[1] = other.split('.').nth(1).unwrap().to_owned();
        assert!(matches!(
            keys.verify(&parts.join(".")),
            Err(JwtError::BadSignature)
        ));
    }
}
