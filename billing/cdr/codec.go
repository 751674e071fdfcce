package cdr

import (
	"encoding/binary"
	"errors"
	"time"
)

// The spool's encoding of a record: compact and cheap (the writer encodes
// every call two or three times). Strings are length-prefixed, numbers
// varints, times Unix milliseconds (0: none). Version 1.

const codecVersion = 1

var errShort = errors.New("cdr: truncated record")

// AppendBinary appends r's spool encoding to b.
func (r *Record) AppendBinary(b []byte) []byte {
	b = append(b, codecVersion)
	for _, s := range r.strs() {
		b = binary.AppendUvarint(b, uint64(len(*s)))
		b = append(b, *s...)
	}
	for _, n := range []int64{int64(r.Attempts), r.DurationMS, r.BillableMS, int64(r.Status), int64(r.Q850), int64(r.Pulses)} {
		b = binary.AppendVarint(b, n)
	}
	for _, t := range []time.Time{r.Seizure, r.Ringing, r.Answer, r.Release} {
		var ms int64
		if !t.IsZero() {
			ms = t.UnixMilli()
		}
		b = binary.AppendVarint(b, ms)
	}
	for _, l := range [][]string{r.MediaOffered, r.MediaAnswered} {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, s := range l {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	// Fields added later follow, each read only when present, so records
	// written before them still read.
	if r.AAAClass != "" {
		b = binary.AppendUvarint(b, uint64(len(r.AAAClass)))
		b = append(b, r.AAAClass...)
	}
	return b
}

func (r *Record) strs() []*string {
	return []*string{&r.ID, &r.Node, &r.CallingIn, &r.CalledIn, &r.CallingOut, &r.CalledOut, &r.Account,
		&r.SourceKind, &r.Source, &r.Route, &r.Gateway, &r.Side, &r.CallID, &r.CalleeCallID, &r.EndReason,
		&r.Cause, &r.Charge, &r.Currency}
}

// UnmarshalBinary reads what AppendBinary wrote.
func (r *Record) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != codecVersion {
		return errors.New("cdr: unknown record encoding")
	}
	b = b[1:]
	str := func() (string, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return "", errShort
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, nil
	}
	num := func() (int64, error) {
		n, k := binary.Varint(b)
		if k <= 0 {
			return 0, errShort
		}
		b = b[k:]
		return n, nil
	}
	var err error
	for _, s := range r.strs() {
		if *s, err = str(); err != nil {
			return err
		}
	}
	var ns [6]int64
	for i := range ns {
		if ns[i], err = num(); err != nil {
			return err
		}
	}
	r.Attempts, r.DurationMS, r.BillableMS, r.Status, r.Q850, r.Pulses = int(ns[0]), ns[1], ns[2], int(ns[3]), int(ns[4]), int(ns[5])
	for _, t := range []*time.Time{&r.Seizure, &r.Ringing, &r.Answer, &r.Release} {
		ms, err := num()
		if err != nil {
			return err
		}
		*t = time.Time{}
		if ms != 0 {
			*t = time.UnixMilli(ms).UTC()
		}
	}
	for _, l := range []*[]string{&r.MediaOffered, &r.MediaAnswered} {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)) {
			return errShort
		}
		b = b[k:]
		*l = nil
		for i := uint64(0); i < n; i++ {
			s, err := str()
			if err != nil {
				return err
			}
			*l = append(*l, s)
		}
	}
	r.AAAClass = ""
	if len(b) > 0 {
		if r.AAAClass, err = str(); err != nil {
			return err
		}
	}
	return nil
}
