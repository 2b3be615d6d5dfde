# probe: the two commands are `make demo` and `make test`.

GO          ?= go
BIN         := bin
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.6
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.3.0

.PHONY: all build probe plugins demo test deps lint unit test-tailscale fuzz bench bench-dns bench-plugins clean proto proto-python uplot

all: build

## build: probe and the plugin binaries of this repository that are not built in, side by side in bin/,
## where probe finds them (next to its own binary): every file in examples/ then validates.
build: probe plugins

## probe: bin/probe alone, in seconds. -buildvcs=auto records the commit for `probe version` even where
## GOFLAGS turns it off.
probe:
	$(GO) build -buildvcs=auto -o $(BIN)/probe ./cmd/probe

## plugins: bin/probe-plugin-tailscale, from plugins/tailscale, a module of its own. The first build
## compiles tailscale.com: minutes on a cold Go cache, seconds once the cache has it.
plugins:
	cd plugins/tailscale && $(GO) build -o $(abspath $(BIN))/probe-plugin-tailscale ./cmd/probe-plugin-tailscale

## demo: run examples/lab.hcl against the embedded loopback lab. It needs probe alone, not the
## tailscale plugin, so that a fresh machine's first `make demo` does not wait for tailscale.com.
demo: probe
	./$(BIN)/probe demo

## deps: install the Debian packages (.ci/deps) and Go modules the tests need.
deps:
	./.ci/deps
	$(GO) mod download

## lint: gofmt, go vet and staticcheck.
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "not gofmt-formatted: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## unit: the test suite with the race detector, one package at a time: the timing tests
## measure real delays, and two test binaries racing on two cores would disturb them.
unit:
	$(GO) test -race -count=1 -p 1 ./...

## fuzz: run each fuzzer (docs/reliability.md): the pipeline loader and its scan before parsing, dns-miekg's handling of replies, icmp's, the
## socket-handoff channel, the attributes' wire codec, the ssh handshake's reading of a server's version and KEXINIT,
## starttls's dialogues with a server. A failing input is saved under the package's testdata/fuzz. The budget is a count of
## inputs, about 10 s of each here, not a duration: Go 1.26's fuzzing coordinator can fail a run bounded by time
## with "context deadline exceeded" as the time runs out (go.dev/issue/75804). FUZZTIME=10m sets a duration for
## every fuzzer, for a longer run by hand.
FUZZ_LOAD    ?= 60000x
FUZZ_SCAN    ?= 60000x
FUZZ_REPLY   ?= 40000x
FUZZ_CHANNEL ?= 2500x
FUZZ_ATTRS   ?= 200000x
FUZZ_SSH     ?= 70000x
FUZZ_STARTTLS ?= 90000x

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_LOAD)) ./core/config
	$(GO) test -run '^$$' -fuzz '^FuzzScanSource$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_SCAN)) ./core/config
	$(GO) test -run '^$$' -fuzz '^FuzzReply$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_REPLY)) ./plugins/dns-miekg
	$(GO) test -run '^$$' -fuzz '^FuzzMatch$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_REPLY)) ./plugins/icmp
	$(GO) test -run '^$$' -fuzz '^FuzzChannel$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_CHANNEL)) ./core/fdpass
	$(GO) test -run '^$$' -fuzz '^FuzzAttrs$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_ATTRS)) ./core/proto/probev1
	$(GO) test -run '^$$' -fuzz '^FuzzParseStream$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_SSH)) ./plugins/ssh
	$(GO) test -run '^$$' -fuzz '^FuzzDialogue$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_STARTTLS)) ./plugins/starttls

## test-tailscale: vet, staticcheck and test plugins/tailscale, a module of its own that ./... does not
## reach. Its tests run a tailnet in a network namespace (unshare, from util-linux). Without -race: that
## would compile tailscale.com a second time, with instrumentation.
test-tailscale:
	cd plugins/tailscale && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./... && $(GO) test -count=1 -timeout 20m ./...

## test: install what is missing, build everything, lint, and run the tests and the fuzzers.
test: deps build lint test-tailscale unit fuzz

