# Entry points: `make demo` runs the main job on the built-in lab, `make test` runs every test.
# Both install what they need (Debian packages, a venv under the repo from requirements-dev.txt).
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
BUILD := $(CURDIR)/.build
COLLECTION_TREE := $(BUILD)/tree/ansible_collections/kubeports/firewall
INSTALLED := $(BUILD)/collections
DEV := $(BUILD)/dev
LAB := $(CURDIR)/tests/integration/lab/kplab
LAB_SPECS := $(CURDIR)/tests/integration/lab/specs
DEMO_INVENTORY := $(CURDIR)/examples/lab-demo
SANITY_VENV := $(BUILD)/sanity-venv
PYTHON_VERSION := 3.11
APT_PACKAGES := python3 python3-venv git tar iproute2 openssh-server openssh-client dbus \
	firewalld python3-firewall python3-yaml ufw iptables nftables ipset socat procps iputils-ping chromium \
	etcd-server etcd-client bird2 conntrack

.PHONY: all deps apt venv dev install tree unit sanity sanity-venv lint ee-check docsite docs docs-check examples integration molecule leftovers test demo bench benchmark benchmark-lab clean

all: test

deps: apt venv

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  for svc in firewalld ufw ssh dbus etcd bird; do systemctl disable --now $$svc >/dev/null 2>&1 || true; done; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

# The collection as ansible-test wants it: a copy of the tracked files under ansible_collections/.
tree: venv
	rm -rf $(BUILD)/tree && mkdir -p $(COLLECTION_TREE)
	git ls-files -z --cached --others --exclude-standard \
	  | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C $(COLLECTION_TREE)
	cd $(COLLECTION_TREE) && git init -q && git add -A

# Build the artifact and install it; playbooks run against the installed copy.
install: tree
	rm -rf $(BUILD)/dist $(INSTALLED) && mkdir -p $(BUILD)/dist
	cd $(COLLECTION_TREE) && ansible-galaxy collection build --force --output-path $(BUILD)/dist >/dev/null
	ansible-galaxy collection install --force -p $(INSTALLED) $(BUILD)/dist/kubeports-firewall-*.tar.gz >/dev/null
	@echo "installed kubeports.firewall into $(INSTALLED)"

# The checkout importable as ansible_collections.kubeports.firewall, for unit tests and docs.
dev:
	mkdir -p $(DEV)/ansible_collections/kubeports
	ln -sfn $(CURDIR) $(DEV)/ansible_collections/kubeports/firewall

unit: venv dev install
	PYTHONPATH=$(DEV) KUBEPORTS_COLLECTIONS_PATH=$(INSTALLED) $(BIN)/python -m pytest -q tests/unit

docs: venv dev
	PYTHONPATH=$(DEV) $(BIN)/python docs/generate.py docs

docs-check: venv dev
	PYTHONPATH=$(DEV) $(BIN)/python docs/generate.py --check docs

# The plan of every example inventory, committed beside it (tests/unit/test_examples.py compares).
examples: install
	for dir in $$(find examples -type d -name plan | sort); do \
	  example=$$(dirname $$dir); \
	  inventory=$$(ls $$example/inventory.ini $$example/inventory.yml $$example/hosts.yml 2>/dev/null | head -n 1); \
	  ANSIBLE_COLLECTIONS_PATH=$(INSTALLED) $(BIN)/ansible-playbook kubeports.firewall.plan -i $$inventory \
	    -e kubeports_report_dir=$(CURDIR)/$$dir >/dev/null || exit 1; \
	  sed -i 's#$(CURDIR)/##g' $$dir/plan.html; \
	done

# ansible-test gets a venv of its own (its sanity requirements are pinned by ansible-core).
sanity-venv: $(SANITY_VENV)/.installed

$(SANITY_VENV)/.installed: requirements-dev.txt
	python3 -m venv $(SANITY_VENV)
	$(SANITY_VENV)/bin/pip install -q "$$(grep '^ansible-core==' requirements-dev.txt)"
	touch $@

