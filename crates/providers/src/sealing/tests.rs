//! Sealing round trips, refuses tampered or moved values, rotates keys, and never shows a key.

use secrecy::{ExposeSecret as _, SecretString};

use super::{Keyring, SealedSecret, SealingError, SealingKey};

const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const AD_ONE: &[u8] = b"workspace:1/connection:1/oauth2";
const AD_TWO: &[u8] = b"workspace:2/connection:9/oauth2";

fn keyring(spec: &str) -> Keyring {
    Keyring::parse(&SecretString::from(spec)).expect("test keyring parses")
}

#[test]
fn a_sealed_token_opens_with_the_same_associated_data() -> Result<(), SealingError> {
    let keys = keyring(&format!("k1:{KEY_A}"));
    let token = SecretString::from("ya29.a0-ünïcode-token");
    let sealed = keys.seal_text(&token, AD_ONE)?;
    assert_eq!(sealed.key_id, "k1");
    assert!(!sealed.bytes.windows(5).any(|window| window == b"ya29."));
    let opened = keys.open_text(&sealed, AD_ONE)?;
    assert_eq!(opened.expose_secret(), token.expose_secret());
    Ok(())
}

#[test]
fn every_seal_uses_a_fresh_nonce() -> Result<(), SealingError> {
    let keys = keyring(&format!("k1:{KEY_A}"));
    let first = keys.seal(b"same plaintext", AD_ONE)?;
    let second = keys.seal(b"same plaintext", AD_ONE)?;
    assert_ne!(first.bytes[1..13], second.bytes[1..13]);
    assert_ne!(first.bytes, second.bytes);
    Ok(())
}

#[test]
fn a_ciphertext_moved_to_another_connection_does_not_open() -> Result<(), SealingError> {
    let keys = keyring(&format!("k1:{KEY_A}"));
    let sealed = keys.seal(b"refresh-token", AD_ONE)?;
    assert_eq!(
        keys.open(&sealed, AD_TWO).err(),
        Some(SealingError::Unauthentic)
    );
    assert_eq!(
        keys.open(&sealed, b"").err(),
        Some(SealingError::Unauthentic)
    );
    Ok(())
}

#[test]
fn any_tampered_byte_is_detected() -> Result<(), SealingError> {
    let keys = keyring(&format!("k1:{KEY_A}"));
    let sealed = keys.seal(b"refresh-token", AD_ONE)?;
    for index in 1..sealed.bytes.len() {
        let mut tampered = sealed.clone();
        tampered.bytes[index] ^= 0x01;
        assert_eq!(
            keys.open(&tampered, AD_ONE).err(),
            Some(SealingError::Unauthentic),
            "byte {index}"
        );
    }
    let mut wrong_version = sealed.clone();
    wrong_version.bytes[0] = 7;
    assert!(matches!(
        keys.open(&wrong_version, AD_ONE),
        Err(SealingError::Malformed(_))
    ));
    let truncated = SealedSecret {
        key_id: "k1".to_owned(),
        bytes: sealed.bytes[..20].to_vec(),
    };
    assert!(matches!(
        keys.open(&truncated, AD_ONE),
        Err(SealingError::Malformed(_))
    ));
    let empty = SealedSecret {
        key_id: "k1".to_owned(),
        bytes: Vec::new(),
    };
    assert!(matches!(
        keys.open(&empty, AD_ONE),
        Err(SealingError::Malformed(_))
    ));
    Ok(())
}

#[test]
fn a_value_sealed_with_another_key_under_the_same_id_does_not_open() -> Result<(), SealingError> {
    let sealed = keyring(&format!("k1:{KEY_A}")).seal(b"secret", AD_ONE)?;
    let impostor = keyring(&format!("k1:{KEY_B}"));
    assert_eq!(
        impostor.open(&sealed, AD_ONE).err(),
        Some(SealingError::Unauthentic)
    );
    Ok(())
}

#[test]
fn rotation_opens_old_values_and_reseals_them_under_the_new_key() -> Result<(), SealingError> {
    let old = keyring(&format!("k1:{KEY_A}"));
    let sealed_old = old.seal(b"refresh-token", AD_ONE)?;
    let rotated = keyring(&format!("k2:{KEY_B}, k1:{KEY_A}"));
    assert_eq!(rotated.primary_key_id(), "k2");
    assert_eq!(
        rotated.open(&sealed_old, AD_ONE)?.expose_secret(),
        b"refresh-token"
    );
    let resealed = rotated
        .reseal(&sealed_old, AD_ONE)?
        .ok_or(SealingError::EmptyKeyring)?;
    assert_eq!(resealed.key_id, "k2");
    assert_eq!(
        rotated.reseal(&resealed, AD_ONE)?,
        None,
        "already under the primary key"
    );
    assert_eq!(
        rotated.open(&resealed, AD_ONE)?.expose_secret(),
        b"refresh-token"
    );
    // Once k1 is retired, only resealed values open.
    let retired = keyring(&format!("k2:{KEY_B}"));
    assert_eq!(
        retired.open(&sealed_old, AD_ONE).err(),
        Some(SealingError::UnknownKeyId("k1".to_owned()))
    );
    assert!(retired.open(&resealed, AD_ONE).is_ok());
    Ok(())
}

#[test]
fn bad_key_lists_are_refused_without_echoing_key_material() {
    let cases = [
        (String::new(), "no key"),
        (format!("k1{KEY_A}"), "kid:base64"),
        ("k1:not base64!".to_owned(), "base64"),
        ("k1:AAECAwQ=".to_owned(), "32 bytes"),
        (format!("k1:{KEY_A},k1:{KEY_B}"), "two keys"),
        (format!(":{KEY_A}"), "key id"),
    ];
    for (spec, expected) in cases {
        let error =
            Keyring::parse(&SecretString::from(spec.clone())).expect_err("accepted a bad key list");
        let message = error.to_string();
        assert!(message.contains(expected), "{spec}: {message}");
        assert!(
            !message.contains(KEY_A) && !message.contains(KEY_B),
            "{message}"
        );
    }
}

#[test]
fn debug_output_never_shows_a_key() -> Result<(), SealingError> {
    let keys = keyring(&format!("k1:{KEY_A}"));
    let debug = format!("{keys:?}");
    assert!(
        debug.contains("k1") && debug.contains("redacted"),
        "{debug}"
    );
    assert!(
        !debug.contains(KEY_A) && !debug.contains("0, 1, 2, 3"),
        "{debug}"
    );
    let generated = SealingKey::generate("dev")?;
    let spec = generated.to_spec();
    let reparsed = Keyring::parse(&spec)?;
    let sealed = Keyring::new(vec![generated])?.seal(b"x", b"")?;
    assert_eq!(reparsed.open(&sealed, b"")?.expose_secret(), b"x");
    assert!(!format!("{sealed:?}").contains(&format!("{:?}", sealed.bytes)));
    Ok(())
}
