package fsm

import (
	"encoding/binary"
	"fmt"
)

// A log entry carries one command (the form every version has written) or
// a packed group of commands. Packing lets one entry, one fsync and one
// round of replication serve every command that arrived while the previous
// entry was in flight (group commit, see cluster's proposer).
//
// Packed form: the marker byte, a uvarint count (at least 2), then each
// command as a uvarint length and its Encode bytes. The marker is not a
// Kind, so a single-command entry written by any version still decodes as
// before.
const packedMarker = 0xD0

// Packing bounds. The proposer never packs more; Decode accepts at most
// MaxPackCount commands, so a corrupt count cannot make a node allocate
// without bound.
const (
	// MaxPackCount is the most commands one entry carries.
	MaxPackCount = 1024
	// MaxPackBytes is the most encoded command bytes the proposer puts in
	// one entry (one command may exceed it alone).
	MaxPackBytes = 256 << 10
)

// EncodeEntry writes cmds as one log entry: a lone command in its own
// form, several packed.
func EncodeEntry(cmds []Command) []byte {
	if len(cmds) == 1 {
		return cmds[0].Encode()
	}
	b := make([]byte, 0, 8+64*len(cmds))
	b = append(b, packedMarker)
	b = binary.AppendUvarint(b, uint64(len(cmds)))
	for _, c := range cmds {
		enc := c.Encode()
		b = binary.AppendUvarint(b, uint64(len(enc)))
		b = append(b, enc...)
	}
	return b
}

// DecodeEntry is the one place a log entry becomes commands. packed says
// whether the entry used the packed form (Apply then answers with one
// Result per command). Any error wraps ErrUndecodable.
func DecodeEntry(data []byte) (cmds []Command, packed bool, err error) {
	if len(data) == 0 || data[0] != packedMarker {
		c, err := Decode(data)
		if err != nil {
			return nil, false, err
		}
		return []Command{c}, false, nil
	}
	r := reader{buf: data[1:]}
	n := r.uvarint()
	if r.err == nil && (n < 2 || n > MaxPackCount) {
		return nil, true, fmt.Errorf("%w: packed entry of %d commands", ErrUndecodable, n)
	}
	cmds = make([]Command, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		enc := r.bytes(r.uvarint())
		if r.err != nil {
			break
		}
		if len(enc) > 0 && enc[0] == packedMarker {
			return nil, true, fmt.Errorf("%w: nested packed entry", ErrUndecodable)
		}
		c, err := Decode(enc)
		if err != nil {
			return nil, true, fmt.Errorf("packed command %d: %w", i, err)
		}
		cmds = append(cmds, c)
	}
	if r.err != nil {
		return nil, true, fmt.Errorf("%w: packed entry: %v", ErrUndecodable, r.err)
	}
	if len(r.buf) != 0 {
		return nil, true, fmt.Errorf("%w: packed entry: %d trailing bytes", ErrUndecodable, len(r.buf))
	}
	return cmds, true, nil
}
