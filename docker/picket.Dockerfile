# syntax=docker/dockerfile:1.7
# picket images, built from the repository root:
#   docker build -f docker/picket.Dockerfile -t picket:dev .                          # the sidecar
#   docker build -f docker/picket.Dockerfile --target picket-init -t picket-init:dev .  # the init image
# The sidecar runs `picket proxy` as UID 2102 (the UID the redirect rules exclude) on
# distroless (glibc, no shell). The init image runs `picket init` as root (the injector gives
# that container NET_ADMIN and NET_RAW and nothing else, for the few seconds it installs the
# redirect rules) and needs iptables/nftables, so it is Debian slim; the chart's one-off mesh
# CA bootstrap Job also runs in it (openssl, curl), as a non-root user.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p picket \
 && install -D -m 0755 target/release/picket /out/picket

FROM debian:bookworm-slim AS picket-init
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables nftables openssl curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/picket /usr/local/bin/picket
USER 0:0
ENTRYPOINT ["/usr/local/bin/picket"]
CMD ["init"]

# Last stage: the default target.
FROM gcr.io/distroless/cc-debian12:nonroot AS picket
COPY --from=build /out/picket /usr/local/bin/picket
USER 2102:2102
# 15001 outbound capture, 15006 inbound capture, 15090 admin (/metrics /healthz /readyz /pack)
EXPOSE 15001 15006 15090
ENTRYPOINT ["/usr/local/bin/picket"]
CMD ["proxy"]