sanity: tree sanity-venv
	pip_version=$$($(SANITY_VENV)/bin/python -c "from types import SimpleNamespace; \
	  from ansible_test._internal.python_requirements import get_venv_packages; \
	  print(get_venv_packages(SimpleNamespace(version='$(PYTHON_VERSION)'))['pip'])") && \
	mkdir -p $(HOME)/.ansible/test/cache && \
	cp tools/ansible_test_get_pip.py $(HOME)/.ansible/test/cache/get_pip_$${pip_version//./_}.py
	cd $(COLLECTION_TREE) && PATH=$(SANITY_VENV)/bin:$$PATH \
	  ansible-test sanity --local --requirements --python $(PYTHON_VERSION) 2>&1 \
	  | grep -v -e '^WARNING: Location' -e '^Requirement already satisfied' ; exit $${PIPESTATUS[0]}

lint: venv install
	ANSIBLE_COLLECTIONS_PATH=$(INSTALLED) ansible-lint --offline -q

# The collection's docsite (antsibull-docs and Sphinx): extra docs and plugin docs linted, then
# built. Offline, links into the Ansible docs (intersphinx) cannot be resolved; any other
# warning fails.
docsite: tree venv install
	PATH=$(BIN):$$PATH $(BIN)/antsibull-docs lint-collection-docs --plugin-docs $(COLLECTION_TREE)
	rm -rf $(BUILD)/docsite && mkdir -m 700 $(BUILD)/docsite
	ANSIBLE_COLLECTIONS_PATH=$(INSTALLED) PATH=$(BIN):$$PATH $(BIN)/antsibull-docs sphinx-init --use-current \
	  --fail-on-error --dest-dir $(BUILD)/docsite kubeports.firewall >/dev/null
	cd $(BUILD)/docsite && ANSIBLE_COLLECTIONS_PATH=$(INSTALLED) PATH=$(BIN):$$PATH ./build.sh >build.log 2>&1 || true
	test -s $(BUILD)/docsite/build/html/collections/kubeports/firewall/docsite/getting_started.html
	@if grep WARNING $(BUILD)/docsite/build.log | grep -v -e 'failed to reach any of the inventories' \
	  -e "undefined label: '\(common_return_values\|ansible_configuration_settings\|action_plugins\|ansible_collections\.ansible\.builtin\.[a-z_]*\)'"; \
	  then echo "docsite: warnings above"; exit 1; fi

# The execution environment: the example definition builds a context (no container engine
# needed), and ansible-builder finds the requirements the installed collection declares.
ee-check: venv install
	rm -rf $(BUILD)/ee
	$(BIN)/ansible-builder create -f docs/execution-environment.yml --context $(BUILD)/ee --output-filename Containerfile >/dev/null
	test -s $(BUILD)/ee/Containerfile
	$(BIN)/ansible-builder introspect --sanitize $(INSTALLED) | tee $(BUILD)/ee/introspect.txt | grep -q '^- .netaddr'
	grep -q 'python3-firewall' $(BUILD)/ee/introspect.txt

# Every benchmark, results and plots written next to the scripts (never part of make test).
bench: benchmark benchmark-lab

benchmark: venv dev install
	PYTHONPATH=$(DEV) $(BIN)/python benchmarks/planner.py --output benchmarks/planner-results.md \
	  --plot benchmarks/planner.png
	ANSIBLE_COLLECTIONS_PATH=$(INSTALLED) PATH=$(BIN):$$PATH $(BIN)/python benchmarks/fleet.py \
	  --output benchmarks/fleet-results.md --plot benchmarks/fleet.png

# Benchmarks on the lab (each brings its labs up and down).
benchmark-lab: apt venv dev install
	$(BIN)/python benchmarks/apply_firewalld.py --output benchmarks/apply-firewalld-results.md
	$(BIN)/python benchmarks/verify.py --output benchmarks/verify-results.md
	$(BIN)/python benchmarks/apply_scale.py --output benchmarks/apply-scale-results.md \
	  --plot benchmarks/apply-scale.png
	$(BIN)/python benchmarks/safe_apply.py --output benchmarks/safe-apply-results.md
	$(BIN)/python benchmarks/audit.py --output benchmarks/audit-results.md

# Real firewalls in the lab's network namespaces, reached over SSH.
integration: apt venv install
	$(BIN)/pytest -q -p no:cacheprovider tests/integration --ignore=tests/integration/molecule \
	  --ignore=tests/integration/test_lab_cluster.py --ignore=tests/integration/test_cluster_traffic.py \
	  --ignore=tests/integration/test_verify_cluster.py \
	  --ignore=tests/integration/test_port_rules_susefirewall2.py \
	  --ignore=tests/integration/test_verify_role_susefirewall2.py \
	  --ignore=tests/integration/test_audit_susefirewall2.py -k 'not susefirewall2'
	KPLAB_SPEC=$(LAB_SPECS)/all-backends.yml $(BIN)/pytest -q -p no:cacheprovider \
	  tests/integration/test_lab.py tests/integration/test_port_rules_susefirewall2.py \
	  tests/integration/test_verify_role_susefirewall2.py tests/integration/test_audit_susefirewall2.py
	KPLAB_SPEC=$(LAB_SPECS)/cluster.yml $(BIN)/pytest -q -p no:cacheprovider tests/integration/test_lab_cluster.py
	KPLAB_SPEC=$(LAB_SPECS)/cluster-backends.yml $(BIN)/pytest -q -p no:cacheprovider \
	  tests/integration/test_cluster_traffic.py tests/integration/test_verify_cluster.py

molecule: apt venv install
	cd tests/integration && molecule test -s lab

# The main job on the built-in lab: plan, open the ports, run again to show nothing changes.
demo: apt venv install
	@trap '$(LAB) down >/dev/null 2>&1' EXIT; set -e; \
	$(LAB) up $(LAB_SPECS)/demo.yml; \
	echo "== Plan (no host touched)"; \
	ansible-playbook -i $(DEMO_INVENTORY) playbooks/plan.yml -e kubeports_report_dir=$(BUILD)/demo; \
	echo "== Open the ports"; \
	ansible-playbook -i $(DEMO_INVENTORY) playbooks/open-ports.yml; \
	echo "== Run again: nothing changes"; \
	ansible-playbook -i $(DEMO_INVENTORY) playbooks/open-ports.yml | tee $(BUILD)/demo/second-run.log; \
	grep -Eq 'changed=[1-9]' $(BUILD)/demo/second-run.log && { echo "second run changed something"; exit 1; }; \
	echo "== Prove it: every host probes the others, allowed and denied"; \
	ansible-playbook -i $(DEMO_INVENTORY) playbooks/verify.yml -e kubeports_verify_report_dir=$(BUILD)/demo; \
	echo "Demo done; reports in $(BUILD)/demo"

# Nothing the tests started may outlive them (orphaned controllers or workers, rollback timers, lab state).
leftovers:
	tools/leftovers
	$(LAB) leftovers

test: apt venv docs-check unit sanity lint ee-check docsite integration molecule leftovers
	@echo "make test: all suites passed"

clean:
	rm -rf $(BUILD) tests/output
