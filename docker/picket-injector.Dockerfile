# syntax=docker/dockerfile:1.7
# The injector (admission webhook and mesh identity service), from the repository root:
#   docker build -f docker/picket-injector.Dockerfile -t picket-injector:dev .
# Runs as distroless's nonroot user (65532), which the chart's Deployment also sets.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p picket-injector \
 && install -D -m 0755 target/release/picket-injector /out/picket-injector

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/picket-injector /usr/local/bin/picket-injector
USER 65532:65532
# 8443 webhook (TLS), 15012 identity service, 8080 /healthz /readyz /metrics
EXPOSE 8443 15012 8080
ENTRYPOINT ["/usr/local/bin/picket-injector"]
CMD ["serve"]
