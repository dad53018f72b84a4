# syntax=docker/dockerfile:1
#
# Two images from one build stage (docs/kubernetes.md, "The images"):
#
#   sidecar   `hallpass` built with --no-default-features: `serve`,
#             `config check` and `policy check|test|explain`, nothing else (no injector, no
#             offline analyses, no demo). What runs beside every workload.
#   hallpass  the full command: the injection webhook the Helm chart runs
#             (`hallpass inject`) and the operator tools. The default target.
#
#   docker build --target sidecar  -t ghcr.io/hallpass-dev/hallpass-sidecar:0.1.0 .
#   docker build --target hallpass -t ghcr.io/hallpass-dev/hallpass:0.1.0 .
#   docker build --target debug-symbols --output type=local,dest=dist .
#
# Both are distroless runtimes holding nothing but the binary and the C
# runtime it links (glibc, libgcc), running as the non-root user 65532. The
# binaries' DWARF line tables are split off by scripts/build-release.sh
# (objcopy, found again through the GNU debuglink and build ID) and kept in
# the `debug-symbols` target rather than shipped or lost.
#
# This file was not built where it was written (no container engine there);
# see docs/kubernetes.md, "The images".

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# aws-lc-sys (the TLS crypto) compiles C with the image's gcc; no cmake
# needed. objcopy comes with the image's binutils.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    DIST_DIR=/out scripts/build-release.sh both

FROM scratch AS debug-symbols
COPY --from=build /out/hallpass-sidecar.debug /out/hallpass.debug /

FROM gcr.io/distroless/cc-debian12:nonroot AS sidecar
COPY --from=build /out/hallpass-sidecar /usr/local/bin/hallpass
USER 65532:65532
# 9191 ext_authz (loopback in pods), 9902 admin (/healthz /readyz /metrics).
EXPOSE 9191 9902
ENTRYPOINT ["/usr/local/bin/hallpass"]
CMD ["serve", "--config", "/etc/hallpass/config.yaml"]

FROM gcr.io/distroless/cc-debian12:nonroot AS hallpass
COPY --from=build /out/hallpass /usr/local/bin/hallpass
USER 65532:65532
# 8443 injector webhook (HTTPS); 9191 and 9902 when it runs `serve`.
EXPOSE 8443 9191 9902
ENTRYPOINT ["/usr/local/bin/hallpass"]
CMD ["inject", "--config", "/etc/hallpass-injector/injector.yaml"]
