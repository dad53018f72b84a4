//! The fake Workload API, read by the real `spiffe` client.

// A test stops loudly on the unexpected: unwrap, expect, panic and
// indexing are how a test says so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hallpass_testkit::Ca;
use hallpass_workload_api_fake::pb::{
    JwtsvidRequest, JwtsvidResponse, X509BundlesRequest, X509BundlesResponse,
};
use hallpass_workload_api_fake::{FakeWorkloadApi, SECURITY_HEADER_MISSING};
use serde_json::{Value, json};
use spiffe::transport::{Endpoint, GrpcStatusCode, TransportError};
use spiffe::{TrustDomain, WorkloadApiClient, WorkloadApiError, X509BundleSet};
use tokio_stream::{Stream, StreamExt as _};
use tonic::codegen::http::uri::PathAndQuery;

const WAIT: Duration = Duration::from_secs(10);

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Bind every field: a field left to `..` is dropped at once, and dropping
/// the directory or the agent removes the socket.
struct Setup {
    _dir: tempfile::TempDir,
    agent: FakeWorkloadApi,
    client: WorkloadApiClient,
}

async fn setup() -> Result<Setup, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let agent = FakeWorkloadApi::start(&dir.path().join("agent.sock"))?;
    let client = WorkloadApiClient::connect_to(agent.endpoint()).await?;
    Ok(Setup {
        _dir: dir,
        agent,
        client,
    })
}

/// The next stream item, failing the test if none comes in time.
async fn next<S, T>(stream: &mut S) -> Result<T, Box<dyn std::error::Error>>
where
    S: Stream<Item = T> + Unpin,
{
    tokio::time::timeout(WAIT, stream.next())
        .await?
        .ok_or_else(|| "stream ended".into())
}

fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).expect("valid trust domain")
}

/// The DER of each authority in `trust_domain`'s bundle, in order.
fn authorities(set: &X509BundleSet, trust_domain: &str) -> Option<Vec<Vec<u8>>> {
    set.get(&td(trust_domain)).map(|bundle| {
        bundle
            .authorities()
            .iter()
            .map(|cert| cert.as_ref().to_vec())
            .collect()
    })
}

fn grpc_code(err: &WorkloadApiError) -> Option<GrpcStatusCode> {
    match err {
        WorkloadApiError::Transport(TransportError::Status(status)) => Some(status.code()),
        _ => None,
    }
}

/// One EC P-256 JWT authority: (kid, the JWK object).
fn jwt_authority(kid: &str) -> (String, Value) {
    let key = rcgen::KeyPair::generate().expect("P-256 key");
    let raw = key.public_key_raw(); // 0x04 || x || y
    assert_eq!(raw.len(), 65);
    assert_eq!(raw[0], 0x04);
    let jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "kid": kid,
        "use": "jwt-svid",
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
    });
    (kid.to_owned(), jwk)
}

fn jwks(keys: &[&Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "keys": keys })).expect("JSON")
}

#[tokio::test]
async fn streams_the_initial_x509_bundle_set() -> TestResult {
    let Setup {
        _dir,
        agent,
        client,
    } = setup().await?;
    let a1 = Ca::root("a.test")?;
    let a2 = Ca::root("a.test")?;
    let b = Ca::root("b.test")?;
    agent.set_x509_bundles(vec![
        (
            "a.test".to_owned(),
            vec![a1.cert_der().to_vec(), a2.cert_der().to_vec()],
        ),
        ("spiffe://b.test".to_owned(), vec![b.cert_der().to_vec()]),
    ]);

    let mut stream = client.stream_x509_bundles().await?;
    let set = next(&mut stream).await??;

    assert_eq!(set.len(), 2);
    assert_eq!(
        authorities(&set, "a.test"),
        Some(vec![a1.cert_der().to_vec(), a2.cert_der().to_vec()])
    );
    assert_eq!(
        authorities(&set, "b.test"),
        Some(vec![b.cert_der().to_vec()])
    );
    assert_eq!(agent.x509_streams_opened(), 1);
    assert_eq!(agent.jwt_streams_opened(), 0);
    Ok(())
}

#[tokio::test]
async fn a_stream_waits_for_the_first_set() -> TestResult {
    let Setup {
        _dir,
        agent,
        client,
    } = setup().await?;
    let mut stream = client.stream_x509_bundles().await?;
    assert!(
        tokio::time::timeout(Duration::from_millis(200), stream.next())
            .await
            .is_err(),
        "nothing may be sent before a set exists"
    );

    let a = Ca::root("a.test")?;
    agent.set_x509_bundles(vec![("a.test".to_owned(), vec![a.cert_der().to_vec()])]);
    let set = next(&mut stream).await??;
    assert_eq!(
        authorities(&set, "a.test"),
        Some(vec![a.cert_der().to_vec()])
    );
    Ok(())
}

