# Wayline's build and test entry points.
#
#   make test    vet, then every test with the race detector (what CI runs)
#   make build   the wayline binary in ./wayline
#   make fuzz    each fuzz target for FUZZTIME (default 30s)
#   make bench   the overlay benchmark against NATS

GO       ?= go
FUZZTIME ?= 30s

.PHONY: test vet build fuzz bench

test: vet
	$(GO) test -race -count=1 -timeout 15m ./...

vet:
	$(GO) vet ./...

build:
	$(GO) build -o wayline ./cmd/wayline

fuzz:
	$(GO) test -run=XXX -fuzz=FuzzFrame -fuzztime=$(FUZZTIME) ./broker/
	$(GO) test -run=XXX -fuzz=FuzzLeafLine -fuzztime=$(FUZZTIME) ./broker/
	$(GO) test -run=XXX -fuzz=FuzzStreamDecode -fuzztime=$(FUZZTIME) ./transports/
	$(GO) test -run=XXX -fuzz=FuzzUDPDatagram -fuzztime=$(FUZZTIME) ./transports/
	$(GO) test -run=XXX -fuzz=FuzzEmulatedHeader -fuzztime=$(FUZZTIME) ./transports/
	$(GO) test -run=XXX -fuzz=FuzzDecodePacket -fuzztime=$(FUZZTIME) ./monitor/
	$(GO) test -run=XXX -fuzz=FuzzParseAddress -fuzztime=$(FUZZTIME) ./router/
	$(GO) test -run=XXX -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./topology/

bench:
	$(GO) run ./cmd/wayline bench overlay --duration 5s
