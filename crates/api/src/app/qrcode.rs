//! A channel's mini-program code (`wxacode.getUnlimited`): fetched from WeChat once per
//! (scene, page, width, environment) and kept in the shared cache, so repeated downloads cost
//! WeChat nothing.

use scantag_auth::wechat::{EnvVersion, QrCodeRequest};
use scantag_domain::ChannelId;
use scantag_domain::access::StaffActor;
use scantag_domain::channels::Channels;
use sha2::{Digest, Sha256};

use crate::app::search::CacheStatus;
use crate::error::ApiError;
use crate::state::AppState;

/// Unlimited mini-program codes never expire; a cached image is only dropped to save space.
const QR_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// A PNG image, and whether it came from the cache.
pub struct Code {
    pub png: Vec<u8>,
    pub cache: CacheStatus,
}

/// The code that opens channel `id`'s capture page.
pub async fn channel_code(
    state: &AppState,
    staff: &StaffActor,
    id: ChannelId,
    width: u32,
    env: EnvVersion,
) -> Result<Code, ApiError> {
    let scene = Channels::new(&state.db, staff).qr_scene(id).await?;
    let page = state.capture.capture_page.clone();
    let fingerprint = hex::encode(Sha256::digest(
        format!("{scene}\n{page}\n{width}\n{}", env.as_str()).as_bytes(),
    ));
    let key = format!("qrcode:{}:{fingerprint}", staff.tenant);
    if let Some(png) = state.cache.get(&key).await {
        return Ok(Code {
            png,
            cache: CacheStatus::Hit,
        });
    }
    let png = state
        .wechat
        .qr_code_unlimited(&QrCodeRequest {
            scene,
            page: Some(page),
            width: Some(width),
            env_version: Some(env),
            check_path: Some(false),
        })
        .await?;
    state.cache.set(&key, &png, QR_TTL).await;
    Ok(Code {
        png,
        cache: CacheStatus::Miss,
    })
}
