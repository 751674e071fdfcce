package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/softswitch/softswitch/appliance/firstboot"
	"github.com/softswitch/softswitch/appliance/ha"
	"github.com/softswitch/softswitch/core/config"
	"github.com/softswitch/softswitch/core/running"
	"github.com/softswitch/softswitch/oam/control"
)

// runningDataDir is the data directory of the switch a maintenance
// command talks to: --data-dir, else the configuration's (the packaged
// one by default).
func runningDataDir(cfgPath, dataDir string) (string, error) {
	if dataDir != "" {
		return dataDir, nil
	}
	if cfgPath == "" {
		if _, err := os.Stat("/etc/softswitch/softswitch.toml"); err == nil {
			cfgPath = "/etc/softswitch/softswitch.toml"
		}
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return "", err
	}
	return cfg.Data.Dir, nil
}

// subcommand runs "softswitch NAME ..." helpers; ok is false when args do
// not name one (the daemon then starts).
//
//	softswitch ha-config [--config FILE] [--self PATH] [--data-dir DIR] [--out FILE]   keepalived.conf for this node
//	softswitch check [--config FILE] [--sip-listen A]    exit 0 if the local softswitch answers OPTIONS with 200
//	softswitch ha-notify --data-dir DIR ARGS...           keepalived's notify hook: records MASTER/BACKUP/FAULT
//	softswitch ha-fence [--config FILE] [--data-dir DIR]  drop the virtual address after keepalived ended
//	softswitch firstboot [--root DIR]                     configure this node from SMBIOS/kernel/site values
//	softswitch bans [--config FILE] [--data-dir DIR]      the running switch's authentication bans
//	softswitch unban [--config FILE] [--data-dir DIR] ADDRESS|PREFIX|USER   lift them
//	softswitch blocked [--config FILE] [--data-dir DIR]   sources blocked for their request rate
//	softswitch unblock [--config FILE] [--data-dir DIR] ADDRESS   lift a block
//	softswitch cdr-fetched [--config FILE] [--data-dir DIR]  the CDR files the billing centre fetched
//	softswitch check-config [--config FILE]              check a file whole (bootstrap and provisioning) without starting
//	softswitch telnet [--config FILE] [--data-dir DIR] on|off   the command line over Telnet (committed)
//	softswitch hash-password < PASSWORD                   the bcrypt hash for [billing.pull] password_hash
func subcommand(args []string) (ok bool, err error) {
	if len(args) == 0 {
		return false, nil
	}
	switch args[0] {
	case "hash-password":
		// The password comes on standard input (never a command-line
		// argument, which other users of the host could read).
		var line string
		if _, err := fmt.Fscanln(os.Stdin, &line); err != nil || line == "" {
			return true, fmt.Errorf("hash-password: give the password on standard input")
		}
		h, err := bcrypt.GenerateFromPassword([]byte(line), 12)
		if err != nil {
			return true, err
		}
		fmt.Println(string(h))
		return true, nil
	case "bans", "unban", "blocked", "unblock", "cdr-fetched", "replication", "switchover":
		return true, askRunning(args, func(fs *flag.FlagSet) (string, error) {
			line := args[0]
			switch args[0] {
			case "unban", "unblock":
				if fs.NArg() != 1 {
					what := "ADDRESS|PREFIX|USER"
					if args[0] == "unblock" {
						what = "ADDRESS"
					}
					return "", fmt.Errorf("usage: softswitch %s [--config FILE] [--data-dir DIR] %s", args[0], what)
				}
				line += " " + fs.Arg(0)
			}
			return line, nil
		})
	case "cli-user":
		// softswitch cli-user add NAME LEVEL (password on stdin) | del NAME | list
		return true, askRunning(args, func(fs *flag.FlagSet) (string, error) {
			switch {
			case fs.NArg() == 3 && fs.Arg(0) == "add":
				pw, err := bufio.NewReader(os.Stdin).ReadString('\n')
				if err != nil && pw == "" {
					return "", fmt.Errorf("no password on standard input")
				}
				pw = strings.TrimRight(pw, "\r\n")
				if strings.ContainsAny(pw, " \t") {
					return "", fmt.Errorf("a password without blanks, please")
				}
				return "cli-user-add " + fs.Arg(1) + " " + fs.Arg(2) + " " + pw, nil
			case fs.NArg() == 2 && fs.Arg(0) == "del":
				return "cli-user-del " + fs.Arg(1), nil
			case fs.NArg() == 1 && fs.Arg(0) == "list":
				return "cli-users", nil
			}
			return "", fmt.Errorf("usage: softswitch cli-user [--config FILE] [--data-dir DIR] add NAME LEVEL | del NAME | list " +
				"(add reads the password from standard input)")
		})
	case "check-config":
		fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
		cfgPath := fs.String("config", "/etc/softswitch/softswitch.toml", "the configuration file to check")
		if err := fs.Parse(args[1:]); err != nil {
			return true, err
		}
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return true, err
		}
		// The provisioning sections as an import would check them.
		if err := running.Check(&cfg.Doc, cfg.Registrations, cfg.AAABootstrap()); err != nil {
			var re *running.Error
			if errors.As(err, &re) {
				return true, config.At(*cfgPath, re.Key, re.Reason)
			}
			return true, err
		}
		fmt.Printf("%s: good\n", *cfgPath)
		return true, nil
	case "telnet":
		return true, askRunning(args, func(fs *flag.FlagSet) (string, error) {
			if fs.NArg() != 1 || (fs.Arg(0) != "on" && fs.Arg(0) != "off") {
				return "", errors.New("usage: softswitch telnet [--config FILE] [--data-dir DIR] on|off")
			}
			return "telnet " + fs.Arg(0), nil
		})
	case "ha-config":
		fs := flag.NewFlagSet("ha-config", flag.ContinueOnError)
		cfgPath := fs.String("config", "/etc/softswitch/softswitch.toml", "the softswitch configuration")
		self := fs.String("self", "", "the softswitch binary keepalived's scripts run (default: this one)")
		dataDir := fs.String("data-dir", "", "data directory the daemon runs with (overrides data.dir)")
		out := fs.String("out", "", "write here (atomically) instead of stdout")
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
		if _, err := user.Lookup(cfg.HA.ScriptUser); err != nil {
			return true, fmt.Errorf("%s: [ha] script_user %q: %v", *cfgPath, cfg.HA.ScriptUser, err)
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
		text := ha.KeepalivedConfig(cfg.HA, *self, abs, data)
		if *out == "" {
			_, err = fmt.Print(text)
			return true, err
		}
		tmp := *out + ".tmp"
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			return true, err
		}
		return true, os.Rename(tmp, *out)
	case "ha-fence":
		fs := flag.NewFlagSet("ha-fence", flag.ContinueOnError)
		cfgPath := fs.String("config", "/etc/softswitch/softswitch.toml", "the softswitch configuration")
		dataDir := fs.String("data-dir", "", "data directory the daemon runs with (overrides data.dir)")
		if err := fs.Parse(args[1:]); err != nil {
			return true, err
		}
		cfg, err := config.Load(*cfgPath)
		if err != nil || !cfg.HA.Enabled {
			return true, err
		}
		if *dataDir != "" {
			cfg.Data.Dir = *dataDir
		}
		removed, err := ha.Fence(cfg.HA, cfg.Data.Dir)
		if removed {
			fmt.Printf("removed the virtual address %s from %s\n", cfg.HA.VirtualAddress, cfg.HA.Interface)
		}
		return true, err
	case "firstboot":
		fs := flag.NewFlagSet("firstboot", flag.ContinueOnError)
		root := fs.String("root", "/", "the node's root directory (another one only for checking what would be written)")
		if err := fs.Parse(args[1:]); err != nil {
			return true, err
		}
		return true, firstBoot(*root)
	case "check":
		fs := flag.NewFlagSet("check", flag.ContinueOnError)
		cfgPath := fs.String("config", "", "the softswitch configuration (for sip.listen)")
		listen := fs.String("sip-listen", "", "address to check (overrides the config)")
		timeout := fs.Duration("timeout", time.Second, "how long to wait for the 200")
		if err := fs.Parse(args[1:]); err != nil {
			return true, err
		}
		return true, ha.CheckConfigured(*cfgPath, *listen, *timeout)
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

// firstBoot reads the node's values (SMBIOS OEM strings, then the kernel
// command line, then the site file: a later one wins) and applies them.
// The admin account is made first, even when the values are wrong, so
// that the operator can always log in on the console to correct them.
func firstBoot(root string) error {
	var values []firstboot.Value
	for _, read := range []func() ([]firstboot.Value, error){
		func() ([]firstboot.Value, error) {
			return firstboot.ReadSMBIOS(filepath.Join(root, firstboot.SMBIOSDir))
		},
		func() ([]firstboot.Value, error) {
			return firstboot.ReadCmdline(filepath.Join(root, firstboot.Cmdline))
		},
		func() ([]firstboot.Value, error) { return firstboot.ReadFile(filepath.Join(root, firstboot.SiteFile)) },
	} {
		v, err := read()
		if err != nil {
			return err
		}
		values = append(values, v...)
	}
	s, perr := firstboot.Parse(values)
	if root == "/" {
		if err := firstboot.Admin(s, os.Stdout); err != nil {
			return err
		}
	}
	if perr != nil {
		return fmt.Errorf("%w; nothing else was changed: fix the value and run `softswitch firstboot` again (keys: %s)", perr, strings.Join(firstboot.Keys(), ", "))
	}
	keys := make([]string, 0, len(s.Set))
	for k, where := range s.Set {
		keys = append(keys, firstboot.Prefix+k+" from "+where)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		fmt.Println("no first-boot values (SMBIOS OEM strings, kernel command line, " + firstboot.SiteFile + "): a single node on DHCP")
	} else {
		fmt.Println("values: " + strings.Join(keys, "; "))
	}
	return firstboot.Apply(s, root, os.Stdout)
}

// askRunning sends the running daemon (found by --config and
// --data-dir) the control command line makes of the remaining
// arguments, and prints its answer.
func askRunning(args []string, line func(fs *flag.FlagSet) (string, error)) error {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	cfgPath := fs.String("config", "", "the softswitch configuration (default: /etc/softswitch/softswitch.toml if present)")
	dataDir := fs.String("data-dir", "", "data directory the daemon runs with (overrides data.dir)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	dir, err := runningDataDir(*cfgPath, *dataDir)
	if err != nil {
		return err
	}
	l, err := line(fs)
	if err != nil {
		return err
	}
	out, err := control.Ask(controlPath(dir), l)
	if err != nil {
		return err
	}
	if msg, failed := strings.CutPrefix(out, "error: "); failed {
		return fmt.Errorf("%s", strings.TrimSpace(msg))
	}
	fmt.Print(out)
	return nil
}
