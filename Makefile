# Wayline's build and test entry points.
#
#   make test    vet, then every test with the race detector, the storage
#                tests also against a throwaway MariaDB (what CI runs)
#   make build   the wayline binary in ./wayline
#   make fuzz    each fuzz target for FUZZTIME (default 30s)
#   make bench   the overlay benchmark against NATS

GO       ?= go
FUZZTIME ?= 30s

.PHONY: test vet build fuzz bench xmllint chromium

# The XML report tests also check every report against the XSD with
# xmllint (libxml2), installed here when missing and root.
xmllint:
	@command -v xmllint >/dev/null || { \
	  [ "$$(id -u)" = 0 ] || { echo "xmllint is missing: apt-get install libxml2-utils" >&2; exit 1; }; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q libxml2-utils >&2 || \
	  { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libxml2-utils >&2; }; }

# The end-to-end tests of the pages drive a headless Chromium, Debian's
# chromium installed here when no browser is found and root.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null || { \
	  [ "$$(id -u)" = 0 ] || { echo "chromium is missing: apt-get install chromium" >&2; exit 1; }; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2 || \
	  { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2; }; }

# The storage tests also run against a private MariaDB server that
# scripts/mariadb.sh starts (installing mariadb-server when missing and
# root) and always stops afterwards; the tests' exit status is kept.
test: vet xmllint chromium
	@out=$$(./scripts/mariadb.sh start) || exit 1; \
	trap './scripts/mariadb.sh stop' EXIT; trap 'exit 130' INT TERM; \
	WAYLINE_TEST_MYSQL=$${out#WAYLINE_TEST_MYSQL=}; export WAYLINE_TEST_MYSQL; \
	WAYLINE_REQUIRE_MYSQL=1; export WAYLINE_REQUIRE_MYSQL; \
	WAYLINE_REQUIRE_XMLLINT=1; export WAYLINE_REQUIRE_XMLLINT; \
	WAYLINE_REQUIRE_CHROMIUM=1; export WAYLINE_REQUIRE_CHROMIUM; \
	echo "storage tests against $$WAYLINE_TEST_MYSQL"; \
	$(GO) test -race -count=1 -timeout 15m ./...

vet:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "not gofmt'ed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

build:
	$(GO) build -o wayline ./cmd/wayline

fuzz:
	$(GO) test -run=XXX -fuzz=FuzzFrame -fuzztime=$(FUZZTIME) ./overlay/
	$(GO) test -run=XXX -fuzz=FuzzControlRecords -fuzztime=$(FUZZTIME) ./broker/
	$(GO) test -run=XXX -fuzz=FuzzLeafLine -fuzztime=$(FUZZTIME) ./broker/
	$(GO) test -run=XXX -fuzz=FuzzStreamDecode -fuzztime=$(FUZZTIME) ./transports/
	$(GO) test -run=XXX -fuzz=FuzzUDPDatagram -fuzztime=$(FUZZTIME) ./transports/
	$(GO) test -run=XXX -fuzz=FuzzEmulatedHeader -fuzztime=$(FUZZTIME) ./transports/
	$(GO) test -run=XXX -fuzz=FuzzQUICPacketHeader -fuzztime=$(FUZZTIME) ./transports/
	$(GO) test -run=XXX -fuzz=FuzzDecodePacket -fuzztime=$(FUZZTIME) ./monitor/
	$(GO) test -run=XXX -fuzz=FuzzParseAddress -fuzztime=$(FUZZTIME) ./router/
	$(GO) test -run=XXX -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./topology/
	$(GO) test -run=XXX -fuzz=FuzzDecodeReport -fuzztime=$(FUZZTIME) ./schema/
	$(GO) test -run=XXX -fuzz=FuzzDecodeState -fuzztime=$(FUZZTIME) ./schema/
	$(GO) test -run=XXX -fuzz=FuzzQuery -fuzztime=$(FUZZTIME) ./aggregator/
	$(GO) test -run=XXX -fuzz=FuzzDecodeDetail -fuzztime=$(FUZZTIME) ./aggregator/store/
	$(GO) test -run=XXX -fuzz=FuzzDecodeBlock -fuzztime=$(FUZZTIME) ./aggregator/store/
	$(GO) test -run=XXX -fuzz=FuzzAccept -fuzztime=$(FUZZTIME) ./linkauth/
	$(GO) test -run=XXX -fuzz=FuzzDial -fuzztime=$(FUZZTIME) ./linkauth/
	$(GO) test -run=XXX -fuzz=FuzzRecords -fuzztime=$(FUZZTIME) ./linkauth/

bench:
	$(GO) run ./cmd/wayline bench overlay --duration 5s
