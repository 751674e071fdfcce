package sdpinfo

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
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
	// T.38 fax (pion/sdp refused m=image).
	fax, err := Parse([]byte("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=image 9 udptl t38\r\n"))
	if err != nil || len(fax) != 1 || Strings(fax)[0] != "image t38" {
		t.Fatalf("T.38 offer: %+v %v", fax, err)
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

// pionParse is the former implementation over pion/sdp, the reference
// the line scanner is checked against.
func pionParse(body []byte) ([]Media, error) {
	var s sdp.SessionDescription
	if err := s.UnmarshalString(string(body)); err != nil {
		return nil, err
	}
	dir := func(attrs []sdp.Attribute, def string) string {
		for _, a := range attrs {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				return a.Key
			}
		}
		return def
	}
	sessDir := dir(s.Attributes, "sendrecv")
	out := make([]Media, 0, len(s.MediaDescriptions))
	for _, m := range s.MediaDescriptions {
		md := Media{Type: m.MediaName.Media, Port: m.MediaName.Port.Value, Dir: dir(m.Attributes, sessDir)}
		rtpmap := map[string]string{}
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" {
				if sp := strings.IndexByte(a.Value, ' '); sp > 0 {
					if _, dup := rtpmap[a.Value[:sp]]; !dup {
						rtpmap[a.Value[:sp]] = strings.TrimSpace(a.Value[sp+1:])
					}
				}
			}
		}
		for _, f := range m.MediaName.Formats {
			if name, ok := rtpmap[f]; ok {
				md.Codecs = append(md.Codecs, name)
			} else if n, err := strconv.Atoi(f); err == nil && staticNames[n] != "" {
				md.Codecs = append(md.Codecs, staticNames[n])
			} else {
				md.Codecs = append(md.Codecs, f)
			}
		}
		out = append(out, md)
	}
	return out, nil
}

// TestAgainstPion: on real-world offers and answers the scanner reads
// the same media as pion/sdp did.
func TestAgainstPion(t *testing.T) {
	bodies := []string{
		offer,
		"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\na=recvonly\r\nm=audio 1/2 RTP/AVP 0 18\r\nm=audio 0 RTP/AVP 3\r\n",
		"v=0\no=systest-caller 1001 1 IN IP4 127.0.0.1\ns=systest-caller-session\nc=IN IP4 127.0.0.1\nt=0 0\n" +
			"m=audio 40000 RTP/AVP 0 8 101\na=rtpmap:0 PCMU/8000\na=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\na=sendrecv\n",
		"v=0\r\no=- 2 2 IN IP6 ::1\r\ns=x\r\nc=IN IP6 ::1\r\nt=0 0\r\na=inactive\r\n" +
			"m=audio 5004 RTP/SAVP 96 97 9\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:97 AMR-WB/16000\r\na=fmtp:97 octet-align=1\r\na=sendonly\r\n" +
			"m=video 5006 RTP/AVPF 98\r\na=rtpmap:98 VP8/90000\r\na=rtcp-fb:98 nack\r\n",
	}
	for _, b := range bodies {
		want, err := pionParse([]byte(b))
		if err != nil {
			t.Fatalf("pion: %v", err)
		}
		got, err := Parse([]byte(b))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\ngot  %+v (%v)\npion %+v", b, got, err, want)
		}
	}
}
