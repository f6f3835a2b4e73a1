# syntax=docker/dockerfile:1
# Multi-stage build: compile with the Rust toolchain (cmake builds librdkafka from source),
# ship only the binary on a slim Debian as a non-root user.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY config ./config
COPY migrations ./migrations
COPY schemas ./schemas
COPY README.md ./
RUN cargo build --release --locked --bin user-otp

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin user-otp
COPY --from=build /src/target/release/user-otp /usr/local/bin/user-otp
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/user-otp"]
CMD ["all"]
