//! Token sealing: AES-256-GCM with a fresh random 96-bit nonce per seal, the id of the key that
//! sealed stored beside the ciphertext, and associated data chosen by the caller, so a ciphertext
//! moved to another row (another workspace or connection) does not open.
//!
//! A [`Keyring`] holds every key that may open; the first one seals. Rotation is: put the new key
//! first, keep the old ones, and [`Keyring::reseal`] each stored secret until none uses an old key.

use std::fmt;

use aes_gcm::aead::{Aead as _, Generate as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret as _, SecretBox, SecretString};
use zeroize::Zeroizing;

/// The first byte of every sealed value: the layout `version | nonce (12) | ciphertext and tag`.
const FORMAT_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Key ids are stored in a `VARCHAR(100)` column and written in `kid:base64` lists.
const MAX_KEY_ID_LEN: usize = 100;

/// Why sealing or opening failed. Messages never contain key material or plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealingError {
    /// A key is malformed (not base64, not 32 bytes, bad id).
    #[error("invalid sealing key `{key_id}`: {reason}")]
    InvalidKey {
        /// The key's id (empty when the id itself is the problem).
        key_id: String,
        /// What is wrong.
        reason: String,
    },
    /// The keyring has no key.
    #[error("the keyring has no key")]
    EmptyKeyring,
    /// Two keys share an id.
    #[error("the keyring has two keys with id `{0}`")]
    DuplicateKeyId(String),
    /// The value was sealed with a key this keyring does not hold.
    #[error("no key `{0}` in the keyring (was it removed before every secret was resealed?)")]
    UnknownKeyId(String),
    /// The stored bytes are not a sealed value of a known layout.
    #[error("malformed sealed value: {0}")]
    Malformed(&'static str),
    /// Authentication failed: tampered bytes, the wrong key, or other associated data (a value
    /// moved to another row). These are indistinguishable by design.
    #[error("the sealed value does not open with this key and associated data")]
    Unauthentic,
    /// The operating system's random source failed.
    #[error("no randomness for a nonce or key: {0}")]
    Random(String),
    /// The opened bytes are not UTF-8 where text was expected.
    #[error("the opened value is not UTF-8 text")]
    NotText,
}

/// One AES-256 key with its id.
pub struct SealingKey {
    id: String,
    bytes: SecretBox<[u8; 32]>,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SealingKey")
            .field("id", &self.id)
            .field("bytes", &"[redacted]")
            .finish()
    }
}

impl SealingKey {
    /// A key from its 32 bytes. The id must be 1–100 characters without `:` or `,`.
    pub fn new(id: impl Into<String>, bytes: [u8; 32]) -> Result<Self, SealingError> {
        let id = id.into();
        let bytes = Zeroizing::new(bytes);
        if id.is_empty() || id.len() > MAX_KEY_ID_LEN || id.contains([':', ',']) || id.trim() != id
        {
            return Err(SealingError::InvalidKey {
                key_id: String::new(),
                reason: format!(
                    "a key id is 1-{MAX_KEY_ID_LEN} characters without ':', ',' or surrounding spaces"
                ),
            });
        }
        Ok(Self {
            id,
            bytes: SecretBox::new(Box::new(*bytes)),
        })
    }

    /// A key from standard base64 of exactly 32 bytes.
    pub fn from_base64(id: impl Into<String>, base64: &str) -> Result<Self, SealingError> {
        let id = id.into();
        let invalid = |reason: &str| SealingError::InvalidKey {
            key_id: id.clone(),
            reason: reason.to_owned(),
        };
        let decoded = Zeroizing::new(
            BASE64
                .decode(base64.trim())
                .map_err(|_| invalid("not standard base64"))?,
        );
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| invalid("an AES-256 key is exactly 32 bytes"))?;
        Self::new(id, bytes)
    }

    /// A new random key (for development keys; production keys come from a secret store).
    pub fn generate(id: impl Into<String>) -> Result<Self, SealingError> {
        let key = Key::<Aes256Gcm>::try_generate()
            .map_err(|error| SealingError::Random(error.to_string()))?;
        let bytes: [u8; 32] = key.into();
        Self::new(id, bytes)
    }

    /// The key's id, stored with every value it seals.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as `id:base64`, the form [`Keyring::parse`] reads (to write a generated dev key).
    pub fn to_spec(&self) -> SecretString {
        SecretString::from(format!(
            "{}:{}",
            self.id,
            BASE64.encode(self.bytes.expose_secret())
        ))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.bytes.expose_secret()))
    }
}