## bench: every benchmark figure (DESIGN §9), one "name value" line each: bench-dns's, then
## internal/bench's: accuracy across the delay link beside blackbox_exporter and curl, idle and with
## stress-ng saturating both cores (accuracy.loaded_*), preconnect's first request cold and warm across it
## (preconnect.cold_ms, warm_ms, ratio), throughput against a plain Go loop and blackbox_exporter,
## 100,000 targets, a million from a targets file, probe serve on 10,000 targets every 10s beside blackbox_exporter scraped by
## Prometheus (serve.*), start-up, the whole process (docs/performance.md). About 20 minutes. Needs root and /dev/net/tun.
bench: bench-dns bench-plugins probe
	./.ci/deps bench
	$(GO) build -o $(BIN)/probe-plugin-banner ./examples/plugins/banner
	$(GO) build -o $(BIN)/bench ./internal/bench
	@./$(BIN)/bench -probe $(BIN)/probe -banner $(BIN)/probe-plugin-banner

## bench-dns: resolves per second through dns-miekg against the lab DNS server, as a ratio to a plain
## miekg/dns loop doing the same queries (alternating 100 ms slices for 10 s), and dnsperf's queries per
## second on the same server.
bench-dns:
	./.ci/deps bench
	@mkdir -p $(BIN)
	$(GO) test -run '^$$' -bench '^Benchmark(ResolveVsMiekg|Dnsperf)$$' -benchtime 1x ./plugins/dns-miekg > $(BIN)/bench-dns.txt
	@awk '{ for (i = 2; i < NF; i++) m[$$(i + 1)] = $$i } END { \
	  printf "dns.resolve_vs_miekg %.2f\ndns.resolve_per_s %.0f\ndns.miekg_per_s %.0f\ndns.dnsperf_qps %.0f\n", \
	  m["ratio"], m["probe/s"], m["miekg/s"], m["qps"] }' $(BIN)/bench-dns.txt

## bench-plugins: the cost of one attempt (resolve, connect and tls against the lab) with the built-ins
## out of process, as a ratio to in process: BenchmarkAttempt's rounds of both, side by side in one run.
bench-plugins:
	@mkdir -p $(BIN)
	$(GO) test -run '^$$' -bench '^BenchmarkAttempt$$' ./core/pluginhost > $(BIN)/bench-plugins.txt
	@awk '$$1 ~ /^BenchmarkAttempt\/inprocess/ { in_ns += $$3; n++ } \
	  $$1 ~ /^BenchmarkAttempt\/isolated/ { out_ns += $$3; m++ } \
	  END { if (!n || !m) { print "bench-plugins: no results in $(BIN)/bench-plugins.txt" > "/dev/stderr"; exit 1 } \
	  printf "plugins.isolated_vs_inprocess_cost %.2f\n", (out_ns / m) / (in_ns / n) }' $(BIN)/bench-plugins.txt

## proto: regenerate core/proto/probev1 from probe.proto (needs protoc: apt-get install protobuf-compiler).
proto:
	GOBIN=$(CURDIR)/$(BIN) $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(CURDIR)/$(BIN) $(GO) install $(PROTOC_GEN_GO_GRPC)
	cd core/proto/probev1 && PATH=$(CURDIR)/$(BIN):$$PATH protoc -I. \
	  --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative probe.proto

## proto-python: regenerate the Python plugin's probe_pb2.py and probe_pb2_grpc.py from probe.proto, with
## Debian's grpc_tools (python3-grpc-tools); TestPythonGeneratedCode checks they are up to date.
proto-python:
	cd core/proto/probev1 && /usr/bin/python3 -m grpc_tools.protoc -I. \
	  --python_out=../../../examples/plugins/python-echo --grpc_python_out=../../../examples/plugins/python-echo probe.proto

## uplot: refresh the status page's charting library (core/status/assets/uplot) from the npm registry:
## UPLOT_VERSION's package, its licence, and the version and the tarball's sha256 in VERSION.
UPLOT_VERSION ?= 1.6.32
uplot:
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  curl -fsSL -o "$$tmp/uplot.tgz" https://registry.npmjs.org/uplot/-/uplot-$(UPLOT_VERSION).tgz && \
	  tar -xzf "$$tmp/uplot.tgz" -C "$$tmp" && \
	  cp "$$tmp/package/dist/uPlot.iife.min.js" "$$tmp/package/dist/uPlot.min.css" "$$tmp/package/LICENSE" core/status/assets/uplot/ && \
	  printf 'uplot %s from https://registry.npmjs.org/uplot/-/uplot-%s.tgz\nsha256 %s\n' \
	    $(UPLOT_VERSION) $(UPLOT_VERSION) "$$(sha256sum "$$tmp/uplot.tgz" | cut -d" " -f1)" > core/status/assets/uplot/VERSION

clean:
	rm -rf $(BIN)
