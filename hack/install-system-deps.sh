#!/usr/bin/env bash
# Install the Debian packages the real node and the image builds need (containerd, runc, CNI plugins,
# iptables, buildah, skopeo, debootstrap, a static libc for the pause binary). A no-op when all are present.
set -euo pipefail

packages=(containerd runc containernetworking-plugins iptables iproute2 buildah skopeo fuse-overlayfs debootstrap libc6-dev gcc)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

fail() { echo "install-system-deps: $*" >&2; exit 1; }
command -v apt-get >/dev/null || fail "apt-get not found: install ${missing[*]} with this system's package manager"
[ "$(id -u)" -eq 0 ] || fail "not root: run 'sudo apt-get install ${missing[*]}' (the real node also needs root)"
echo "install-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || fail "apt-get update failed: are Debian's package mirrors reachable?"
# policy-rc.d keeps the packages' own services (containerd.service) from starting: the cluster runs its own.
policy=/usr/sbin/policy-rc.d
had_policy=0; [ -e "$policy" ] && had_policy=1
[ $had_policy -eq 1 ] || { printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; }
trap '[ $had_policy -eq 1 ] || rm -f "$policy"' EXIT
log="$(mktemp)"
apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1 \
  || fail "apt-get install ${missing[*]} failed: $(tail -n 1 "$log")"
rm -f "$log"
