# cellwarden container image: a static binary on distroless, run as a
# non-root user. docs/operations.md shows how to run it.
#
#   docker build -t cellwarden .
#   docker run -d --name cellwarden -p 9561:9561 \
#     -v /etc/cellwarden:/etc/cellwarden:ro -v cellwarden-state:/var/lib/cellwarden cellwarden

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
# Static (no cgo), reproducible paths, no symbol tables; the version shows
# in cellwarden_build_info.
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags="-s -w -X github.com/prometheus/common/version.Version=${VERSION} -X github.com/prometheus/common/version.Revision=${REVISION}" \
      -o /out/cellwarden ./cmd/cellwarden \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cellwarden /usr/local/bin/cellwarden
# The state directory (detector.snapshot, and the outbox when
# alerting.outbox.path points here) belongs to the runtime user, so a named
# volume created from it is writable.
COPY --from=build --chown=65532:65532 /out/state /var/lib/cellwarden
USER 65532:65532
VOLUME /var/lib/cellwarden
EXPOSE 9561
ENTRYPOINT ["/usr/local/bin/cellwarden", "serve"]
CMD ["--config=/etc/cellwarden/cellwarden.yml", "--state.dir=/var/lib/cellwarden"]
