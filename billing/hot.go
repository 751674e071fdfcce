package billing

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/softswitch/softswitch/billing/cdr"
	"github.com/softswitch/softswitch/core/events"
)

// hot is the hot-billing stream (R17): each record, as soon as it is
// durable in the spool, appended as one JSON line to hot/hot-YYYYMMDD.jsonl
// (one write per record, so a reader tailing the file sees it at once)
// and published on the bus (CallRecord) for accounting. The spool and the
// closed files stay the records of reference: this stream is a copy.
type hot struct {
	dir string
	day string
	f   *os.File
	bus *events.Bus
}

func (h *hot) emit(r *cdr.Record) error {
	if h.bus != nil {
		h.bus.Publish(&events.Event{Kind: events.CallRecord, CallID: r.CallID, Detail: r})
	}
	day := time.Now().UTC().Format("20060102")
	if h.f == nil || day != h.day {
		if h.f != nil {
			h.f.Close()
		}
		if err := os.MkdirAll(h.dir, 0o750); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(h.dir, "hot-"+day+".jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return err
		}
		h.f, h.day = f, day
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = h.f.Write(append(line, '\n'))
	return err
}

func (h *hot) close() {
	if h.f != nil {
		h.f.Close()
		h.f = nil
	}
}
