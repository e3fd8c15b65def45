//! With a certificate and key configured the server speaks HTTPS only.

use scantag_api::settings::TlsSettings;
use scantag_e2e::spawn_app_with;

#[tokio::test]
async fn with_a_certificate_configured_the_server_answers_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();

    let settings = TlsSettings {
        cert_path,
        key_path,
    };
    let app = spawn_app_with(move |s| {
        s.tls = Some(settings);
    })
    .await;

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let health = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let plain = app.url("/healthz").replace("https://", "http://");
    assert!(
        reqwest::get(plain)
            .await
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
    );
}
