package cli

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// User is a command-line user: the password only as a bcrypt hash.
type User struct {
	Name  string `json:"name"`
	Hash  []byte `json:"hash"`
	Level Level  `json:"level"`
}

// Users keeps the users (in the switch's store, through Load and Save)
// and locks out names and sources that keep failing.
type Users struct {
	Load func() ([]User, error)
	// Change applies a change to the stored list in one step (no other
	// change between its read and its write).
	Change func(func([]User) ([]User, error)) error
	Cost   int // bcrypt's cost for new passwords (0: 12)

	mu    sync.Mutex
	fails map[string]*failures // "user NAME", "source ADDR"
}

type failures struct {
	n     int
	until time.Time
}

// Lockout: after MaxFailures wrong logins in a row a name or a source is
// refused for LockFor, right password or not.
const (
	MaxFailures = 5
	LockFor     = 5 * time.Minute
	minPassword = 10
)

// ErrLogin is the one answer to a wrong name, a wrong password and a
// locked one: nothing tells which.
var ErrLogin = errors.New("login refused")

// dummy is compared against when the name is unknown, so that an unknown
// name costs the same time as a wrong password.
var dummy, _ = bcrypt.GenerateFromPassword([]byte("no such user, no such password"), bcrypt.DefaultCost)

// Check logs a user in from a source: its level, or ErrLogin.
func (u *Users) Check(name, password, from string, now time.Time) (Level, error) {
	if u.locked("user "+name, now) || u.locked("source "+from, now) {
		bcrypt.CompareHashAndPassword(dummy, []byte(password))
		return 0, ErrLogin
	}
	list, err := u.Load()
	if err != nil {
		return 0, ErrLogin
	}
	hash, level := dummy, Level(0)
	for _, x := range list {
		if x.Name == name {
			hash, level = x.Hash, x.Level
		}
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || level == 0 {
		u.fail("user "+name, now)
		u.fail("source "+from, now)
		return 0, ErrLogin
	}
	u.mu.Lock()
	delete(u.fails, "user "+name)
	delete(u.fails, "source "+from)
	u.mu.Unlock()
	return level, nil
}

func (u *Users) locked(key string, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := u.fails[key]
	return f != nil && now.Before(f.until)
}

func (u *Users) fail(key string, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.fails == nil {
		u.fails = map[string]*failures{}
	}
	f := u.fails[key]
	if f == nil || (!f.until.IsZero() && !now.Before(f.until)) {
		f = &failures{}
		u.fails[key] = f
	}
	if f.n++; f.n >= MaxFailures {
		f.until = now.Add(LockFor)
	}
	if len(u.fails) > 10000 { // a flood of names: forget the oldest state rather than grow
		for k := range u.fails {
			delete(u.fails, k)
			break
		}
	}
}

// Add creates or replaces a user.
func (u *Users) Add(name, password string, level Level) error {
	if name == "" || len(name) > 32 {
		return fmt.Errorf("a user name is 1 to 32 characters")
	}
	if len(password) < minPassword {
		return fmt.Errorf("a password is %d characters at least", minPassword)
	}
	if level < View || level > Admin {
		return fmt.Errorf("the level is view, operator or admin")
	}
	cost := u.Cost
	if cost == 0 {
		cost = 12
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return err
	}
	return u.Change(func(list []User) ([]User, error) {
		out := []User{{Name: name, Hash: hash, Level: level}}
		for _, x := range list {
			if x.Name != name {
				out = append(out, x)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return out, nil
	})
}

// Delete removes a user; false when there was none.
func (u *Users) Delete(name string) (bool, error) {
	found := false
	err := u.Change(func(list []User) ([]User, error) {
		var out []User
		for _, x := range list {
			if x.Name != name {
				out = append(out, x)
			}
		}
		found = len(out) < len(list)
		return out, nil
	})
	return found, err
}

// List is the users (hashes included: show only names and levels).
func (u *Users) List() ([]User, error) { return u.Load() }
