package numbering

import "testing"

var de = Country{Code: "49", NationalPrefix: "0", InternationalPrefix: "00"}

func TestOps(t *testing.T) {
	cases := []struct {
		ops  []string
		in   string
		want string
	}{
		{[]string{"delete 0 2"}, "0030123", "30123"},
		{[]string{"delete 2 3"}, "1234567", "1267"},
		{[]string{"delete 5 9"}, "1234567", "12345"},
		{[]string{"delete 9 1"}, "123", "123"},
		{[]string{"delete 0 2"}, "+4930", "+30"},
		{[]string{"insert 0 1010"}, "0301234", "10100301234"},
		{[]string{"insert 3 #"}, "123456", "123#456"},
		{[]string{"insert 28 9"}, "123", "1239"},
		{[]string{"replace 0049 +49"}, "0049301234", "+49301234"},
		{[]string{"replace +49 0"}, "+49301234", "0301234"},
		{[]string{"replace 1010"}, "1010030123", "030123"},
		{[]string{"replace 1010"}, "0301010", "0301010"},
		{[]string{"e164"}, "0301234", "+49301234"},
		{[]string{"e164"}, "00331234", "+331234"},
		{[]string{"e164"}, "+331234", "+331234"},
		{[]string{"e164"}, "1234", "1234"},
		{[]string{"national"}, "+49301234", "0301234"},
		{[]string{"national"}, "+331234", "00331234"},
		{[]string{"national"}, "0301234", "0301234"},
		{[]string{"international"}, "+49301234", "0049301234"},
		{[]string{"international"}, "0301234", "0301234"},
		// composition runs in order
		{[]string{"replace 1010", "e164", "insert 0 99"}, "1010030123", "+994930123"},
		{[]string{"e164", "delete 0 2", "insert 0 1"}, "0301234", "+1301234"},
	}
	for _, c := range cases {
		ops, err := ParseOps(c.ops)
		if err != nil {
			t.Fatalf("%v: %v", c.ops, err)
		}
		if got := Apply(ops, c.in, de); got != c.want {
			t.Errorf("%v on %q = %q, want %q", c.ops, c.in, got, c.want)
		}
	}
}

func TestOpErrors(t *testing.T) {
	for _, s := range []string{"", "delete", "delete 1", "delete a 1", "delete -1 2", "delete 1 2 3",
		"insert 0", "insert 0 12a", "replace", "replace 1 2 3", "replace a b", "e164 now", "shuffle 1"} {
		if _, err := ParseOp(s); err == nil {
			t.Errorf("%q parsed, want an error", s)
		}
	}
	for _, s := range []string{"delete 0 2", "insert 0 1010", "replace 0049 +49", "replace 9", "e164", "national", "international"} {
		op, err := ParseOp(s)
		if err != nil {
			t.Errorf("%q: %v", s, err)
		} else if op.String() != s {
			t.Errorf("%q prints as %q", s, op.String())
		}
	}
}

func TestLimits(t *testing.T) {
	l := Limits{MaxCalling: 20, MaxCalled: 24}
	n := func(k int) string {
		b := make([]byte, k)
		for i := range b {
			b[i] = '0' + byte(i%10)
		}
		return string(b)
	}
	if r := l.CheckCalled(n(24)); r != nil {
		t.Errorf("24 digits refused: %v", r)
	}
	if r := l.CheckCalled("+" + n(24)); r != nil {
		t.Errorf("+ and 24 digits refused: %v", r)
	}
	if r := l.CheckCalled(n(25)); r == nil || r.Status != 484 || r.Cause != 28 {
		t.Errorf("25 digits: %v, want 484 cause 28", r)
	}
	if r := l.CheckCalling(n(20)); r != nil {
		t.Errorf("calling 20 digits refused: %v", r)
	}
	if r := l.CheckCalling(n(21)); r == nil {
		t.Error("calling 21 digits accepted")
	}
	if r := l.CheckCalling("anonymous"); r != nil {
		t.Errorf("a non-numeric calling identity is not a number to refuse: %v", r)
	}
	if r := l.CheckCalled("*100#"); r == nil {
		t.Error("* and # accepted while not allowed")
	}
	l.AllowStarHash = true
	if r := l.CheckCalled("*100#"); r != nil {
		t.Errorf("*100# refused with * and # allowed: %v", r)
	}
	if r := l.CheckCalled("12a4"); r == nil {
		t.Error("a letter accepted")
	}
	l.MaxCalled = 28
	if r := l.CheckCalled(n(28)); r != nil {
		t.Errorf("28 digits refused at limit 28: %v", r)
	}
	if r := l.CheckCalled(n(29)); r == nil {
		t.Error("29 digits accepted")
	}
	if (Limits{MaxCalling: 20, MaxCalled: 29}).Validate() == nil {
		t.Error("limit 29 accepted")
	}
}
