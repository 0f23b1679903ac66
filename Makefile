# Entry points: `make demo` runs the main job on the built-in lab, `make test` runs every test.
# Both install what they need (Debian packages, a venv under the repo from requirements.txt).
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
BUILD := $(CURDIR)/.build
COLLECTION_TREE := $(BUILD)/tree/ansible_collections/kubeports/firewall
INSTALLED := $(BUILD)/collections
APT_PACKAGES := python3 python3-venv git tar iproute2 openssh-server openssh-client dbus \
	firewalld python3-firewall ufw iptables nftables ipset socat procps

.PHONY: all deps apt venv install tree unit sanity lint docs docs-check integration molecule test demo clean

all: test

deps: apt venv

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  for svc in firewalld ufw ssh dbus; do systemctl disable --now $$svc >/dev/null 2>&1 || true; done; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

# The collection as ansible-test wants it: a copy of the tracked files under ansible_collections/.
tree: venv
	rm -rf $(BUILD)/tree && mkdir -p $(COLLECTION_TREE)
	git ls-files -z --cached --others --exclude-standard \
	  | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C $(COLLECTION_TREE)

# Build the artifact and install it; playbooks run against the installed copy.
install: tree
	rm -rf $(BUILD)/dist $(INSTALLED) && mkdir -p $(BUILD)/dist
	cd $(COLLECTION_TREE) && ansible-galaxy collection build --force --output-path $(BUILD)/dist >/dev/null
	ansible-galaxy collection install --force -p $(INSTALLED) $(BUILD)/dist/kubeports-firewall-*.tar.gz >/dev/null
	@echo "installed kubeports.firewall into $(INSTALLED)"
