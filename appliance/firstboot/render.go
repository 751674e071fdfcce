package firstboot

import (
	"fmt"
	"net/netip"
	"strings"
)

// Where the appliance's billing centre fetches CDR files ([billing.pull];
// docs/install.md): SFTP, FTP/FTPS control and the FTP passive data ports
// (the config's default passive_ports), open on the management side only.
const (
	CDRPullPort        = 2222
	CDRPullFTPPort     = 2121
	CDRPullPassivePort = "30000-30049"
	// ReplicationPort: the pair's state replication, on the service
	// address, only from the other node (ha.replication_key).
	ReplicationPort = 5070
)

// Firewall renders /etc/nftables.conf. With one interface everything the
// node serves comes in on it; with a management interface of its own,
// SIP and VRRP are accepted only on the service side and SSH, Telnet,
// SNMP and the CDR pull only on the management side. New SSH/Telnet connections are
// rate-limited per source address against password guessing.
func Firewall(s Settings) string {
	var b strings.Builder
	b.WriteString(`#!/usr/sbin/nft -f
# Written by "softswitch firstboot" (docs/install.md, "Firewall"); it is
# rewritten only when first boot is run again.

flush ruleset

table inet softswitch {
    set mgmt4 { type ipv4_addr; size 4096; flags dynamic, timeout; timeout 1m; }
    set mgmt6 { type ipv6_addr; size 4096; flags dynamic, timeout; timeout 1m; }

    chain input {
        type filter hook input priority filter; policy drop;
        iif "lo" accept
        ct state established,related accept
        ct state invalid drop
        meta l4proto { 1, 58 } accept comment "ICMP, ICMPv6 (numbers: the image has no /etc/protocols)"
        udp sport 67 udp dport 68 accept comment "DHCP replies"
        meta nfproto ipv6 udp sport 547 udp dport 546 accept comment "DHCPv6 replies"
`)
	svc, mgmt := "", ""
	if s.Split() {
		svc = fmt.Sprintf("iifname %q ", s.Service.Name)
		mgmt = fmt.Sprintf("iifname %q ", s.Management.Name)
	}
	fmt.Fprintf(&b, "        %sudp dport 5060 accept comment \"SIP\"\n", svc)
	fmt.Fprintf(&b, "        %stcp dport 5060 accept comment \"SIP\"\n", svc)
	vrrpFrom := ""
	if s.HA != nil && len(s.HA.Peers) > 0 {
		vrrpFrom = peerMatch(s.HA.Peers)
	}
	fmt.Fprintf(&b, "        %s%smeta l4proto 112 accept comment \"VRRP from the other node\"\n", svc, vrrpFrom)
	if s.HA != nil && s.HA.ReplicationKey != "" {
		fmt.Fprintf(&b, "        %s%stcp dport %d accept comment \"state replication from the other node\"\n", svc, vrrpFrom, ReplicationPort)
	}
	fmt.Fprintf(&b, "        %sudp dport 161 accept comment \"SNMP\"\n", mgmt)
	fmt.Fprintf(&b, "        %stcp dport { 22, %d, %d } ct state new update @mgmt4 { ip saddr limit rate 10/minute burst 10 packets } accept comment \"SSH, the command line (SSH, Telnet): 10 new connections a minute per source\"\n", mgmt, CLIPort, TelnetPort)
	fmt.Fprintf(&b, "        %stcp dport { 22, %d, %d } ct state new update @mgmt6 { ip6 saddr limit rate 10/minute burst 10 packets } accept\n", mgmt, CLIPort, TelnetPort)
	fmt.Fprintf(&b, "        %stcp dport %d ct state new update @mgmt4 { ip saddr limit rate 10/minute burst 10 packets } accept comment \"CDR pull (SFTP) for the billing centre\"\n", mgmt, CDRPullPort)
	fmt.Fprintf(&b, "        %stcp dport %d ct state new update @mgmt6 { ip6 saddr limit rate 10/minute burst 10 packets } accept\n", mgmt, CDRPullPort)
	fmt.Fprintf(&b, "        %stcp dport %d ct state new update @mgmt4 { ip saddr limit rate 10/minute burst 10 packets } accept comment \"CDR pull (FTP, FTPS) for the billing centre\"\n", mgmt, CDRPullFTPPort)
	fmt.Fprintf(&b, "        %stcp dport %d ct state new update @mgmt6 { ip6 saddr limit rate 10/minute burst 10 packets } accept\n", mgmt, CDRPullFTPPort)
	fmt.Fprintf(&b, "        %stcp dport %s accept comment \"CDR pull: FTP passive data connections\"\n", mgmt, CDRPullPassivePort)
	b.WriteString(`    }
    chain forward {
        type filter hook forward priority filter; policy drop;
    }
}
`)
	return b.String()
}

func peerMatch(peers []netip.Addr) string {
	var v4, v6 []string
	for _, p := range peers {
		if p.Is4() {
			v4 = append(v4, p.String())
		} else {
			v6 = append(v6, p.String())
		}
	}
	switch {
	case len(v6) == 0:
		return "ip saddr { " + strings.Join(v4, ", ") + " } "
	case len(v4) == 0:
		return "ip6 saddr { " + strings.Join(v6, ", ") + " } "
	}
	return "" // both families: not narrowed by address
}

// Network renders systemd-networkd files, by file name. The image's
// catch-all DHCP file is replaced by these once any site value is given,
// so no unconfigured port asks for an address on a carrier's network.
func Network(s Settings) map[string]string {
	out := map[string]string{"05-service.network": networkFile(s.Service, s.DNS, "service: SIP and VRRP")}
	if s.Split() {
		out["06-management.network"] = networkFile(s.Management, nil, "management: SSH, Telnet, SNMP")
	}
	return out
}

