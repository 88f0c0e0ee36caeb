# syntax=docker/dockerfile:1
# apigw-operator image: build with the same cargo command the tests use (release profile), run on distroless.
#   docker build -t <registry>/apigw-operator:<version> .
#
# Two ways to put the binary in, one runtime (the `runtime` stage: base image, user, port, entrypoint):
#   the last stage (the default) compiles it in the `compile` stage, inside rust:1-bookworm. This is what
#             users with a registry build, with the command above.
#   --target from-prebuilt takes a binary made outside the image by that same command,
#             `cargo build --release --locked --bin apigw-operator`, on a Debian 12 (bookworm) machine like
#             rust:1-bookworm, so that it links against the glibc the runtime has. The build context is
#             then a directory holding only that binary, named apigw-operator:
#               docker build --target from-prebuilt -f Dockerfile <dir holding apigw-operator>
# The tests (`cargo xtask image`, xtask/src/image.rs) use `--target from-prebuilt` with
# `podman build --pull=never`: this machine has no registry, so no rust:1-bookworm, and compiling the
# release binary a second time inside a container on two cores would cost many minutes for the same
# bytes. gcr.io/distroless/cc-debian12:nonroot is there a local stand-in made from the same Debian
# packages. Docker and podman build only the stages the chosen target needs, so `from-prebuilt` never
# needs rust:1-bookworm and the default never needs a prebuilt binary.

FROM rust:1-bookworm AS compile
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
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/apigw-operator"]
CMD ["run"]

FROM runtime AS from-prebuilt
COPY apigw-operator /apigw-operator

FROM runtime
COPY --from=compile /apigw-operator /apigw-operator