#[tokio::test]
async fn pushes_a_rotated_ca() -> TestResult {
    let Setup {
        _dir,
        agent,
        client,
    } = setup().await?;
    let old = Ca::root("a.test")?;
    let new = Ca::root("a.test")?;
    agent.set_x509_bundles(vec![("a.test".to_owned(), vec![old.cert_der().to_vec()])]);
    let mut stream = client.stream_x509_bundles().await?;
    let set = next(&mut stream).await??;
    assert_eq!(
        authorities(&set, "a.test"),
        Some(vec![old.cert_der().to_vec()])
    );

    agent.set_x509_bundles(vec![("a.test".to_owned(), vec![new.cert_der().to_vec()])]);
    let set = next(&mut stream).await??;
    assert_eq!(
        authorities(&set, "a.test"),
        Some(vec![new.cert_der().to_vec()])
    );
    Ok(())
}

#[tokio::test]
async fn a_trust_domain_left_out_of_a_set_is_gone() -> TestResult {
    let Setup {
        _dir,
        agent,
        client,
    } = setup().await?;
    let a = Ca::root("a.test")?;
    let b = Ca::root("b.test")?;
    agent.set_x509_bundles(vec![
        ("a.test".to_owned(), vec![a.cert_der().to_vec()]),
        ("b.test".to_owned(), vec![b.cert_der().to_vec()]),
    ]);
    let mut stream = client.stream_x509_bundles().await?;
    assert_eq!(next(&mut stream).await??.len(), 2);

    agent.set_x509_bundles(vec![("a.test".to_owned(), vec![a.cert_der().to_vec()])]);
    let set = next(&mut stream).await??;
    assert_eq!(set.len(), 1);
    assert_eq!(
        authorities(&set, "a.test"),
        Some(vec![a.cert_der().to_vec()])
    );
    assert_eq!(authorities(&set, "b.test"), None);
    Ok(())
}

