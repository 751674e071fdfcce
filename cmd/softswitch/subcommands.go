package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/softswitch/softswitch/appliance/ha"
	"github.com/softswitch/softswitch/core/config"
)

// subcommand runs "softswitch NAME ..." helpers; ok is false when args do
// not name one (the daemon then starts).
//
//	softswitch ha-config [--config FILE] [--self PATH] [--data-dir DIR]   keepalived.conf for this node, on stdout
//	softswitch check [--config FILE] [--sip-listen A]    exit 0 if the local softswitch answers OPTIONS with 200
//	softswitch ha-notify --data-dir DIR ARGS...           keepalived's notify hook: records MASTER/BACKUP/FAULT
func subcommand(args []string) (ok bool, err error) {
	if len(args) == 0 {
		return false, nil
	}
	switch args[0] {
	case "ha-config":
		fs := flag.NewFlagSet("ha-config", flag.ContinueOnError)
		cfgPath := fs.String("config", "/etc/softswitch/softswitch.toml", "the softswitch configuration")
		self := fs.String("self", "", "the softswitch binary keepalived's scripts run (default: this one)")
		dataDir := fs.String("data-dir", "", "data directory the daemon runs with (overrides data.dir)")
		if err := fs.Parse(args[1:]); err != nil {
			return true, err
		}
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return true, err
		}
		if !cfg.HA.Enabled {
			return true, fmt.Errorf("%s: [ha] enabled = false: this node is not part of a pair", *cfgPath)
		}
		if *self == "" {
			if *self, err = os.Executable(); err != nil {
				return true, err
			}
		}
		if *dataDir != "" {
			cfg.Data.Dir = *dataDir
		}
		abs, _ := filepath.Abs(*cfgPath)
		data, _ := filepath.Abs(cfg.Data.Dir)
		fmt.Print(ha.KeepalivedConfig(cfg.HA, *self, abs, data))
		return true, nil
	case "check":
		fs := flag.NewFlagSet("check", flag.ContinueOnError)
		cfgPath := fs.String("config", "", "the softswitch configuration (for sip.listen)")
		listen := fs.String("sip-listen", "", "address to check (overrides the config)")
		timeout := fs.Duration("timeout", time.Second, "how long to wait for the 200")
		if err := fs.Parse(args[1:]); err != nil {
			return true, err
		}
		addr := *listen
		if addr == "" {
			cfg, err := config.Load(*cfgPath)
			if err != nil {
				return true, err
			}
			addr = cfg.SIP.Listen
		}
		return true, ha.Check(addr, *timeout)
	case "ha-notify":
		fs := flag.NewFlagSet("ha-notify", flag.ContinueOnError)
		dataDir := fs.String("data-dir", "/var/lib/softswitch", "the softswitch data directory")
		if err := fs.Parse(args[1:]); err != nil {
			return true, err
		}
		_, err := ha.NotifyRole(*dataDir, fs.Args())
		return true, err
	}
	return false, nil
}
