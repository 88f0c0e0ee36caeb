# syntax=docker/dockerfile:1
# apigw-operator image: build with the same cargo command the tests use (release profile), run on distroless.
#   docker build -t <registry>/apigw-operator:<version> .

FROM rust:1-bookworm AS builder
WORKDIR /src
# The workspace manifest names xtask/ and testkit/ as members, so they are copied too (neither is built).
COPY Cargo.toml Cargo.lock ./
COPY .cargo ./.cargo
COPY src ./src
COPY testkit ./testkit
COPY xtask ./xtask
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    cargo build --release --locked --bin apigw-operator \
 && cp target/release/apigw-operator /apigw-operator

# glibc, libgcc and CA certificates, no shell, no package manager; runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /apigw-operator /apigw-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/apigw-operator"]
CMD ["run"]
