package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// Session is a connection with what it knows of its selected mailbox, kept current from the
// untagged EXISTS and EXPUNGE responses it reads (RFC 9051 7.4.1, 7.5.1).
type Session struct {
	*Conn
	Selected    bool
	Exists      int
	UIDNext     uint32
	UIDValidity uint32
}

// FetchData is one untagged FETCH response: its sequence number and its items by upper-case
// name ("UID", "FLAGS", "ENVELOPE", "BODY[]", "RFC822.SIZE").
type FetchData struct {
	Seq   int
	Items map[string]Value
}

// UID returns the message's UID item, or 0.
func (f *FetchData) UID() uint32 {
	v, ok := f.Items["UID"]
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(v.Atom, 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

// Absorb updates the mailbox view from res's untagged responses and returns the FETCH
// responses and the SEARCH results it held.
func (s *Session) Absorb(res *Result) (fetches []FetchData, search []uint32, err error) {
	if res == nil {
		return nil, nil, nil
	}
	for _, resp := range res.Untagged {
		text := resp.Text
		// Cheap paths for the common forms, before any tokenizing.
		rest := text[2:]
		num, after, _ := strings.Cut(rest, " ")
		n, numErr := strconv.Atoi(num)
		switch {
		case numErr == nil && strings.EqualFold(after, "EXISTS"):
			s.Exists = n
		case numErr == nil && strings.EqualFold(after, "EXPUNGE"):
			if n < 1 || n > s.Exists {
				return nil, nil, &ProtocolError{Msg: fmt.Sprintf("EXPUNGE %d with %d messages", n, s.Exists)}
			}
			s.Exists--
		case numErr == nil && len(after) > 6 && strings.EqualFold(after[:6], "FETCH "):
			fields, err := resp.Fields()
			if err != nil {
				return nil, nil, err
			}
			if len(fields) != 4 || !fields[3].IsList || len(fields[3].List)%2 != 0 {
				return nil, nil, &ProtocolError{Msg: "malformed FETCH: " + truncate(text)}
			}
			if n < 1 || n > s.Exists {
				return nil, nil, &ProtocolError{Msg: fmt.Sprintf("FETCH of message %d with %d messages", n, s.Exists)}
			}
			fd := FetchData{Seq: n, Items: make(map[string]Value, len(fields[3].List)/2)}
			for i := 0; i < len(fields[3].List); i += 2 {
				fd.Items[strings.ToUpper(fields[3].List[i].Atom)] = fields[3].List[i+1]
			}
			fetches = append(fetches, fd)
		case strings.HasPrefix(strings.ToUpper(rest), "SEARCH"):
			for _, f := range strings.Fields(rest[len("SEARCH"):]) {
				uid, err := strconv.ParseUint(f, 10, 32)
				if err != nil {
					return nil, nil, &ProtocolError{Msg: "SEARCH result " + strconv.Quote(f)}
				}
				search = append(search, uint32(uid))
			}
		case strings.HasPrefix(strings.ToUpper(rest), "OK [UIDNEXT "):
			if v, err := strconv.ParseUint(strings.TrimSuffix(strings.Fields(rest[len("OK [UIDNEXT "):])[0], "]"), 10, 32); err == nil {
				s.UIDNext = uint32(v)
			}
		case strings.HasPrefix(strings.ToUpper(rest), "OK [UIDVALIDITY "):
			if v, err := strconv.ParseUint(strings.TrimSuffix(strings.Fields(rest[len("OK [UIDVALIDITY "):])[0], "]"), 10, 32); err == nil {
				s.UIDValidity = uint32(v)
			}
		}
	}
	return fetches, search, nil
}

// Run executes a command and absorbs its untagged responses.
func (s *Session) Run(command string) (*Result, []FetchData, []uint32, error) {
	res, err := s.Exec(command)
	fetches, search, aerr := s.Absorb(res)
	if err != nil {
		return res, nil, nil, err
	}
	if aerr != nil {
		return res, nil, nil, aerr
	}
	return res, fetches, search, nil
}

// Select opens mailbox and checks that the server reported EXISTS, UIDVALIDITY and UIDNEXT
// (RFC 9051 6.3.2 requires all three).
func (s *Session) Select(mailbox string) error {
	s.Selected = false
	s.Exists, s.UIDNext, s.UIDValidity = -1, 0, 0
	if _, _, _, err := s.Run("SELECT " + Quote(mailbox)); err != nil {
		return fmt.Errorf("select %s: %w", mailbox, err)
	}
	if s.Exists < 0 || s.UIDValidity == 0 || s.UIDNext == 0 {
		return &VerifyError{Msg: fmt.Sprintf("SELECT without EXISTS, UIDVALIDITY or UIDNEXT (exists %d, uidvalidity %d, uidnext %d)", s.Exists, s.UIDValidity, s.UIDNext)}
	}
	s.Selected = true
	return nil
}

// appendUID returns the UID of an APPENDUID response code (RFC 4315 3) in a tagged OK.
func appendUID(text string) (uint32, error) {
	up := strings.ToUpper(text)
	i := strings.Index(up, "[APPENDUID ")
	if i < 0 {
		return 0, &VerifyError{Msg: "APPEND without APPENDUID: " + truncate(text)}
	}
	f := strings.Fields(strings.TrimRight(text[i+len("[APPENDUID "):], "]"))
	if len(f) < 2 {
		return 0, &VerifyError{Msg: "malformed APPENDUID: " + truncate(text)}
	}
	uid, err := strconv.ParseUint(strings.TrimSuffix(f[1], "]"), 10, 32)
	if err != nil || uid == 0 {
		return 0, &VerifyError{Msg: "malformed APPENDUID: " + truncate(text)}
	}
	return uint32(uid), nil
}

// hasFlag reports whether a FLAGS list holds flag (case-insensitively, RFC 9051 2.3.2).
func hasFlag(flags Value, flag string) bool {
	for _, f := range flags.List {
		if strings.EqualFold(f.Atom, flag) {
			return true
		}
	}
	return false
}
