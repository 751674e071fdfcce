// Command softswitch-check is the pair's health check (keepalived's
// vrrp_script, docs/install.md): it exits 0 when the local softswitch
// answers OPTIONS with 200. It is `softswitch check` in a binary of its
// own because keepalived runs it every couple of seconds: the softswitch
// binary's start-up carries the Diameter dictionaries (about 50 ms and
// 9 MB of parsing per start), which a health check has no use for.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/softswitch/softswitch/appliance/ha"
)

func main() {
	fs := flag.NewFlagSet("softswitch-check", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "the softswitch configuration (for sip.listen)")
	listen := fs.String("sip-listen", "", "address to check (overrides the config)")
	timeout := fs.Duration("timeout", time.Second, "how long to wait for the 200")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if err := ha.CheckConfigured(*cfgPath, *listen, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "softswitch-check:", err)
		os.Exit(1)
	}
}
