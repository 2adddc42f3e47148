# syntax=docker/dockerfile:1
# tether: build the release binary, then run it on a slim Debian as non-root.
#   docker build -t tether .
#   docker run --rm -p 8080:8080 -e TETHER_SESSION_KEY="$(openssl rand -base64 64 | tr -d '\n')" tether
# With no DATABASE_URL the users live in SQLite at /data/tether.db: mount a
# volume on /data to keep them. compose.yaml runs it with PostgreSQL and Redis.

FROM rust:1-bookworm AS builder
# pq-sys builds a bundled libpq that links OpenSSL, found via pkg-config.
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the crate registry and compiled dependencies between builds;
# the binary is copied out because the target cache is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin tether \
    && install -m 0755 target/release/tether /usr/local/bin/tether

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin tether \
    && mkdir -p /data \
    && chown tether:tether /data
# The browser app (web/) is built into the binary: nothing else to copy.
COPY --from=builder /usr/local/bin/tether /usr/local/bin/tether
# Listen on all interfaces inside the container. The cookie follows
# TETHER_PUBLIC_URL, not this: set it to the https:// URL users reach.
ENV TETHER_BIND=0.0.0.0:8080 \
    RUST_LOG=info
USER tether
# The relative default sqlite://tether.db lands here.
WORKDIR /data
EXPOSE 8080
# Liveness without curl: bash's /dev/tcp sends a bare HTTP request to /healthz
# on the port of TETHER_BIND. (/readyz, which also checks the stores, is the
# readiness gate compose.yaml uses.)
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${TETHER_BIND##*:} && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["tether"]
CMD ["serve"]
