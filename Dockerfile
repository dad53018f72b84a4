# syntax=docker/dockerfile:1
#
# hallpass in one image: the sidecar (`hallpass serve`, the default command)
# and the Kubernetes injection webhook (`hallpass inject`, which the Helm chart
# runs). Multi-stage: a Rust build stage, then a distroless runtime that holds
# nothing but the binary and the C runtime it links (glibc, libgcc), running as
# the non-root user 65532.
#
#   docker build -t ghcr.io/hallpass-dev/hallpass:0.1.0 .
#
# This file was not built where it was written (no container engine there);
# see docs/kubernetes.md, "The image".

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# aws-lc-sys (the TLS crypto) compiles C with the image's gcc; no cmake needed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p hallpass --bin hallpass \
 && install -D -m 0755 target/release/hallpass /out/hallpass

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/hallpass /usr/local/bin/hallpass
USER 65532:65532
# 9191 ext_authz (loopback in pods), 9902 admin (/healthz /readyz /metrics),
# 8443 injector webhook (HTTPS).
EXPOSE 9191 9902 8443
ENTRYPOINT ["/usr/local/bin/hallpass"]
CMD ["serve", "--config", "/etc/hallpass/config.yaml"]
