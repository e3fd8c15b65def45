//! Opaque bearer secrets (invite codes, refresh tokens): generated from the OS RNG, handed out
//! once, and stored only as a SHA-256 digest so a database leak does not leak usable tokens.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new random secret: 32 bytes, hex encoded.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The digest stored in place of a secret.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_and_digests_stable() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(digest(&a), digest(&a));
        assert_ne!(digest(&a), digest(&b));
    }
}
