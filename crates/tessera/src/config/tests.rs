use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_serve_sqlite_on_loopback() {
    let c = Config::from_settings(load_settings(None, &env(&[])).unwrap()).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.issuer_for(c.listen), "http://localhost:8080");
    assert!(c.database_url.starts_with("sqlite://"));
    assert_eq!(c.argon.memory_kib, 19_456);
    assert!(!c.signup_enabled);
}

#[test]
fn environment_wins_over_file_and_reaches_sections() {
    let dir = std::env::temp_dir().join(format!("tessera-cfg-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tessera.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:9000\"\n[signup]\nenabled = false\n[session]\nidle_timeout = \"1h\"\n").unwrap();
    let s = load_settings(
        Some(&file),
        &env(&[("TESSERA_LISTEN", "127.0.0.1:9100"), ("TESSERA_SIGNUP__ENABLED", "true"), ("TESSERA_SERVER__TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")]),
    )
    .unwrap();
    let c = Config::from_settings(s).unwrap();
    assert_eq!(c.listen.port(), 9100);
    assert!(c.signup_enabled);
    assert_eq!(c.idle_timeout, Duration::from_secs(3600));
    assert_eq!(c.trusted_proxies.len(), 2);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn secrets_come_from_file_variables() {
    let dir = std::env::temp_dir().join(format!("tessera-cfg-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("key");
    std::fs::write(&key_file, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
    let s = load_settings(None, &env(&[("TESSERA_SECRET_KEY_FILE", key_file.to_str().unwrap())])).unwrap();
    let c = Config::from_settings(s).unwrap();
    assert_eq!(c.secret_key.unwrap()[31], 31);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unknown_keys_are_refused_with_their_name() {
    let e = load_settings(None, &env(&[("TESSERA_SESSION__IDLE", "1h")])).unwrap_err().to_string();
    assert!(e.contains("idle"), "{e}");
    let e = load_settings(None, &env(&[("TESSERA_LISTN", "x")])).unwrap_err().to_string();
    assert!(e.contains("TESSERA_LISTN"), "{e}");
    let dir = std::env::temp_dir().join(format!("tessera-cfg-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("t.toml");
    std::fs::write(&file, "[tls]\ncert = \"x\"\n").unwrap();
    let e = load_settings(Some(&file), &env(&[])).unwrap_err().to_string();
    assert!(e.contains("cert"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_values_are_explained() {
    let bad = |pairs: &[(&str, &str)]| Config::from_settings(load_settings(None, &env(pairs)).unwrap()).is_err();
    assert!(bad(&[("TESSERA_LISTEN", "nowhere")]));
    assert!(bad(&[("TESSERA_ISSUER", "ftp://x")]));
    assert!(bad(&[("TESSERA_DATABASE_URL", "mysql://x")]));
    assert!(bad(&[("TESSERA_TLS__CERT_FILE", "/x")]));
    assert!(bad(&[("TESSERA_SECRET_KEY", "short")]));
}
