# syntax=docker/dockerfile:1
#
# The wayline binary in a small image. One image serves every role:
#
#   docker run IMAGE broker --topology /etc/wayline/topology.yaml --address na.cgl.c1.a
#   docker run IMAGE aggregator --domain '*' --broker nats://HOST:4301 --db 'mysql://…' --http 0.0.0.0:8080
#
# docker-compose.yml at the repository root runs a whole network with it.

# Build: a static binary (CGO off; the SQLite driver is pure Go).
FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so that a change to the code does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /wayline ./cmd/wayline

# Run: no shell, no package manager, user 65532 (nonroot); CA certificates
# and time zone data are included.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /wayline /wayline
# The aggregator's default store (sqlite:wayline.db) is written in the
# working directory; give it a volume here, or use --db mysql://… instead.
WORKDIR /home/nonroot
# The ports (NATS clients, HTTP, overlay links) all come from the topology
# file or the command line, so none is exposed here.
USER nonroot:nonroot
ENTRYPOINT ["/wayline"]
CMD ["--help"]
