package call

import (
	"github.com/emiago/sipgo/sip"

	"github.com/softswitch/softswitch/core/safe"
)

// What a call queues while it holds its lock, to be done once the lock is
// released: no network I/O (a TCP write can block, a dial can wait a
// minute) ever happens under a call's lock, so the caller's CANCEL, the
// call's timers and the other leg's messages never wait behind the
// network.
type outKind uint8

const (
	outRespond outKind = iota // res through the server transaction tx
	outWrite                  // msg outside any transaction
	outFunc                   // fn: anything else that must follow the sends before it
	outAgain                  // again: a kept message outside any transaction (packed or not)
)

type outMsg struct {
	kind  outKind
	tx    sip.ServerTransaction
	msg   sip.Message
	fn    func()
	again *again
}

// respond queues res on the server transaction tx. Caller holds c.mu.
func (c *Call) respond(tx sip.ServerTransaction, res *sip.Response) {
	c.out = append(c.out, outMsg{kind: outRespond, tx: tx, msg: res})
}

// write queues msg to be sent outside any transaction. Caller holds c.mu.
func (c *Call) write(msg sip.Message) {
	c.out = append(c.out, outMsg{kind: outWrite, msg: msg})
}

// writeAgain queues a (sent outside any transaction). Caller holds c.mu.
func (c *Call) writeAgain(a *again) {
	c.out = append(c.out, outMsg{kind: outAgain, again: a})
}

// after queues fn behind what is queued so far. Caller holds c.mu.
func (c *Call) after(fn func()) {
	c.out = append(c.out, outMsg{kind: outFunc, fn: fn})
}

// lock takes the call's lock; unlock releases it and sends what was
// queued. Every lock is released by a deferred unlock, so that a panic
// never leaves a call locked (safe.Recover then releases the call, which
// takes the lock again).
func (c *Call) lock() { c.mu.Lock() }

// unlock releases the lock, then sends the queued messages in order. One
// goroutine at a time sends for a call: one that finds another sending
// leaves its messages to it, so messages leave in the order they were
// queued and nobody waits on the network holding the lock.
func (c *Call) unlock() {
	if c.dirty {
		c.replicate()
	}
	if c.flushing || len(c.out) == 0 {
		c.mu.Unlock()
		return
	}
	c.flushing = true
	for {
		batch := c.out
		c.out = nil
		c.mu.Unlock()
		for i := range batch {
			c.send(&batch[i])
		}
		c.mu.Lock()
		if len(c.out) == 0 {
			c.flushing = false
			c.mu.Unlock()
			return
		}
	}
}

// send performs one queued action; a failure or a panic costs that
// message only.
func (c *Call) send(o *outMsg) {
	defer safe.Recover("call send")
	var err error
	switch o.kind {
	case outRespond:
		err = o.tx.Respond(o.msg.(*sip.Response))
	case outWrite:
		err = c.m.wire.Write(o.msg)
	case outFunc:
		o.fn()
	case outAgain:
		err = o.again.sendOn(c.m.wire)
	}
	if err != nil {
		msg := o.msg
		if o.again != nil && o.again.req != nil {
			msg = o.again.req
		}
		c.m.log.Debug("send failed", "call", c.a.callID, "msg", startLine(msg), "err", err)
	}
}

func startLine(m sip.Message) string {
	switch x := m.(type) {
	case *sip.Request:
		return x.StartLine()
	case *sip.Response:
		return x.StartLine()
	}
	return ""
}
