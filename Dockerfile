# The omnigate gateway: a release build on Debian, then a slim runtime.
#   docker build -t omnigate .
#   docker run -p 50051:50051 -v $PWD/tokens.toml:/etc/omnigate/tokens.toml:ro \
#     -e OMNIGATE__SECURITY__TOKENS_FILE=/etc/omnigate/tokens.toml omnigate   # embedded engines, callers need a token
#   docker run -p 127.0.0.1:50051:50051 -e OMNIGATE__SECURITY__ALLOW_ANONYMOUS=true omnigate
#     # local use only: no principals, every caller may do everything
# It listens on 0.0.0.0, so without principals it refuses to start unless
# allow_anonymous is set: the choice is the operator's, made explicit.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin omnigate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/omnigate /usr/local/bin/omnigate
# jemalloc gives freed pages back after a second (as .cargo/config.toml
# builds it in; set again here in case the build ran elsewhere).
ENV MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0
COPY examples /etc/omnigate/examples
EXPOSE 50051
ENTRYPOINT ["omnigate", "serve", "--listen", "0.0.0.0:50051"]