func networkFile(i Interface, dns []netip.Addr, role string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by \"softswitch firstboot\": the %s interface.\n[Match]\nName=%s\n\n[Network]\n", role, i.Name)
	if i.Address.IsValid() {
		fmt.Fprintf(&b, "Address=%s\n", i.Address)
		if i.Gateway.IsValid() {
			fmt.Fprintf(&b, "Gateway=%s\n", i.Gateway)
		}
	} else {
		b.WriteString("DHCP=yes\n")
	}
	for _, d := range dns {
		fmt.Fprintf(&b, "DNS=%s\n", d)
	}
	// keepalived adds the virtual address; networkd must not remove it.
	b.WriteString("KeepConfiguration=static\n")
	return b.String()
}

// Block markers around what first boot writes into softswitch.toml; a
// second run replaces the block, the rest of the file is the operator's.
const (
	blockBegin = "# --- BEGIN first boot (softswitch firstboot; edit below or rerun it) ---"
	blockEnd   = "# --- END first boot ---"
)

// The appliance's management ports: the command line over SSH has a port
// of its own (22 is the operating system's sshd, for the admin account);
// Telnet, when turned on (softswitch telnet on), and SNMP have theirs.
const (
	CLIPort    = 2022
	TelnetPort = 23
	SNMPPort   = 161
)

// Management is what first boot generates once for the management
// interfaces: an SNMPv3 user (read-only, SHA-256 and AES), shown on the
// console like the admin's one-time password.
type Management struct {
	SNMPUser, SNMPAuth, SNMPPriv string
}

// mgmtAddr is where the management servers listen: the management
// interface's static address (the service interface's when there is no
// management one), or every address when it takes DHCP (the firewall
// then keeps them to the management interface on a split node).
func mgmtAddr(s Settings, port uint16) string {
	i := s.Management
	if !s.Split() {
		i = s.Service
	}
	if i.Address.IsValid() {
		return netip.AddrPortFrom(i.Address.Addr(), port).String()
	}
	return netip.AddrPortFrom(netip.IPv4Unspecified(), port).String()
}

// ConfigBlock is the softswitch.toml part first boot owns: [ha] for a
// node of a pair, [dns] when servers were given.
func ConfigBlock(s Settings, m Management) string {
	var b strings.Builder
	b.WriteString(blockBegin + "\n")
	fmt.Fprintf(&b, "[snmp]\nlisten = %q\n[[snmp.user]]\nname = %q\nauth = \"SHA-256\"\nauth_password = %q\npriv = \"AES\"\npriv_password = %q\naccess = \"read\"\n",
		mgmtAddr(s, SNMPPort), m.SNMPUser, m.SNMPAuth, m.SNMPPriv)
	// Telnet is served only once turned on (softswitch telnet on).
	fmt.Fprintf(&b, "[cli]\nssh_listen = %q\ntelnet_listen = %q\n", mgmtAddr(s, CLIPort), mgmtAddr(s, TelnetPort))
	if h := s.HA; h != nil {
		fmt.Fprintf(&b, "[ha]\nenabled = true\ninterface = %q\nvirtual_address = %q\npriority = %d\nrouter_id = %d\nadvert_interval = %q\n",
			s.Service.Name, h.VirtualAddress.String(), h.Priority, h.RouterID, h.AdvertInterval.String())
		if h.CheckInterval > 0 {
			fmt.Fprintf(&b, "check_interval = %q\n", h.CheckInterval.String())
		}
		if h.CheckTimeout > 0 {
			fmt.Fprintf(&b, "check_timeout = %q\n", h.CheckTimeout.String())
		}
		if h.CheckFailures > 0 {
			fmt.Fprintf(&b, "check_failures = %d\n", h.CheckFailures)
		}
		if len(h.Peers) > 0 {
			q := make([]string, len(h.Peers))
			for i, p := range h.Peers {
				q[i] = fmt.Sprintf("%q", p.String())
			}
			fmt.Fprintf(&b, "unicast_peers = [%s]\n", strings.Join(q, ", "))
		}
		if h.ReplicationKey != "" {
			fmt.Fprintf(&b, "replication_listen = %q\npeer = %q\nreplication_key = %q\n",
				netip.AddrPortFrom(s.Service.Address.Addr(), ReplicationPort).String(),
				netip.AddrPortFrom(h.Peers[0], ReplicationPort).String(), h.ReplicationKey)
		}
	}
	if len(s.DNS) > 0 {
		q := make([]string, len(s.DNS))
		for i, d := range s.DNS {
			q[i] = fmt.Sprintf("%q", netip.AddrPortFrom(d, 53).String())
		}
		fmt.Fprintf(&b, "[dns]\nservers = [%s]\n", strings.Join(q, ", "))
	}
	b.WriteString(blockEnd + "\n")
	return b.String()
}

// ReplaceBlock puts block into the configuration text: in place of an
// earlier block, else at the end.
func ReplaceBlock(conf, block string) string {
	i := strings.Index(conf, blockBegin)
	j := strings.Index(conf, blockEnd)
	if i >= 0 && j > i {
		return conf[:i] + block + strings.TrimPrefix(conf[j+len(blockEnd):], "\n")
	}
	if conf != "" && !strings.HasSuffix(conf, "\n") {
		conf += "\n"
	}
	return conf + "\n" + block
}
