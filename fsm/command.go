package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Kind is the type tag of a Command in the replicated log.
type Kind uint8

// Command kinds. The numeric values are written to the log and snapshots:
// never renumber them.
const (
	KindAcquire  Kind = 1 // take a free lock
	KindRelease  Kind = 2 // give a held lock back
	KindRefresh  Kind = 3 // extend a held lock's deadline
	KindTick     Kind = 4 // advance the lease clock and expire due locks
	KindAnnounce Kind = 5 // a node records its advertised API URL
)

// String names the kind for logs and errors.
func (k Kind) String() string {
	switch k {
	case KindAcquire:
		return "acquire"
	case KindRelease:
		return "release"
	case KindRefresh:
		return "refresh"
	case KindTick:
		return "tick"
	case KindAnnounce:
		return "announce"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Command is the one envelope every log entry carries: a kind plus the
// fields that kind uses. Everything Apply needs that is not in the log
// already (the token, the request id, the leader's clock reading) is decided
// before proposing and travels here, which is what makes replay
// deterministic.
type Command struct {
	Kind Kind
	// Stamp is the leader's cluster-time reading in milliseconds, taken no
	// earlier than the client's request reached the leader.
	Stamp int64
	// Name is the lock name (acquire, release, refresh).
	Name string
	// Token is the session token (acquire: the new one; release and
	// refresh: the one presented).
	Token Token
	// Lifetime in milliseconds (acquire, refresh).
	Lifetime int64
	// Owner is an optional holder label shown to readers (acquire).
	Owner string
	// RequestID is an optional client-chosen id; a repeat gets the first
	// answer (acquire, release, refresh).
	RequestID string
	// NodeID and APIURL are set by announce.
	NodeID string
	APIURL string
}

// ErrUndecodable marks a log entry that is not a Command this version
// understands. Applying such an entry is a bug: the node must stop rather
// than skip it, or the replicas fork.
var ErrUndecodable = errors.New("fsm: undecodable command")

// Encode writes the command in its log form: one kind byte, then the
// kind's fields as varints and length-prefixed strings.
func (c Command) Encode() []byte {
	b := make([]byte, 0, 48+len(c.Name)+len(c.Owner)+len(c.RequestID)+len(c.APIURL))
	b = append(b, byte(c.Kind))
	b = binary.AppendVarint(b, c.Stamp)
	switch c.Kind {
	case KindAcquire:
		b = appendString(b, c.Name)
		b = append(b, c.Token[:]...)
		b = binary.AppendVarint(b, c.Lifetime)
		b = appendString(b, c.Owner)
		b = appendString(b, c.RequestID)
	case KindRelease:
		b = appendString(b, c.Name)
		b = append(b, c.Token[:]...)
		b = appendString(b, c.RequestID)
	case KindRefresh:
		b = appendString(b, c.Name)
		b = append(b, c.Token[:]...)
		b = binary.AppendVarint(b, c.Lifetime)
		b = appendString(b, c.RequestID)
	case KindAnnounce:
		b = appendString(b, c.NodeID)
		b = appendString(b, c.APIURL)
	}
	return b
}

// Decode is the one place a log entry becomes a Command. Any error wraps
// ErrUndecodable.
func Decode(data []byte) (Command, error) {
	if len(data) == 0 {
		return Command{}, fmt.Errorf("%w: empty entry", ErrUndecodable)
	}
	r := reader{buf: data[1:]}
	c := Command{Kind: Kind(data[0])}
	c.Stamp = r.varint()
	switch c.Kind {
	case KindAcquire:
		c.Name = r.string()
		c.Token = r.token()
		c.Lifetime = r.varint()
		c.Owner = r.string()
		c.RequestID = r.string()
	case KindRelease:
		c.Name = r.string()
		c.Token = r.token()
		c.RequestID = r.string()
	case KindRefresh:
		c.Name = r.string()
		c.Token = r.token()
		c.Lifetime = r.varint()
		c.RequestID = r.string()
	case KindTick:
	case KindAnnounce:
		c.NodeID = r.string()
		c.APIURL = r.string()
	default:
		return Command{}, fmt.Errorf("%w: unknown kind %d", ErrUndecodable, data[0])
	}
	if r.err != nil {
		return Command{}, fmt.Errorf("%w: %s: %v", ErrUndecodable, c.Kind, r.err)
	}
	if len(r.buf) != 0 {
		return Command{}, fmt.Errorf("%w: %s: %d trailing bytes", ErrUndecodable, c.Kind, len(r.buf))
	}
	return c, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader consumes the binary encoding shared by commands and snapshots. The
// first error sticks; later reads return zero values.
type reader struct {
	buf []byte
	err error
}

var errShort = errors.New("truncated")

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.buf = nil
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.buf)
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if uint64(len(r.buf)) < n {
		r.fail(errShort)
		return nil
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	return b
}

func (r *reader) string() string {
	n := r.uvarint()
	return string(r.bytes(n))
}

func (r *reader) token() Token {
	var t Token
	copy(t[:], r.bytes(uint64(len(t))))
	return t
}

func (r *reader) byte() byte {
	b := r.bytes(1)
	if len(b) == 0 {
		return 0
	}
	return b[0]
}
