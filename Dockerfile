# Parley's container image: a static binary on distroless, run as a
# non-root user, with its data on a volume and a root file system that can
# be read-only.
#
# Build (VERSION is what `parley version` prints):
#
#   docker build --build-arg VERSION=v1.0.0 -t parley .
#
# Run (parley.yaml at the repository root is a sample; the certificate and
# key paths must match its tls section):
#
#   docker volume create parley-data
#   docker run -d --name parley --read-only --tmpfs /tmp:rw,noexec,nosuid,size=64m \
#     -v parley-data:/var/lib/parley \
#     -v "$PWD/parley.yaml:/etc/parley/parley.yaml:ro" \
#     -v "$PWD/tls:/etc/parley/tls:ro" \
#     -p 8443:8443 parley
#
# Parley writes only to /var/lib/parley; the small /tmp is for SQLite's
# temporary files (large sorts), which cannot go to a read-only root.
#
# The admin commands run in the same container, against the same volume:
#
#   docker exec parley /parley bot list --config /etc/parley/parley.yaml
#
# cmd/parley/dockerfile_test.go checks this file against go.mod and the
# configuration (CI has no Docker engine to build it).

# ---- build stage: the Go version of go.mod ----
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION="(devel)"
# Static (no cgo), no local paths in the binary, symbols stripped. The
# PKCS#11 variant needs cgo and the vendor's library: build it yourself
# with -tags pkcs11 on an image that has them.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/parley ./cmd/parley \
 && mkdir -p /out/data \
 && chmod 0700 /out/data

# ---- final stage: no shell, no package manager ----
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/parley /parley
# The data directory exists, owned by the runtime user, so that a new
# named volume mounted on it inherits that owner and mode.
COPY --from=build --chown=65532:65532 /out/data /var/lib/parley
# distroless's "nonroot" user, by number (Kubernetes' runAsNonRoot needs
# a numeric user to verify).
USER 65532:65532
VOLUME ["/var/lib/parley"]
EXPOSE 8443
ENTRYPOINT ["/parley"]
CMD ["serve", "--config", "/etc/parley/parley.yaml"]
