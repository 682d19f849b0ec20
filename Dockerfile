# weir with the example plugins, built from source.
FROM rust:1.95-bookworm AS build
RUN rustup target add wasm32-wasip1 wasm32-wasip2
WORKDIR /src
COPY . .
RUN bash plugins/build.sh && cargo build --release --bin weir

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/weir /usr/local/bin/weir
COPY --from=build /src/plugins/dist /app/plugins/dist
COPY pipelines /app/pipelines
WORKDIR /app
# Compiled plugins are cached here; mount a volume to keep them across restarts.
ENV WEIR_CACHE_DIR=/var/cache/weir
ENTRYPOINT ["weir"]
CMD ["run", "pipelines/orders-kafka.toml"]
