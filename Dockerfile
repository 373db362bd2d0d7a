# concierge: multi-stage build. The runtime image holds the binary, the shipped intents and the
# demo's routing file (mount your own over /etc/concierge) and nothing else; it runs as a non-root user with its data on a volume.
#
#   docker build -t concierge .
#   docker run -p 8080:8080 -v concierge-data:/var/lib/concierge/data concierge

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY fixtures fixtures
RUN cargo build --release --locked --bin concierge

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/concierge concierge \
    && mkdir -p /var/lib/concierge/data \
    && chown -R concierge:concierge /var/lib/concierge
COPY --from=build /src/target/release/concierge /usr/local/bin/concierge
COPY intents /etc/concierge/intents
COPY fixtures/routing.toml /etc/concierge/routing.toml
ENV CONCIERGE_BIND=0.0.0.0:8080 \
    CONCIERGE_DATA_DIR=/var/lib/concierge/data \
    CONCIERGE_INTENTS_DIR=/etc/concierge/intents \
    CONCIERGE_ROUTING_FILE=/etc/concierge/routing.toml
VOLUME ["/var/lib/concierge/data"]
USER concierge
WORKDIR /var/lib/concierge
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["concierge", "healthcheck"]
ENTRYPOINT ["concierge"]
CMD ["serve"]
