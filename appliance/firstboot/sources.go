package firstboot

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Where the values come from on a node, lowest precedence first: SMBIOS
// OEM strings (set by the server's BMC or qemu -smbios type=11), the
// kernel command line (extlinux's APPEND line), then the site file an
// operator writes on the node.
const (
	SMBIOSDir = "/sys/firmware/dmi/entries"
	Cmdline   = "/proc/cmdline"
	SiteFile  = "/etc/softswitch/node.conf"
)

// ReadSMBIOS reads the OEM strings (SMBIOS structure type 11) under dir.
// A machine without them yields nothing, not an error.
func ReadSMBIOS(dir string) ([]Value, error) {
	entries, _ := filepath.Glob(filepath.Join(dir, "11-*", "raw"))
	sort.Strings(entries)
	var out []Value
	n := 0
	for _, e := range entries {
		raw, err := os.ReadFile(e)
		if err != nil {
			return nil, err
		}
		strs, err := smbiosStrings(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", e, err)
		}
		for _, s := range strs {
			n++
			if v, ok := pair(s, "SMBIOS OEM string "+strconv.Itoa(n)); ok {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// smbiosStrings returns the string set of one structure: after the
// formatted part (its length is byte 1), NUL-terminated strings ending
// with an empty one.
func smbiosStrings(raw []byte) ([]string, error) {
	if len(raw) < 5 || raw[0] != 11 || int(raw[1]) > len(raw) {
		return nil, fmt.Errorf("not an SMBIOS type 11 structure")
	}
	var out []string
	for rest := raw[raw[1]:]; len(rest) > 0; {
		i := bytes.IndexByte(rest, 0)
		if i <= 0 {
			break
		}
		out = append(out, string(rest[:i]))
		rest = rest[i+1:]
	}
	return out, nil
}

// ReadCmdline reads softswitch.KEY=VALUE parameters from the kernel
// command line; a value may be double-quoted to hold spaces.
func ReadCmdline(path string) ([]Value, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Value
	for _, w := range cmdlineWords(string(data)) {
		if v, ok := pair(w, "kernel command line"); ok {
			out = append(out, v)
		}
	}
	return out, nil
}

func cmdlineWords(s string) []string {
	var words []string
	var b strings.Builder
	quoted, in := false, false
	for _, c := range s {
		switch {
		case c == '"':
			quoted, in = !quoted, true
		case (c == ' ' || c == '\t' || c == '\n') && !quoted:
			if in {
				words = append(words, b.String())
				b.Reset()
				in = false
			}
		default:
			b.WriteRune(c)
			in = true
		}
	}
	if in {
		words = append(words, b.String())
	}
	return words
}

// ReadFile reads KEY=VALUE lines (the prefix optional, # comments); a
// missing file yields nothing.
func ReadFile(path string) ([]Value, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Value
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || t[0] == '#' {
			continue
		}
		where := path + ":" + strconv.Itoa(line)
		if !strings.HasPrefix(t, Prefix) {
			t = Prefix + t
		}
		v, ok := pair(t, where)
		if !ok {
			return nil, fmt.Errorf("%s: want KEY=VALUE, got %q", where, sc.Text())
		}
		v.Val = strings.Trim(v.Val, `"`)
		out = append(out, v)
	}
	return out, sc.Err()
}

// pair splits "softswitch.KEY=VALUE"; ok is false for anything else.
func pair(s, where string) (Value, bool) {
	k, v, found := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	if !found || !strings.HasPrefix(k, Prefix) || len(k) == len(Prefix) {
		return Value{}, false
	}
	return Value{Where: where, Key: strings.TrimPrefix(k, Prefix), Val: strings.TrimSpace(v)}, true
}
