# The omnigate gateway: a release build on Debian, then a slim runtime.
#   docker build -t omnigate .
#   docker run -p 50051:50051 omnigate                   # embedded engines
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin omnigate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/omnigate /usr/local/bin/omnigate
COPY examples /etc/omnigate/examples
EXPOSE 50051
ENTRYPOINT ["omnigate", "serve", "--listen", "0.0.0.0:50051"]
