// Package sdpinfo reads the media description of a call from its SDP
// (R5): media types and codecs, for call records. The SDP itself is
// relayed unchanged; this only reads it.
package sdpinfo

import (
	"errors"
	"strconv"
	"strings"
)

// Media is one m= line: its type and the codecs offered, in order.
type Media struct {
	Type   string   // audio, video, image, ...
	Port   int      // 0 means the stream is declined
	Codecs []string // e.g. "PCMU/8000", "telephone-event/8000"
	Dir    string   // sendrecv, sendonly, recvonly, inactive
}

// Parse reads body. Bodies that are not SDP (a "v=" line first; m= lines
// with a numeric port) give an error; callers relay them anyway and record no media. It reads only
// what records need, line by line, without building the whole session
// description (it runs once or twice per call).
func Parse(body []byte) ([]Media, error) {
	text := string(body)
	var (
		out     []Media
		sessDir = ""
		cur     *Media
		fmts    []string
		rtpmap  [][2]string // payload type -> encoding name, this m= section
		first   = true
	)
	flush := func() {
		if cur == nil {
			return
		}
		for _, f := range fmts {
			name := ""
			for _, r := range rtpmap {
				if r[0] == f {
					name = r[1]
					break
				}
			}
			if name == "" {
				if n, err := strconv.Atoi(f); err == nil && staticNames[n] != "" {
					name = staticNames[n]
				} else {
					name = f
				}
			}
			cur.Codecs = append(cur.Codecs, name)
		}
		out = append(out, *cur)
		cur, fmts, rtpmap = nil, nil, rtpmap[:0]
	}
	for len(text) > 0 {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if first {
			if !strings.HasPrefix(line, "v=") {
				return nil, errors.New("sdp: the first line is not v=")
			}
			first = false
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			continue // not a type=value line: read past it, as pion/sdp does
		}
		val := line[2:]
		switch line[0] {
		case 'm':
			flush()
			f := strings.Fields(val)
			if len(f) < 3 {
				return nil, errors.New("sdp: short m= line")
			}
			port, _, _ := strings.Cut(f[1], "/")
			n, err := strconv.Atoi(port)
			if err != nil || n < 0 || n > 65535 {
				return nil, errors.New("sdp: bad port in m= line")
			}
			cur = &Media{Type: f[0], Port: n}
			fmts = f[3:]
		case 'a':
			key, v, _ := strings.Cut(val, ":")
			switch key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				if cur != nil {
					if cur.Dir == "" {
						cur.Dir = key
					}
				} else if sessDir == "" {
					sessDir = key
				}
			case "rtpmap":
				if cur != nil {
					if sp := strings.IndexByte(v, ' '); sp > 0 {
						rtpmap = append(rtpmap, [2]string{v[:sp], strings.TrimSpace(v[sp+1:])})
					}
				}
			}
		}
	}
	if first {
		return nil, errors.New("sdp: empty")
	}
	flush()
	if sessDir == "" {
		sessDir = "sendrecv"
	}
	for i := range out {
		if out[i].Dir == "" {
			out[i].Dir = sessDir
		}
	}
	return out, nil
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
