// Package sdpinfo reads the media description of a call from its SDP
// (R5): media types and codecs, for call records. The SDP itself is
// relayed unchanged; this only reads it.
package sdpinfo

import (
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Media is one m= line: its type and the codecs offered, in order.
type Media struct {
	Type   string   // audio, video, image, ...
	Port   int      // 0 means the stream is declined
	Codecs []string // e.g. "PCMU/8000", "telephone-event/8000"
	Dir    string   // sendrecv, sendonly, recvonly, inactive
}

// Parse reads body. Bodies that are not valid SDP give an error; callers
// relay them anyway and record no media.
func Parse(body []byte) ([]Media, error) {
	var s sdp.SessionDescription
	if err := s.UnmarshalString(string(body)); err != nil {
		return nil, err
	}
	sessDir := direction(s.Attributes, "sendrecv")
	out := make([]Media, 0, len(s.MediaDescriptions))
	for _, m := range s.MediaDescriptions {
		md := Media{Type: m.MediaName.Media, Port: m.MediaName.Port.Value, Dir: direction(m.Attributes, sessDir)}
		rtpmap := map[string]string{}
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" {
				if sp := strings.IndexByte(a.Value, ' '); sp > 0 {
					rtpmap[a.Value[:sp]] = strings.TrimSpace(a.Value[sp+1:])
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

func direction(attrs []sdp.Attribute, def string) string {
	for _, a := range attrs {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return a.Key
		}
	}
	return def
}

// Strings renders media as "audio PCMU/8000 PCMA/8000" lines.
func Strings(ms []Media) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, strings.TrimSpace(m.Type+" "+strings.Join(m.Codecs, " ")))
	}
	return out
}

// RTP/AVP static payload types (RFC 3551) used without an rtpmap.
var staticNames = map[int]string{
	0: "PCMU/8000", 3: "GSM/8000", 4: "G723/8000", 8: "PCMA/8000", 9: "G722/8000",
	13: "CN/8000", 18: "G729/8000", 34: "H263/90000",
}
