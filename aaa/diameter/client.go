package diameter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
)

// Client sends requests to the first open peer of an ordered list, and
// to the next when that one fails.
type Client struct {
	Peers   []*Peer
	Timeout time.Duration // an answer's wait on one peer (Tx); default 5 s
}

// ErrNoPeer: no peer is open.
var ErrNoPeer = errors.New("diameter: no peer is open")

// Send returns the answer to m from the first open peer; when a peer is
// lost, or does not answer in time, m goes to the next with the T flag
// set (RFC 6733 §5.5.4: a possible retransmission), the same End-to-End
// Identifier, so that the server can tell a repetition.
func (c *Client) Send(ctx context.Context, m *diam.Message) (*diam.Message, error) {
	return c.send(ctx, m, true)
}

// SendOne is Send without failover: the first open peer only.
func (c *Client) SendOne(ctx context.Context, m *diam.Message) (*diam.Message, error) {
	return c.send(ctx, m, false)
}

// tx is the wait for one peer's answer.
func (c *Client) tx() time.Duration {
	if c.Timeout <= 0 {
		return 5 * time.Second
	}
	return c.Timeout
}

func (c *Client) send(ctx context.Context, m *diam.Message, failover bool) (*diam.Message, error) {
	timeout := c.tx()
	var last error = ErrNoPeer
	tried := false
	for _, p := range c.Peers {
		if !p.Open() {
			continue
		}
		if tried {
			m.Header.CommandFlags |= diam.RetransmittedFlag
		}
		tried = true
		tctx, cancel := context.WithTimeout(ctx, timeout)
		a, err := p.Send(tctx, m)
		cancel()
		if err == nil {
			return a, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		last = fmt.Errorf("diameter peer %s: %w", p.Addr(), err)
		if !failover {
			break
		}
	}
	return nil, last
}
