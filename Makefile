# Stopline: `make run` starts everything with simulated traffic; `make test` runs the whole suite.
# All state goes under .local/ (git-ignored).

PYTHON ?= python3.11
VENV := .local/venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STACK := $(PY) -m deploy.local.stack
# The console's browser tests drive Debian's Chromium (Playwright never downloads a browser here); a
# CJK font so pages and screenshots show Mandarin.
BROWSER_PACKAGES := chromium fonts-wqy-microhei
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all setup run test test-unit lint mypy bench chaos stack-up stack-down clean train browser deploy-tools

all: test

$(STAMP): pyproject.toml constraints.txt
	@mkdir -p .local
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

setup: $(STAMP)

stack-up: setup
	$(STACK) up

stack-down: setup
	$(STACK) down

run: setup
	$(PY) -m deploy.local.run

# The deployment files' validators that are not Python packages (tests/deploy), into .local/tools/bin
# once. helm is built from the Go module proxy (~2 min on 2 cores; its module and build caches removed
# after) into the user's cache, where the next clone on the machine finds it, as pip and Maven find
# their packages. promtool is taken out of Debian's prometheus package (seconds). Only the binary is
# taken: installing the package would add a system user and have its postinst start a Prometheus
# daemon on :9090 wherever no policy-rc.d forbids it.
# Its go.mod asks for Go 1.26.0, which docs/operations.md names as needed: change both together.
HELM_VERSION := v3.22.0
TOOLS := .local/tools/bin
HELM_BUILT := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/stopline/helm-$(HELM_VERSION)
GO_BUILD := GOPATH=$(CURDIR)/.local/go GOCACHE=$(CURDIR)/.local/go/cache GOFLAGS='-modcacherw -buildvcs=false' \
	GOTOOLCHAIN=local go install -trimpath
# As root, apt would fetch as its sandbox user, who cannot write under .local.
APT_DOWNLOAD := apt-get download -q $(if $(SUDO),,-o APT::Sandbox::User=root)

$(TOOLS)/.helm-$(HELM_VERSION):
	@mkdir -p $(TOOLS)
	@test -x $(HELM_BUILT)/helm || { echo "building helm $(HELM_VERSION) (once; ~2 min)" && \
	  GOBIN=$(HELM_BUILT) $(GO_BUILD) -ldflags '-s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION)' \
	    helm.sh/helm/v3/cmd/helm@$(HELM_VERSION); }
	cp $(HELM_BUILT)/helm $(TOOLS)/helm
	@rm -f $(TOOLS)/.helm-* && touch $@

$(TOOLS)/.promtool-debian:
	@rm -rf .local/tools/deb && mkdir -p $(TOOLS) .local/tools/deb
	@echo "taking promtool out of Debian's prometheus package (once)"
	cd .local/tools/deb && { $(APT_DOWNLOAD) prometheus || { $(SUDO) apt-get update -qq && $(APT_DOWNLOAD) prometheus; }; }
	dpkg-deb --fsys-tarfile .local/tools/deb/prometheus_*.deb | tar -xO ./usr/bin/promtool > $(TOOLS)/promtool.part
	chmod 755 $(TOOLS)/promtool.part && mv $(TOOLS)/promtool.part $(TOOLS)/promtool
	@rm -rf .local/tools/deb $(TOOLS)/.promtool-* && touch $@

deploy-tools: $(TOOLS)/.helm-$(HELM_VERSION) $(TOOLS)/.promtool-debian
	@rm -rf .local/go

browser:
	@dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1 || { \
	  echo "installing $(BROWSER_PACKAGES) from Debian for the browser tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(BROWSER_PACKAGES); }

# The slowest tests are listed at the end of every run, to keep the suite under 15 minutes. It runs in
# two worker processes (pytest-xdist), each a session with its own database and topic prefix
# (tests/conftest.py), as the tests mostly wait on Kafka and PostgreSQL; a file's tests go to one worker,
# in their order, as in one process. Then, once those passed, the tests marked `alone` by themselves: the
# fault suite, the fuzz and the console's story keep both cores busy (beside them the others' Kafka
# heartbeats and clients' timeouts would not hold), the Kafka starts bounded at 2 s do not hold beside
# another worker, and a test that freezes Kafka freezes it for both workers. Exit 5 (no test selected) is
# an error only when neither part selected any. PYTEST_WORKERS=0 runs the first part in one process.
PYTEST_WORKERS ?= 2
XDIST = -n $(PYTEST_WORKERS) --dist loadfile
PYTEST_ARGS ?= --durations=25

# Lint and type checks first, then every test on Kafka and PostgreSQL: starts them if they are not
# running, and stops them again unless they were already running before (a `make run` elsewhere).
test: lint mypy browser deploy-tools
	@if $(STACK) status >/dev/null 2>&1; then was_up=1; else was_up=0; fi; \
	$(STACK) up || exit $$?; \
	$(PY) -m pytest $(XDIST) -m "not alone" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc = 0 ] || [ $$rc = 5 ]; then first=$$rc; $(PY) -m pytest -m alone $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc = 5 ] && [ $$first = 0 ]; then rc=0; fi; fi; \
	if [ $$was_up = 0 ]; then $(STACK) down; fi; \
	exit $$rc

test-unit: setup
	$(PY) -m pytest $(XDIST) -m "not integration" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

mypy: setup
	$(VENV)/bin/mypy services streams models deploy tests

train: setup
	$(PY) -m models.training

bench: setup
	$(PY) -m deploy.bench

# The fault suite (root: network namespaces): its own stack of three Kafka nodes, PostgreSQL and two of
# every service; 1,000 faults (about 45 minutes on two cores), then the checks; the report in
# .local/chaos-report.json (docs/chaos.md).
chaos: setup
	$(PY) -m deploy.chaos $(CHAOS_ARGS)

stack-clean: setup
	$(STACK) down
	rm -rf .local/kafka .local/pg

clean:
	rm -rf .local
