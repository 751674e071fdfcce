package events

import "testing"

func TestBusOrder(t *testing.T) {
	b := New()
	var got []string
	b.Subscribe(func(e *Event) { got = append(got, "a:"+e.Kind.String()) })
	b.Subscribe(func(e *Event) { got = append(got, "b:"+e.Kind.String()) })
	e := &Event{Kind: CallAttempt}
	b.Publish(e)
	if len(got) != 2 || got[0] != "a:attempt" || got[1] != "b:attempt" || e.Time.IsZero() {
		t.Fatalf("got %v", got)
	}
}
