#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine (run as root).
# Idempotent: installs only what is missing.
set -euo pipefail

need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v make >/dev/null 2>&1 || need+=(make)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base)   # the DNS server of the RFC 3263 tests
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)   # the package test's throwaway root
command -v lintian >/dev/null 2>&1 || need+=(lintian)
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)   # verifies the packaged unit
command -v keepalived >/dev/null 2>&1 || need+=(keepalived)     # the failover test (VRRP in namespaces)
# the appliance disk and its boot test
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v qemu-img >/dev/null 2>&1 || need+=(qemu-utils)
command -v extlinux >/dev/null 2>&1 || need+=(extlinux)
[ -f /usr/lib/EXTLINUX/mbr.bin ] || need+=(syslinux-common)
command -v sfdisk >/dev/null 2>&1 || need+=(fdisk)
command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v packer >/dev/null 2>&1 || need+=(packer)             # Debian's 1.6.6: qemu builder built in
command -v nft >/dev/null 2>&1 || need+=(nftables)              # checks the first-boot firewall rules
command -v expect >/dev/null 2>&1 || need+=(expect)             # the image test logs in as the admin; the CLI tests
command -v telnet >/dev/null 2>&1 || need+=(telnet)             # the CLI test over Telnet
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v svcrack >/dev/null 2>&1 || need+=(sipvicious)        # the guessing and enumeration attacks of the system tests
command -v curl >/dev/null 2>&1 || need+=(curl)                # the CDR pull tests (FTP, FTPS, SFTP)
command -v lftp >/dev/null 2>&1 || need+=(lftp)                # the CDR pull test (FTPS)
command -v snmpget >/dev/null 2>&1 || need+=(snmp)              # net-snmp's tools query the SNMP agent
command -v smilint >/dev/null 2>&1 || need+=(smitools)          # checks our MIB
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# install_no_service PKG BIN: installs PKG when BIN is missing, without
# letting the package start its own server (a policy-rc.d that forbids
# starting services during the install, the unit disabled after it).
install_no_service() {
  local pkg=$1 bin=$2 ours=""
  if command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ]; then return 0; fi
  echo "deps: installing $pkg (service not started)"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && ours=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$pkg" >/dev/null
  [ -n "$ours" ] && rm -f /usr/sbin/policy-rc.d
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$pkg" >/dev/null 2>&1 || true; fi
}

# vsftpd plays the billing centre in the CDR tests, FreeRADIUS the RADIUS
# server of the AAA tests; the tests start them on loopback ports with
# configurations of their own, so the packages' servers (ports 21,
# 1812/1813) must not run.
install_no_service vsftpd vsftpd
install_no_service freeradius freeradius
# snmptrapd receives the agent's notifications in the OAM tests (its own
# service, on port 162, must not run).
install_no_service snmptrapd snmptrapd

# freeDiameter is the Diameter peer of the AAA tests (started by them with
# a configuration of their own; the packages ship no service).
if ! command -v freeDiameterd >/dev/null 2>&1; then
  echo "deps: installing freediameterd, freediameter-extensions"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends freediameterd freediameter-extensions >/dev/null
fi

# staticcheck, pinned, from the Go module proxy.
SC_VERSION=v0.8.2  # staticcheck 2026.2.2; the proxy serves the module version, not the release name
gobin="$(go env GOPATH)/bin"
if ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "(${SC_VERSION#v})"; then
  echo "deps: installing staticcheck $SC_VERSION"
  go install "honnef.co/go/tools/cmd/staticcheck@$SC_VERSION"
fi
