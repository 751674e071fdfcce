package sdpinfo

import (
	"reflect"
	"testing"
)

const offer = "v=0\r\no=user1 53655765 2353687637 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
	"m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n" +
	"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"

func TestParse(t *testing.T) {
	ms, err := Parse([]byte(offer))
	if err != nil {
		t.Fatal(err)
	}
	want := []Media{
		{Type: "audio", Port: 6000, Codecs: []string{"PCMU/8000", "PCMA/8000", "telephone-event/8000"}, Dir: "sendonly"},
		{Type: "video", Port: 0, Codecs: []string{"H264/90000"}, Dir: "sendrecv"},
	}
	if !reflect.DeepEqual(ms, want) {
		t.Fatalf("got %+v", ms)
	}
	if s := Strings(ms); s[0] != "audio PCMU/8000 PCMA/8000 telephone-event/8000" {
		t.Fatalf("strings %q", s)
	}
	if _, err := Parse([]byte("not sdp")); err == nil {
		t.Fatal("garbage parsed")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(offer))
	f.Add([]byte("v=0\r\nm=audio 1 RTP/AVP 0\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := Parse(b)
		if err == nil {
			_ = Strings(ms)
		}
	})
}