/// A secret as stored: the id of the key that sealed it and the sealed bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// The id of the key that sealed this value.
    pub key_id: String,
    /// `version | nonce | ciphertext and tag`.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SealedSecret")
            .field("key_id", &self.key_id)
            .field("n_bytes", &self.bytes.len())
            .finish()
    }
}

/// The keys that may open sealed values; the first one seals.
#[derive(Debug)]
pub struct Keyring {
    keys: Vec<SealingKey>,
}

impl Keyring {
    /// A keyring of `keys`, the first of which seals. Ids must be unique.
    pub fn new(keys: Vec<SealingKey>) -> Result<Self, SealingError> {
        if keys.is_empty() {
            return Err(SealingError::EmptyKeyring);
        }
        for (index, key) in keys.iter().enumerate() {
            if keys[..index].iter().any(|earlier| earlier.id == key.id) {
                return Err(SealingError::DuplicateKeyId(key.id.clone()));
            }
        }
        Ok(Self { keys })
    }

    /// Reads `kid:base64[,kid:base64…]` (the platform's `TOKEN_ENCRYPTION_KEYS` format).
    pub fn parse(spec: &SecretString) -> Result<Self, SealingError> {
        let keys = spec
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let (id, base64) =
                    entry
                        .split_once(':')
                        .ok_or_else(|| SealingError::InvalidKey {
                            key_id: String::new(),
                            reason: "each key is written `kid:base64`".to_owned(),
                        })?;
                SealingKey::from_base64(id.trim(), base64)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// The id of the key that seals.
    pub fn primary_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Seals `plaintext` with the primary key, binding `associated_data` (which must be given again
    /// to open it).
    pub fn seal(
        &self,
        plaintext: &[u8],
        associated_data: &[u8],
    ) -> Result<SealedSecret, SealingError> {
        let key = &self.keys[0];
        let nonce =
            Nonce::try_generate().map_err(|error| SealingError::Random(error.to_string()))?;
        let ciphertext = key
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: associated_data,
                },
            )
            .map_err(|_| SealingError::Malformed("the plaintext is too long to seal"))?;
        let mut bytes = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        bytes.push(FORMAT_VERSION);
        bytes.extend_from_slice(nonce.as_slice());
        bytes.extend_from_slice(&ciphertext);
        Ok(SealedSecret {
            key_id: key.id.clone(),
            bytes,
        })
    }

    /// Seals a text secret.
    pub fn seal_text(
        &self,
        secret: &SecretString,
        associated_data: &[u8],
    ) -> Result<SealedSecret, SealingError> {
        self.seal(secret.expose_secret().as_bytes(), associated_data)
    }

    /// Opens a sealed value with the key it names and the same associated data.
    pub fn open(
        &self,
        sealed: &SealedSecret,
        associated_data: &[u8],
    ) -> Result<SecretBox<[u8]>, SealingError> {
        let key = self
            .keys
            .iter()
            .find(|key| key.id == sealed.key_id)
            .ok_or_else(|| SealingError::UnknownKeyId(sealed.key_id.clone()))?;
        let (version, rest) = sealed
            .bytes
            .split_first()
            .ok_or(SealingError::Malformed("empty"))?;
        if *version != FORMAT_VERSION {
            return Err(SealingError::Malformed("unknown format version"));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(SealingError::Malformed("shorter than a nonce and a tag"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_from(nonce).map_err(|_| SealingError::Malformed("bad nonce length"))?;
        let plaintext = key
            .cipher()
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: associated_data,
                },
            )
            .map_err(|_| SealingError::Unauthentic)?;
        Ok(SecretBox::new(plaintext.into_boxed_slice()))
    }

    /// Opens a sealed text secret.
    pub fn open_text(
        &self,
        sealed: &SealedSecret,
        associated_data: &[u8],
    ) -> Result<SecretString, SealingError> {
        let bytes = self.open(sealed, associated_data)?;
        let text = std::str::from_utf8(bytes.expose_secret()).map_err(|_| SealingError::NotText)?;
        Ok(SecretString::from(text))
    }

    /// Re-seals a value under the primary key when another key sealed it (rotation); `None` when
    /// it is already sealed with the primary key.
    pub fn reseal(
        &self,
        sealed: &SealedSecret,
        associated_data: &[u8],
    ) -> Result<Option<SealedSecret>, SealingError> {
        if sealed.key_id == self.primary_key_id() {
            return Ok(None);
        }
        let plaintext = self.open(sealed, associated_data)?;
        self.seal(plaintext.expose_secret(), associated_data)
            .map(Some)
    }
}

#[cfg(test)]
mod tests;
