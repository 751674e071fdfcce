module github.com/softswitch/softswitch

go 1.26.8

require (
	github.com/emiago/sipgo v1.7.2
	github.com/fclairamb/ftpserverlib v0.32.3
	github.com/fiorix/go-diameter/v4 v4.3.0
	github.com/gosnmp/gosnmp v1.47.0
	github.com/icholy/digest v1.2.0
	github.com/jlaffaye/ftp v0.2.4
	github.com/miekg/dns v1.1.73
	github.com/pelletier/go-toml/v2 v2.4.3
	github.com/pion/sdp/v3 v3.0.20
	github.com/pkg/sftp v1.13.12
	github.com/spf13/afero v1.15.0
	go.etcd.io/bbolt v1.5.0
	golang.org/x/crypto v0.59.0
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.50.0
	layeh.com/radius v0.0.0-20231213012653-1006025d24f8
)

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/pool v0.2.1 // indirect
	github.com/gobwas/ws v1.3.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/ishidawataru/sctp v0.0.0-20251114114122-19ddcbc6aae2 // indirect
	github.com/kr/fs v0.1.0 // indirect
	github.com/pion/randutil v0.1.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/term v0.48.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)
