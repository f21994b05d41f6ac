# syntax=docker/dockerfile:1
# The server in a distroless image: no shell, no package manager, non-root (uid 65532), and
# nothing written to disk, so it runs with a read-only root filesystem. Build with `make docker`.

# Build on the same Debian release as the runtime image, so the binary and glibc agree.
FROM rust:1.95-slim-trixie AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY kit ./kit
# Cache mounts keep downloaded crates and compiled dependencies between builds: a code change
# recompiles this crate only. The binary leaves the cache mount before the step ends.
# Cargo features to build in, e.g. `--build-arg FEATURES=otel` for OpenTelemetry traces.
ARG FEATURES=""
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --features "${FEATURES}" \
    && cp target/release/mcp-starter /usr/local/bin/mcp-starter

# The runtime: glibc, libgcc, CA certificates and /etc/passwd with user nonroot (65532).
FROM gcr.io/distroless/cc-debian13:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="mcp-starter" \
      org.opencontainers.image.description="A production-ready Model Context Protocol server: stdio and Streamable HTTP, both protocol generations." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian13:nonroot"
COPY --from=build /usr/local/bin/mcp-starter /usr/local/bin/mcp-starter
USER 65532:65532
# Health endpoints also on a listener of their own, which a flood of MCP connections cannot
# starve; on loopback, where the HEALTHCHECK below probes it (Kubernetes binds it wider).
ENV MCP_TRANSPORT=http \
    MCP_BIND=0.0.0.0:8080 \
    MCP_HEALTH_BIND=127.0.0.1:8081
EXPOSE 8080
# SIGTERM starts the drain: readiness turns 503, calls in flight finish, then exit 0.
STOPSIGNAL SIGTERM
# No shell or curl in the image: the binary probes its own /healthz, on MCP_HEALTH_BIND.
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/mcp-starter", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/mcp-starter"]
CMD ["serve"]
