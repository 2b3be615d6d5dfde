# probe: the two commands are `make demo` and `make test`.

GO          ?= go
BIN         := bin
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.6
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.3.0

.PHONY: all build demo test deps lint unit bench clean proto

all: build

build:
	$(GO) build -o $(BIN)/probe ./cmd/probe

## demo: run examples/lab.hcl against the embedded loopback lab.
demo: build
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

## unit: the test suite with the race detector.
unit:
	$(GO) test -race -count=1 ./...

## test: install what is missing, build everything, lint, and run the tests.
test: deps build lint unit

## proto: regenerate core/proto/probev1 from probe.proto (needs protoc: apt-get install protobuf-compiler).
proto:
	GOBIN=$(CURDIR)/$(BIN) $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(CURDIR)/$(BIN) $(GO) install $(PROTOC_GEN_GO_GRPC)
	cd core/proto/probev1 && PATH=$(CURDIR)/$(BIN):$$PATH protoc -I. \
	  --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative probe.proto

clean:
	rm -rf $(BIN)
