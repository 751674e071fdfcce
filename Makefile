# The softswitch's build, test and benchmark entry points.
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
PKGS := ./...

.PHONY: run build test test-long deps lint unit systest pkgtest failover imagetest deb image fuzz bench clean

## run: start the softswitch on embedded defaults (SIP on UDP+TCP 5060, data in ./data)
run:
	$(GO) run ./cmd/softswitch

## build: the daemon binary in bin/
build:
	$(GO) build -o bin/softswitch ./cmd/softswitch

## test: install what the tests need, then lint, unit tests, system tests, package, failover and image tests
## (every test must run: one that cannot, for want of root, fails instead of skipping)
test: export SOFTSWITCH_TEST_STRICT = 1
test: deps lint unit systest pkgtest failover imagetest

deps:
	bash .ci/deps.sh

lint:
	@dirs=$$($(GO) list -f '{{.Dir}}' $(PKGS)); test -z "$$(gofmt -l $$dirs)" || { gofmt -l $$dirs; echo "gofmt: files above need formatting"; exit 1; }
	@ignored=$$(git ls-files -ci --exclude-standard 2>/dev/null); test -z "$$ignored" || { echo "tracked files that .gitignore ignores: $$ignored"; exit 1; }
	$(GO) vet $(PKGS)
	$(GOBIN)/staticcheck $(PKGS)
	$(GO) vet -tags failpoints ./core/failpoint/ ./billing/
	$(GOBIN)/staticcheck -tags failpoints ./core/failpoint/

## unit: the unit tests, with the race detector
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v -e /appliance/systest -e /appliance/pkgtest -e /appliance/failover -e /appliance/imagetest)

## systest: the real daemon, built with the race detector, driven by sipp and SIPVicious
systest:
	$(GO) test -count=1 -timeout 20m ./appliance/systest/

## pkgtest: the Debian package installed, upgraded, removed and purged in a throwaway root (root)
pkgtest:
	$(GO) test -count=1 -timeout 10m ./appliance/pkgtest/

## failover: keepalived pair in network namespaces, node A failed three ways (root)
failover:
	$(GO) test -count=1 -timeout 10m -v ./appliance/failover/

## imagetest: the appliance image built (packer/image.sh), checked for secrets, booted under qemu TCG, admin login over SSH, a pair of VMs failed over (root)
imagetest:
	$(GO) test -count=1 -timeout 25m -v ./appliance/imagetest/

## test-long: the image pair failed over three ways (VM killed, keepalived stopped, keepalived killed), and 20 failovers under calls; not part of test (root, about 15 min)
test-long: deps
	SOFTSWITCH_TEST_LONG=1 $(GO) test -count=1 -timeout 40m -v -run 'TestImagePair' ./appliance/imagetest/
	SOFTSWITCH_TEST_LONG=1 $(GO) test -count=1 -timeout 20m -v -run 'TestFailoverSoak' ./appliance/failover/

## deb: the Debian package in dist/
deb:
	bash appliance/deb/build.sh dist

## image: the appliance image from nothing (package, base disk, packer build) in dist/image/ (root)
image:
	bash packer/image.sh dist

## fuzz: run every fuzz target for FUZZTIME each (default 60s)
FUZZTIME ?= 60s
fuzz:
	bash appliance/fuzz.sh $(FUZZTIME)

## bench: softswitch vs Kamailio under the same sipp load (not part of test)
bench:
	bash appliance/bench/run.sh --plot docs/overload.png $(if $(OUT),--out $(OUT))

clean:
	rm -rf bin data dist
