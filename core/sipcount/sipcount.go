// Package sipcount counts the SIP messages the switch receives and sends,
// by method and by status code, from their bytes (no parse): the figures
// of RFC 4780's SIP-COMMON-MIB and SIP-SERVER-MIB (oam/snmp serves them).
// It costs two atomic adds and a look at the first line (and, for a
// response, the CSeq header) per message.
package sipcount

import (
	"bytes"
	"sync/atomic"
)

// Methods are the methods counted by name (RFC 3261 and its extensions);
// a message of another method counts in the summary only.
var Methods = []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "UPDATE", "INFO",
	"SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH"}

const nMethods = 14

// Counters of one SIP entity (the switch).
type Counters struct {
	reqIn, reqOut [nMethods + 1]atomic.Uint64      // by method; the last: others
	resIn, resOut [nMethods + 1][600]atomic.Uint64 // by method of the CSeq, status 100..699
	badIn         atomic.Uint64                    // not a request or a response
}

// In counts a message received.
func (c *Counters) In(data []byte) { c.count(data, &c.reqIn, &c.resIn) }

// Out counts a message sent (each transmission: retransmissions too).
func (c *Counters) Out(data []byte) { c.count(data, &c.reqOut, &c.resOut) }

func (c *Counters) count(data []byte, req *[nMethods + 1]atomic.Uint64, res *[nMethods + 1][600]atomic.Uint64) {
	if c == nil {
		return
	}
	if status, ok := statusOf(data); ok {
		res[methodIndex(cseqMethod(data))][status-100].Add(1)
		return
	}
	sp := bytes.IndexByte(data, ' ')
	if sp <= 0 {
		c.badIn.Add(1)
		return
	}
	req[methodIndex(data[:sp])].Add(1)
}

func statusOf(data []byte) (int, bool) {
	if len(data) < 12 || string(data[:8]) != "SIP/2.0 " {
		return 0, false
	}
	d := data[8:11]
	if d[0] < '1' || d[0] > '6' || d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9' {
		return 0, false
	}
	return int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0'), true
}

func methodIndex(m []byte) int {
	for i, name := range Methods {
		if string(m) == name {
			return i
		}
	}
	return nMethods
}

// cseqMethod is the method of the message's CSeq header ("" if none).
func cseqMethod(data []byte) []byte {
	for i := bytes.IndexByte(data, '\n'); i >= 0 && i+1 < len(data); {
		line := data[i+1:]
		if end := bytes.IndexByte(line, '\n'); end >= 0 {
			line = line[:end]
		}
		if len(bytes.TrimSpace(line)) == 0 {
			return nil // the end of the headers
		}
		if len(line) > 5 && bytes.EqualFold(line[:4], []byte("cseq")) {
			rest := bytes.TrimLeft(line[4:], " \t")
			if len(rest) > 0 && rest[0] == ':' {
				f := bytes.Fields(rest[1:])
				if len(f) >= 2 {
					return f[1]
				}
				return nil
			}
		}
		next := bytes.IndexByte(data[i+1:], '\n')
		if next < 0 {
			return nil
		}
		i += 1 + next
	}
	return nil
}

// Summary is the totals of SIP-COMMON-MIB's sipCommonSummaryStatsTable.
type Summary struct{ InRequests, OutRequests, InResponses, OutResponses uint64 }

// Summary adds up every method and status.
func (c *Counters) Summary() Summary {
	var s Summary
	for m := 0; m <= nMethods; m++ {
		s.InRequests += c.reqIn[m].Load()
		s.OutRequests += c.reqOut[m].Load()
		for k := range c.resIn[m] {
			s.InResponses += c.resIn[m][k].Load()
			s.OutResponses += c.resOut[m][k].Load()
		}
	}
	return s
}

// Method is the requests of method i of Methods received and sent.
func (c *Counters) Method(i int) (in, out uint64) { return c.reqIn[i].Load(), c.reqOut[i].Load() }

// Status is the responses with status code to requests of method i
// received and sent.
func (c *Counters) Status(i, code int) (in, out uint64) {
	if code < 100 || code > 699 {
		return 0, 0
	}
	return c.resIn[i][code-100].Load(), c.resOut[i][code-100].Load()
}

// Index is name's place in Methods (-1: not counted by name).
func Index(name string) int {
	if i := methodIndex([]byte(name)); i < nMethods {
		return i
	}
	return -1
}
