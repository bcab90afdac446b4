#!/usr/bin/env bash
# Installs the Debian packages the tests and the lab need. Idempotent: does
# nothing (not even apt-get update) when everything is already installed.
# Needs root on Debian 12.
set -euo pipefail

PACKAGES=(
  nftables          # the agent's firewall; integration tests run real nft
  conntrack         # the agent cuts open flows a new policy no longer allows
  frr               # zebra + bgpd in lab ToR and host namespaces
  frr-pythontools   # frr-reload.py, used by the agent's routing apply
  iproute2          # ip netns / link / route in the lab
  iputils-ping      # ICMP probes
  python3           # the sd_notify stand-in of the tests (test/lab/notify-listener.py)
  procps            # pgrep / pkill for lab teardown checks
  libsystemd-dev    # sd-notify's native addon builds against it
  debootstrap       # packaging/build-image: the agent's Debian trixie image
  systemd-container # systemd-nspawn: the image booted in a lab host (test/e2e/container.ts)
  systemd           # systemd-analyze verify of the controller unit
  util-linux        # nsenter (into the booted container), setpriv
  prometheus        # promtool check metrics on the controller's and the agent's /metrics
  bird2             # Calico's BIRD beside FRR on the lab's CaaS host (test/e2e/caas.ts)
  etcd-server       # controller replicas: 3-member clusters on loopback (tests, npm run lab -- --store etcd)
  chromium          # the dashboard page, tested in headless Chromium (puppeteer-core drives it)
  git               # the generated-code check diffs proto/gen
  openssl           # install-agent --ca-fingerprint fetches the CA; the X.509 tests check ours against it
  ca-certificates
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (the tests create network namespaces and run FRR)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# FRR's package may start its own daemons in the root namespace; the lab runs
# its own per namespace and does not need them.
if command -v systemctl >/dev/null && systemctl is-active --quiet frr 2>/dev/null; then
  systemctl stop frr || true
fi
# Likewise etcd-server's own member on :2379: the tests start their clusters on free ports.
if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd || true
fi
echo "install-deps: all of ${#PACKAGES[@]} packages present"