#[tokio::test]
async fn an_empty_set_is_an_error_for_the_client() -> TestResult {
    let Setup {
        _dir,
        agent,
        client,
    } = setup().await?;
    agent.set_x509_bundles(Vec::new());
    let mut stream = client.stream_x509_bundles().await?;
    let err = next(&mut stream)
        .await?
        .expect_err("empty set must be refused");
    assert!(
        matches!(err, WorkloadApiError::MissingRequiredField { .. }),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn jwt_bundles_round_trip() -> TestResult {
    let Setup {
        _dir,
        agent,
        client,
    } = setup().await?;
    let (kid, jwk) = jwt_authority("key-1");
    let (other_kid, other_jwk) = jwt_authority("key-2");
    agent.set_jwt_bundles(vec![
        ("a.test".to_owned(), jwks(&[&jwk])),
        ("b.test".to_owned(), jwks(&[&other_jwk])),
    ]);

    let mut stream = client.stream_jwt_bundles().await?;
    let set = next(&mut stream).await??;
    assert_eq!(set.len(), 2);
    let bundle = set.get(&td("a.test")).ok_or("a.test missing")?;
    let authority = bundle.find_jwt_authority(&kid).ok_or("kid missing")?;
    // The client re-serialises each key, so compare as JSON values.
    assert_eq!(serde_json::from_slice::<Value>(authority.jwk_json())?, jwk);
    assert!(bundle.find_jwt_authority(&other_kid).is_none());
    assert_eq!(agent.jwt_streams_opened(), 1);

    // Rotation, with b.test dropped.
    let (new_kid, new_jwk) = jwt_authority("key-3");
    agent.set_jwt_bundles(vec![("a.test".to_owned(), jwks(&[&new_jwk]))]);
    let set = next(&mut stream).await??;
    assert_eq!(set.len(), 1);
    let bundle = set.get(&td("a.test")).ok_or("a.test missing")?;
    assert!(bundle.find_jwt_authority(&new_kid).is_some());
    assert!(bundle.find_jwt_authority(&kid).is_none());
    Ok(())
}

#[tokio::test]
async fn disconnect_all_ends_streams_and_new_ones_work() -> TestResult {
    let Setup {
        _dir,
        agent,
        client,
    } = setup().await?;
    let a = Ca::root("a.test")?;
    let (_, jwk) = jwt_authority("key-1");
    agent.set_x509_bundles(vec![("a.test".to_owned(), vec![a.cert_der().to_vec()])]);
    agent.set_jwt_bundles(vec![("a.test".to_owned(), jwks(&[&jwk]))]);
    let mut x509 = client.stream_x509_bundles().await?;
    let mut jwt = client.stream_jwt_bundles().await?;
    next(&mut x509).await??;
    next(&mut jwt).await??;

    agent.disconnect_all();

    let err = next(&mut x509).await?.expect_err("X.509 stream must fail");
    assert_eq!(
        grpc_code(&err),
        Some(GrpcStatusCode::Unavailable),
        "{err:?}"
    );
    assert!(next(&mut x509).await.is_err(), "X.509 stream must end");
    let err = next(&mut jwt).await?.expect_err("JWT stream must fail");
    assert_eq!(
        grpc_code(&err),
        Some(GrpcStatusCode::Unavailable),
        "{err:?}"
    );
    assert!(next(&mut jwt).await.is_err(), "JWT stream must end");

    // The client reconnects over the same channel and gets the current sets.
    let mut x509 = client.stream_x509_bundles().await?;
    let set = next(&mut x509).await??;
    assert_eq!(
        authorities(&set, "a.test"),
        Some(vec![a.cert_der().to_vec()])
    );
    let mut jwt = client.stream_jwt_bundles().await?;
    assert_eq!(next(&mut jwt).await??.len(), 1);
    assert_eq!(agent.x509_streams_opened(), 2);
    assert_eq!(agent.jwt_streams_opened(), 2);
    Ok(())
}

#[tokio::test]
async fn svid_rpcs_are_unimplemented() -> TestResult {
    let Setup {
        _dir,
        agent: _agent,
        client,
    } = setup().await?;
    let err = client
        .fetch_jwt_svid(["aud"], None)
        .await
        .expect_err("FetchJWTSVID is not served");
    assert_eq!(
        grpc_code(&err),
        Some(GrpcStatusCode::Unimplemented),
        "{err:?}"
    );
    let err = client
        .fetch_x509_context()
        .await
        .expect_err("FetchX509SVID is not served");
    assert_eq!(
        grpc_code(&err),
        Some(GrpcStatusCode::Unimplemented),
        "{err:?}"
    );
    Ok(())
}

/// A raw gRPC client: the spiffe client always adds the security header.
async fn raw_client(
    socket: &Path,
) -> Result<tonic::client::Grpc<tonic::transport::Channel>, Box<dyn std::error::Error>> {
    let endpoint = Endpoint::Unix(socket.to_owned());
    let channel = spiffe::transport::connect(&endpoint).await?;
    Ok(tonic::client::Grpc::new(channel))
}

#[tokio::test]
async fn calls_without_the_security_header_are_refused() -> TestResult {
    let Setup {
        _dir,
        agent,
        client: _client,
    } = setup().await?;
    let a = Ca::root("a.test")?;
    agent.set_x509_bundles(vec![("a.test".to_owned(), vec![a.cert_der().to_vec()])]);
    let mut grpc = raw_client(agent.socket_path()).await?;

    grpc.ready().await?;
    let status = grpc
        .server_streaming::<_, X509BundlesResponse, _>(
            tonic::Request::new(X509BundlesRequest {}),
            PathAndQuery::from_static("/SpiffeWorkloadAPI/FetchX509Bundles"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("no header, no stream");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), SECURITY_HEADER_MISSING);
    assert_eq!(agent.x509_streams_opened(), 0);

    grpc.ready().await?;
    let mut request = tonic::Request::new(JwtsvidRequest {
        audience: vec!["aud".to_owned()],
        spiffe_id: String::new(),
    });
    request
        .metadata_mut()
        .insert("workload.spiffe.io", "yes".parse()?);
    let status = grpc
        .unary::<_, JwtsvidResponse, _>(
            request,
            PathAndQuery::from_static("/SpiffeWorkloadAPI/FetchJWTSVID"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("a header that is not `true` is no header");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    // With the header, the same raw call gets through to the service.
    grpc.ready().await?;
    let mut request = tonic::Request::new(X509BundlesRequest {});
    request
        .metadata_mut()
        .insert("workload.spiffe.io", "true".parse()?);
    let mut stream = grpc
        .server_streaming::<_, X509BundlesResponse, _>(
            request,
            PathAndQuery::from_static("/SpiffeWorkloadAPI/FetchX509Bundles"),
            tonic_prost::ProstCodec::default(),
        )
        .await?
        .into_inner();
    let message = tokio::time::timeout(WAIT, stream.message())
        .await??
        .ok_or("stream ended")?;
    // The wire format: trust domain ID -> concatenated DER.
    assert_eq!(
        message.bundles.keys().collect::<Vec<_>>(),
        vec!["spiffe://a.test"]
    );
    assert_eq!(message.bundles["spiffe://a.test"], a.cert_der());
    assert_eq!(agent.x509_streams_opened(), 1);
    Ok(())
}

#[tokio::test]
async fn stop_ends_streams_and_removes_the_socket() -> TestResult {
    let Setup {
        _dir,
        agent,
        client,
    } = setup().await?;
    let a = Ca::root("a.test")?;
    agent.set_x509_bundles(vec![("a.test".to_owned(), vec![a.cert_der().to_vec()])]);
    let mut stream = client.stream_x509_bundles().await?;
    next(&mut stream).await??;
    let socket = agent.socket_path().to_owned();
    assert!(socket.exists());

    agent.stop();

    assert!(!socket.exists());
    let err = next(&mut stream).await?.expect_err("stream must fail");
    assert_eq!(
        grpc_code(&err),
        Some(GrpcStatusCode::Unavailable),
        "{err:?}"
    );
    assert!(
        WorkloadApiClient::connect_to(format!("unix:{}", socket.display()))
            .await
            .is_err(),
        "nothing listens any more"
    );

    // The path is free again.
    let again = FakeWorkloadApi::start(&socket)?;
    again.stop();
    Ok(())
}

#[tokio::test]
async fn start_refuses_an_existing_path() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("agent.sock");
    std::fs::write(&path, b"")?;
    assert!(FakeWorkloadApi::start(&path).is_err());
    assert!(path.exists(), "a file that is not ours is left alone");
    Ok(())
}
