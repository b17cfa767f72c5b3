# tracecar sidecar image: a static binary on a distroless, non-root base.
#   docker build -t tracecar/sidecar .
#   docker run -e TRACECAR_UPSTREAM=http://app:8080 -p 15006:15006 tracecar/sidecar
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# grpcnotrace: see BUILDTAGS in the Makefile.
RUN CGO_ENABLED=0 go build -trimpath -tags grpcnotrace -ldflags "-s -w -X main.version=${VERSION}" -o /out/sidecar ./cmd/sidecar

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sidecar /sidecar
USER 65532:65532
# 15006: inbound (HTTP/1.1, h2c, gRPC). 15000: admin (/healthz /readyz
# /metrics); it binds 127.0.0.1 by default, so set TRACECAR_ADMIN_ADDR=:15000
# for kubelet probes from outside the pod network namespace. 15001: egress
# (the app's HTTP_PROXY) stays on the pod's loopback and is not exposed.
EXPOSE 15006 15000
ENTRYPOINT ["/sidecar"]
