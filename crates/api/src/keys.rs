//! Where the JWT signing keys come from: the settings, a keys file, or — for the embedded
//! default only — a key generated once into the data directory.

use std::path::Path;

use rand::RngCore;
use scantag_auth::jwt::{JwtConfig, JwtKey};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::settings::Settings;

const GENERATED_FILE: &str = "jwt-keys.toml";
const DEFAULT_KID: &str = "default";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    active_kid: Option<String>,
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    kid: String,
    secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("cannot read JWT keys file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write JWT keys file {path}: {reason}")]
    Write { path: String, reason: String },
}

fn read_file(path: &Path) -> Result<KeysFile, KeysError> {
    let fail = |reason: String| KeysError::Read {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    toml::from_str(&text).map_err(|e| fail(e.to_string()))
}

/// A fresh random signing key file for development, readable only by its owner.
fn generate_file(path: &Path) -> Result<KeysFile, KeysError> {
    let fail = |reason: String| KeysError::Write {
        path: path.display().to_string(),
        reason,
    };
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let kid = format!("dev-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    let file = KeysFile {
        active_kid: Some(kid.clone()),
        keys: vec![KeyEntry {
            kid,
            secret: hex::encode(bytes),
        }],
    };
    let text = toml::to_string(&file).map_err(|e| fail(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    std::fs::write(path, text).map_err(|e| fail(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| fail(e.to_string()))?;
    }
    tracing::warn!(path = %path.display(), "generated a development JWT signing key; configure SCANTAG_JWT__SECRET or SCANTAG_JWT__KEYS_FILE in production");
    Ok(file)
}

/// Builds the JWT configuration from the settings.
pub fn jwt_config(settings: &Settings) -> Result<JwtConfig, KeysError> {
    let jwt = &settings.jwt;
    let mut keys = Vec::new();
    let mut active = jwt.active_kid.clone();
    if let Some(secret) = &jwt.secret {
        keys.push(JwtKey {
            kid: active.clone().unwrap_or_else(|| DEFAULT_KID.to_owned()),
            secret: secret.clone(),
        });
        active.get_or_insert_with(|| DEFAULT_KID.to_owned());
    }
    let file = match (&jwt.keys_file, keys.is_empty()) {
        (Some(path), _) => Some(read_file(path)?),
        (None, true) => {
            let path = settings.data_dir.join(GENERATED_FILE);
            Some(if path.exists() {
                read_file(&path)?
            } else {
                generate_file(&path)?
            })
        }
        (None, false) => None,
    };
    if let Some(file) = file {
        if active.is_none() {
            active = file.active_kid.clone();
        }
        keys.extend(file.keys.into_iter().map(|k| JwtKey {
            kid: k.kid,
            secret: SecretString::from(k.secret),
        }));
    }
    let active_kid = active
        .or_else(|| keys.first().map(|k| k.kid.clone()))
        .unwrap_or_else(|| DEFAULT_KID.to_owned());
    Ok(JwtConfig {
        keys,
        active_kid,
        issuer: jwt.issuer.clone(),
        audience: jwt.audience.clone(),
        access_ttl: std::time::Duration::from_secs(jwt.access_ttl_secs),
    })
}

/// A description of the keys for the start-up log, without revealing any secret.
pub fn describe(config: &JwtConfig) -> String {
    let kids: Vec<&str> = config.keys.iter().map(|k| k.kid.as_str()).collect();
    let shortest = config
        .keys
        .iter()
        .map(|k| k.secret.expose_secret().len())
        .min()
        .unwrap_or(0);
    format!(
        "active kid {}, verification kids [{}], shortest secret {shortest} bytes",
        config.active_kid,
        kids.join(", ")
    )
}
