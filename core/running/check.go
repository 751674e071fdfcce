package running

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/softswitch/softswitch/billing/rating"
	"github.com/softswitch/softswitch/core/auth"
	"github.com/softswitch/softswitch/core/digest"
	"github.com/softswitch/softswitch/core/numbering"
	"github.com/softswitch/softswitch/core/provision"
	"github.com/softswitch/softswitch/core/routing"
	"github.com/softswitch/softswitch/core/store"
	"github.com/softswitch/softswitch/interwork/gateway"
)

// Error is a refused configuration: Key is the dotted path of what is
// wrong in the file's form ("gateway[1].address"); provision.Doc's
// Describe gives the command line's words for it.
type Error struct {
	Key    string
	Reason string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return e.Reason
	}
	return e.Key + ": " + e.Reason
}

func refuse(key, format string, a ...any) error {
	return &Error{Key: key, Reason: fmt.Sprintf(format, a...)}
}

var (
	hexMD5    = regexp.MustCompile(`^[0-9a-f]{32}$`)
	hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)
	userName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,31}$`)
)

// Check compiles d as the parts that use it do, with the file's trunk
// registrations and bootstrap settings: the first problem, as an *Error.
func Check(d *provision.Doc, registrations []provision.Registration, boot provision.AAABootstrap) error {
	_, err := compile(d, registrations, nil, boot)
	return err
}

func (r *Running) check(d *provision.Doc) (*Checked, error) {
	var prev *routing.Tables
	if r.cfg.Prev != nil {
		prev = r.cfg.Prev()
	}
	return compile(d, r.cfg.Registrations, prev, r.cfg.AAA)
}

func compile(d *provision.Doc, registrations []provision.Registration, prev *routing.Tables, boot provision.AAABootstrap) (*Checked, error) {
	chk := &Checked{Doc: d}
	aaa := func() error { return d.AAA.Check(boot) }
	for _, check := range []func() error{d.CheckLines, d.SNMP.Check, d.Push.Check, d.Management.Check, aaa} {
		if err := check(); err != nil {
			var ke *provision.KeyError
			if errors.As(err, &ke) {
				return nil, refuse(ke.Key, "%s", ke.Reason)
			}
			return nil, err
		}
	}
	seen := map[string]bool{}
	for i, s := range d.Subscribers {
		key := fmt.Sprintf("subscriber[%d]", i)
		switch {
		case !provision.IsNumber(s.Number):
			return nil, refuse(key+".number", "%q is not a number (digits, optional leading +)", s.Number)
		case seen[s.Number]:
			return nil, refuse(key+".number", "%s is declared twice", s.Number)
		case s.Password != "" && len(s.Password) < 8:
			return nil, refuse(key+".password", "subscriber %s: password shorter than 8 characters", s.Number)
		case s.Password == "" && (s.HA1MD5 == "" || s.HA1SHA256 == ""):
			return nil, refuse(key+".password", "subscriber %s needs password, or both ha1_md5 and ha1_sha256", s.Number)
		case s.Password == "" && !hexMD5.MatchString(s.HA1MD5):
			return nil, refuse(key+".ha1_md5", "32 lower-case hex digits (MD5 of number:realm:password)")
		case s.Password == "" && !hexSHA256.MatchString(s.HA1SHA256):
			return nil, refuse(key+".ha1_sha256", "64 lower-case hex digits (SHA-256 of number:realm:password)")
		}
		seen[s.Number] = true
		chk.Subscribers = append(chk.Subscribers, store.Subscriber{Number: s.Number, Account: s.Account, HA1MD5: s.HA1MD5, HA1SHA256: s.HA1SHA256})
	}
	for i, p := range d.Trusted {
		pfx, err := provision.ParsePrefix(p.Address)
		if err != nil {
			return nil, refuse(fmt.Sprintf("trusted_peer[%d].address", i), "%v", err)
		}
		chk.Peers = append(chk.Peers, auth.Peer{Name: p.Name, Prefix: pfx})
	}
	users := map[string]bool{}
	for i, u := range d.Users {
		key := fmt.Sprintf("user[%d]", i)
		switch {
		case !userName.MatchString(u.Name):
			return nil, refuse(key+".name", "%q: 1 to 32 letters, digits, '.', '_', '@' or '-'", u.Name)
		case users[u.Name]:
			return nil, refuse(key+".name", "%s is declared twice", u.Name)
		case u.Level != "view" && u.Level != "operator" && u.Level != "admin":
			return nil, refuse(key+".level", "user %s: the level is view, operator or admin", u.Name)
		}
		if _, err := bcrypt.Cost([]byte(u.Hash)); err != nil && u.Password == "" {
			return nil, refuse(key+".hash", "user %s has no password (set one: user %s password ...)", u.Name, u.Name)
		}
		users[u.Name] = true
	}
	t, err := routing.Compile(numbering.Spec{Settings: d.Numbering, Analysis: d.Analysis, Trunks: d.TrunkPlans, Lists: d.Lists},
		gateway.Spec{Gateways: d.Gateways, Groups: d.Groups, Routes: d.Routes, Registrations: registrations}, prev)
	if err != nil {
		var fe *numbering.FieldError
		if errors.As(err, &fe) {
			key := fe.Key
			if key == "numbering" {
				key = "numbering.max_called_digits"
			}
			return nil, refuse(key, "%v", fe.Err)
		}
		return nil, &Error{Reason: err.Error()}
	}
	var prevControls *routing.Controls
	if prev != nil {
		prevControls = prev.Controls
	}
	if t.Controls, err = routing.CompileControls(d.Blocks, d.Gaps, prevControls); err != nil {
		key, reason, _ := strings.Cut(err.Error(), ": ")
		return nil, refuse(key, "%s", reason)
	}
	chk.Tables = t
	plan, err := rating.Compile(d.Rating)
	if err != nil {
		var re *rating.Error
		if errors.As(err, &re) {
			return nil, refuse(re.Key, "%s", re.Reason)
		}
		return nil, &Error{Reason: err.Error()}
	}
	if len(d.Rating.Tariffs) > 0 {
		chk.Plan = plan
	}
	return chk, nil
}

// normalise turns the clear passwords of subscribers and users into what
// is kept (HA1 values of the realm, bcrypt hashes), so that no clear
// password is stored or printed.
func (r *Running) normalise(d *provision.Doc) error {
	for i := range d.Subscribers {
		s := &d.Subscribers[i]
		if s.Password == "" {
			continue
		}
		if len(s.Password) < 8 {
			return refuse(fmt.Sprintf("subscriber[%d].password", i), "subscriber %s: password shorter than 8 characters", s.Number)
		}
		s.HA1MD5 = digest.HA1(digest.MD5, s.Number, r.cfg.Realm, s.Password)
		s.HA1SHA256 = digest.HA1(digest.SHA256, s.Number, r.cfg.Realm, s.Password)
		s.Password = ""
	}
	for i := range d.Users {
		u := &d.Users[i]
		if u.Password == "" {
			continue
		}
		if len(u.Password) < MinUserPassword {
			return refuse(fmt.Sprintf("user[%d].password", i), "user %s: a password is %d characters at least", u.Name, MinUserPassword)
		}
		cost := r.cfg.PasswordCost
		if cost == 0 {
			cost = 12
		}
		h, err := bcrypt.GenerateFromPassword([]byte(u.Password), cost)
		if err != nil {
			return refuse(fmt.Sprintf("user[%d].password", i), "%v", err)
		}
		u.Hash, u.Password = string(h), ""
	}
	return nil
}

// MinUserPassword is the shortest password of a management user.
const MinUserPassword = 10
