package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Entry is one stored audit entry.
type Entry struct {
	Seq          int64
	At           time.Time // UTC, microsecond precision (what both engines keep)
	OrgID        int64     // 0: instance-level (CLI, jobs without an organisation)
	ActorID      int64     // agent ID, 0 when the actor is not an agent
	Actor        string    // agent email, or "system", "cli"…
	ClientIP     string
	RequestID    string
	Action       string
	ResourceType string
	ResourceID   string
	Before       *string // canonical JSON, nil when absent
	After        *string
	PrevHash     string
	Hash         string
}

// Genesis is the prev_hash of the first entry.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// hashVersion names the encoding below; a new encoding would get a new tag.
const hashVersion = "parvis.audit.v1"

// ComputeHash returns the hex SHA-256 of e's fields and PrevHash (e.Hash is ignored).
//
// The encoding is unambiguous: every field is written as an 8-byte big-endian length
// followed by its bytes, in a fixed order, so that no two different entries encode alike
// (moving a character from one field to the next changes both lengths). Absent JSON is
// written with a distinct marker, so nil, "" and "null" differ.
func ComputeHash(e *Entry) string {
	var b bytes.Buffer
	put := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		b.Write(n[:])
		b.WriteString(s)
	}
	putInt := func(i int64) { put(strconv.FormatInt(i, 10)) }
	putJSON := func(s *string) {
		if s == nil {
			b.WriteByte(0)
			return
		}
		b.WriteByte(1)
		put(*s)
	}
	put(hashVersion)
	putInt(e.Seq)
	putInt(e.At.UnixMicro())
	putInt(e.OrgID)
	putInt(e.ActorID)
	put(e.Actor)
	put(e.ClientIP)
	put(e.RequestID)
	put(e.Action)
	put(e.ResourceType)
	put(e.ResourceID)
	putJSON(e.Before)
	putJSON(e.After)
	put(e.PrevHash)
	sum := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(sum[:])
}

// CanonicalJSON encodes v as compact JSON with object keys sorted at every depth and numbers
// kept as written, so the same value always gives the same bytes. nil (and a value encoding
// to null) gives nil: "nothing before a creation".
func CanonicalJSON(v any) (*string, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("audit: encoding value: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("audit: re-reading value: %w", err)
	}
	if generic == nil {
		return nil, nil
	}
	// encoding/json writes map keys sorted and json.Number verbatim.
	out, err := json.Marshal(generic)
	if err != nil {
		return nil, fmt.Errorf("audit: canonical encoding: %w", err)
	}
	s := string(out)
	return &s, nil
}
