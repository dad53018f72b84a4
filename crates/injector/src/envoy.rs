//! The standalone-mode Envoy bootstrap, rendered per pod.
//!
//! ```text
//! caller's Envoy ──mTLS──▶ :inbound (this Envoy; SVID and bundles over SDS from the SPIRE agent)
//!                            ext_authz ──gRPC, Unix socket──▶ hallpass
//!                            router    ──HTTP/1.1 or h2c────▶ 127.0.0.1:<app port>
//! kubelet ──HTTP──▶ :health /ready ──▶ Envoy admin (a Unix socket, mode 0600,
//!                                      in the volume only hallpass and Envoy mount)
//! ```
//!
//! The ext_authz and HTTP connection manager settings are those of
//! `examples/envoy/callee-uds.yaml` (docs/envoy.md explains each one); the
//! certificates come from SDS instead of files.

use serde_json::{Value, json};

use crate::config::AppProtocol;

/// Everything that varies between pods.
#[derive(Debug, Clone)]
pub struct BootstrapParams {
    /// mTLS listener port (0.0.0.0).
    pub inbound_port: u16,
    /// The app's port on 127.0.0.1.
    pub app_port: u16,
    /// HTTP/1.1 or h2c towards the app.
    pub app_protocol: AppProtocol,
    /// Plain-HTTP `/ready` port for probes.
    pub health_port: u16,
    /// Envoy's admin Unix socket. Not a loopback port: any container of the
    /// pod could reach that, and the admin API can stop Envoy, drain its
    /// listeners or change runtime flags.
    pub admin_socket: String,
    /// hallpass's ext_authz Unix socket.
    pub authz_socket: String,
    /// The SPIRE agent's Workload API socket (SDS is served on it).
    pub spire_agent_socket: String,
    /// SDS name of this pod's SVID.
    pub svid_name: String,
    /// SDS name of the validation context.
    pub bundle_name: String,
    /// Put the caller's verified chain in `x-forwarded-client-cert`.
    pub forward_client_cert_chain: bool,
    /// ext_authz timeout in milliseconds.
    pub ext_authz_timeout_ms: u32,
}

fn sds_config() -> Value {
    json!({
        "resource_api_version": "V3",
        "api_config_source": {
            "api_type": "GRPC",
            "transport_api_version": "V3",
            "grpc_services": [{ "envoy_grpc": { "cluster_name": "spire_agent" } }]
        }
    })
}

fn h2_options() -> Value {
    json!({
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": { "http2_protocol_options": {} }
        }
    })
}

fn static_cluster(name: &str, address: Value, h2: bool, connect_timeout: &str) -> Value {
    let mut cluster = json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": connect_timeout,
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": address } }] }]
        }
    });
    // `json!({..})` is always an object.
    if h2 && let Some(fields) = cluster.as_object_mut() {
        fields.insert("typed_extension_protocol_options".into(), h2_options());
    }
    cluster
}

fn loopback(port: u16) -> Value {
    json!({ "socket_address": { "address": "127.0.0.1", "port_value": port } })
}

fn pipe(path: &str) -> Value {
    json!({ "pipe": { "path": path } })
}

/// The bootstrap as JSON (valid YAML, so Envoy takes it with `--config-yaml`).
pub fn bootstrap(p: &BootstrapParams) -> Value {
    let sds = sds_config();
    let xfcc = if p.forward_client_cert_chain {
        json!({
            // Drop whatever the caller sent; write the verified chain
            // (hallpass reads intermediates from Chain=) and the URI SAN.
            "forward_client_cert_details": "SANITIZE_SET",
            "set_current_client_cert_details": { "uri": true, "chain": true }
        })
    } else {
        json!({ "forward_client_cert_details": "SANITIZE" })
    };
    let mut inbound_hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "hallpass_inbound",
        "codec_type": "AUTO",
        // Authorize the path the app routes on (docs/envoy.md, path normalisation).
        "normalize_path": true,
        "merge_slashes": true,
        "path_with_escaped_slashes_action": "REJECT_REQUEST",
        // Frameworks that map header names to variables (CGI, WSGI, Rack)
        // turn x_hallpass_source into the same name as x-hallpass-source.
        // hallpass replaces only the latter, so refuse the former.
        "common_http_protocol_options": { "headers_with_underscores_action": "REJECT_REQUEST" },
        "route_config": {
            "name": "inbound",
            "virtual_hosts": [{
                "name": "app",
                "domains": ["*"],
                // No route timeout: the app's own timeouts apply (gRPC streams).
                "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": "app", "timeout": "0s" } }]
            }]
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.ext_authz",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
                    "transport_api_version": "V3",
                    "grpc_service": {
                        "envoy_grpc": { "cluster_name": "hallpass" },
                        "timeout": format!("{}s", f64::from(p.ext_authz_timeout_ms) / 1000.0)
                    },
                    "include_peer_certificate": true,
                    "failure_mode_allow": false,
                    "status_on_error": { "code": "Forbidden" }
                }
            },
            {
                "name": "envoy.filters.http.router",
                "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
            }
        ]
    });
    if let (Value::Object(hcm), Value::Object(x)) = (&mut inbound_hcm, xfcc) {
        hcm.extend(x);
    }
    let health_hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "hallpass_health",
        "codec_type": "HTTP1",
        "route_config": {
            "name": "health",
            "virtual_hosts": [{
                "name": "health",
                "domains": ["*"],
                "routes": [{ "match": { "path": "/ready" }, "route": { "cluster": "envoy_admin" } }]
            }]
        },
        "http_filters": [{
            "name": "envoy.filters.http.router",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
        }]
    });
    json!({
        "admin": { "address": { "pipe": { "path": p.admin_socket, "mode": 0o600 } } },
        "static_resources": {
            "listeners": [
                {
                    "name": "hallpass_inbound",
                    "address": { "socket_address": { "address": "0.0.0.0", "port_value": p.inbound_port } },
                    "filter_chains": [{
                        "transport_socket": {
                            "name": "envoy.transport_sockets.tls",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                                // No client SVID, no connection; hallpass still verifies it.
                                "require_client_certificate": true,
                                "common_tls_context": {
                                    "alpn_protocols": ["h2", "http/1.1"],
                                    "tls_certificate_sds_secret_configs": [{ "name": p.svid_name, "sds_config": sds }],
                                    "validation_context_sds_secret_config": { "name": p.bundle_name, "sds_config": sds }
                                }
                            }
                        },
                        "filters": [{
                            "name": "envoy.filters.network.http_connection_manager",
                            "typed_config": inbound_hcm
                        }]
                    }]
                },
                {
                    "name": "hallpass_health",
                    "address": { "socket_address": { "address": "0.0.0.0", "port_value": p.health_port } },
                    "filter_chains": [{
                        "filters": [{
                            "name": "envoy.filters.network.http_connection_manager",
                            "typed_config": health_hcm
                        }]
                    }]
                }
            ],
            "clusters": [
                static_cluster("app", loopback(p.app_port), p.app_protocol == AppProtocol::H2c, "1s"),
                static_cluster("hallpass", pipe(&p.authz_socket), true, "0.25s"),
                static_cluster("spire_agent", pipe(&p.spire_agent_socket), true, "1s"),
                static_cluster("envoy_admin", pipe(&p.admin_socket), false, "0.25s")
            ]
        }
    })
}
