package outbound

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-mail/strata/internal/fsync"
)

// Spool layout: DIR/<id>.msg are queued messages, DIR/tmp holds files being
// written, DIR/bad the files that could not be read back (kept for a human).
const (
	spoolExt      = ".msg"
	spoolTmpDir   = "tmp"
	spoolBadDir   = "bad"
	spoolMagic    = "strata-outbound 1"
	maxHeaderLine = 1 << 20 // an envelope line longer than this is corrupt
)

// spoolHeader is the first line of a spool file after the magic line, as
// JSON; the message bytes follow it.
type spoolHeader struct {
	From    string    `json:"from"`
	To      []string  `json:"to"`
	Created time.Time `json:"created"`
	Size    int64     `json:"size"`
}

// spool is the directory of queued messages.
type spool struct {
	dir string
}

// spooled is one queued message as found on disk.
type spooled struct {
	id      string
	env     Envelope
	created time.Time
	size    int64
}

func openSpool(dir string) (*spool, error) {
	if dir == "" {
		return nil, errors.New("outbound spool: no directory given")
	}
	for _, d := range []string{dir, filepath.Join(dir, spoolTmpDir), filepath.Join(dir, spoolBadDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("outbound spool: %w", err)
		}
	}
	// A file left in tmp/ was never renamed into place: its Enqueue did not
	// return nil, so nobody counts on it.
	tmps, err := os.ReadDir(filepath.Join(dir, spoolTmpDir))
	if err != nil {
		return nil, fmt.Errorf("outbound spool: %w", err)
	}
	for _, e := range tmps {
		if err := os.Remove(filepath.Join(dir, spoolTmpDir, e.Name())); err != nil {
			return nil, fmt.Errorf("outbound spool: remove unfinished %s: %w", e.Name(), err)
		}
	}
	return &spool{dir: dir}, nil
}

// newID returns a spool file name that sorts by creation time.
func newID(now time.Time) string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%016x-%s", now.UnixNano(), hex.EncodeToString(r[:]))
}

func (s *spool) path(id string) string { return filepath.Join(s.dir, id+spoolExt) }

// write stores a message under id atomically: tmp file, fsync, rename,
// fsync of the directory. An existing file of that id is replaced whole.
func (s *spool) write(m spooled, msg []byte) error {
	hdr, err := json.Marshal(spoolHeader{From: m.env.From, To: m.env.To, Created: m.created, Size: int64(len(msg))})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, spoolTmpDir), m.id+"-*")
	if err != nil {
		return fmt.Errorf("outbound spool: %w", err)
	}
	tmpName := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmpName)
		return fmt.Errorf("outbound spool: write %s: %w", m.id, err)
	}
	w := bufio.NewWriter(tmp)
	w.WriteString(spoolMagic + "\n")
	w.Write(hdr)
	w.WriteByte('\n')
	w.Write(msg)
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmpName, s.path(m.id)); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("outbound spool: write %s: %w", m.id, err)
	}
	return fsync.Dir(s.dir)
}

// read returns the message bytes of id and its header.
func (s *spool) read(id string) (spooled, []byte, error) {
	raw, err := os.ReadFile(s.path(id))
	if err != nil {
		return spooled{}, nil, fmt.Errorf("outbound spool: %w", err)
	}
	m, body, err := parseSpoolFile(raw)
	if err != nil {
		return spooled{}, nil, fmt.Errorf("outbound spool: %s: %w", id, err)
	}
	m.id = id
	return m, body, nil
}

func parseSpoolFile(raw []byte) (spooled, []byte, error) {
	magic, rest, ok := bytes.Cut(raw, []byte("\n"))
	if !ok || string(magic) != spoolMagic {
		return spooled{}, nil, errors.New("not an outbound spool file")
	}
	line, body, ok := bytes.Cut(rest, []byte("\n"))
	if !ok || len(line) > maxHeaderLine {
		return spooled{}, nil, errors.New("no envelope line")
	}
	var h spoolHeader
	if err := json.Unmarshal(line, &h); err != nil {
		return spooled{}, nil, fmt.Errorf("envelope: %w", err)
	}
	if int64(len(body)) != h.Size {
		return spooled{}, nil, fmt.Errorf("message is %d bytes, envelope says %d", len(body), h.Size)
	}
	env := Envelope{From: h.From, To: h.To}
	if err := env.check(); err != nil {
		return spooled{}, nil, err
	}
	return spooled{env: env, created: h.Created, size: h.Size}, body, nil
}

// load lists the queued messages; a file that cannot be parsed is moved to
// bad/ and reported through onBad.
func (s *spool) load(onBad func(name string, err error)) ([]spooled, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("outbound spool: %w", err)
	}
	var out []spooled
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, spoolExt) {
			continue
		}
		id := strings.TrimSuffix(name, spoolExt)
		m, _, err := s.read(id)
		if err != nil {
			onBad(name, err)
			if err := s.setAside(id); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// setAside moves a message file that cannot be read to bad/.
func (s *spool) setAside(id string) error {
	if err := os.Rename(s.path(id), filepath.Join(s.dir, spoolBadDir, id+spoolExt)); err != nil {
		return fmt.Errorf("outbound spool: set aside %s: %w", id, err)
	}
	return nil
}

// remove deletes a message from the spool.
func (s *spool) remove(id string) error {
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("outbound spool: %w", err)
	}
	return nil
}
