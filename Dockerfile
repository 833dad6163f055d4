# Build the manager binary
FROM golang:1.26.8 AS builder
ARG TARGETOS
ARG TARGETARCH

WORKDIR /workspace
# Cache dependencies before copying the source, so a source change does not re-download them.
COPY go.mod go.mod
COPY go.sum go.sum
RUN go mod download

COPY main.go main.go
COPY api/ api/
COPY controllers/ controllers/
COPY internal/ internal/
COPY cmd/ cmd/

# CGO off gives static binaries for the distroless base. probe-redirect is the analyze CLI
# (`docker run --entrypoint /probe-redirect IMAGE analyze -f - < manifests.yaml`).
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w" -o probe-redirect ./cmd/probe-redirect
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w" -o manager .

# A minimal, non-root base image: https://github.com/GoogleContainerTools/distroless
FROM gcr.io/distroless/static-debian12:nonroot
WORKDIR /
COPY --from=builder /workspace/manager .
COPY --from=builder /workspace/probe-redirect .
USER 65532:65532

ENTRYPOINT ["/manager"]
