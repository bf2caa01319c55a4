package mailfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strata-mail/strata/frontend/imap/mutf7"
)

// Maildir (https://cr.yp.to/proto/maildir.html): one file per message in cur/ or new/,
// flags in the file name after ":2," (a letter each, in ASCII order); Maildir++ keeps
// folders as sibling directories ".Folder.Sub" of the root, which is INBOX; Dovecot keeps
// keywords as the lowercase letters a to z, each standing for line N of dovecot-keywords
// ("N name").

// maildirFlags maps the Maildir info letters to IMAP flags; P (passed: resent, forwarded or
// bounced) has no IMAP flag and becomes the $Forwarded keyword.
var maildirFlags = map[byte]string{'D': `\Draft`, 'F': `\Flagged`, 'P': "$Forwarded", 'R': `\Answered`, 'S': `\Seen`, 'T': `\Deleted`}

// ParseMaildirInfo returns the flags and the keyword letters (a to z) of a Maildir file
// name; ok is false when the name has no ":2," info (a message in new/, or a name without
// flags), which means no flags. Unknown letters are ignored (experimental info).
func ParseMaildirInfo(name string) (flags []string, keywords []byte, ok bool) {
	i := strings.LastIndex(name, ":2,")
	if i < 0 {
		// Some systems cannot have ':' in file names and use another separator (Dovecot's
		// maildir_broken_filename_sizes, Windows tools): ";2," or "!2,".
		for _, sep := range []string{";2,", "!2,"} {
			if i = strings.LastIndex(name, sep); i >= 0 {
				break
			}
		}
		if i < 0 {
			return nil, nil, false
		}
	}
	seen := map[byte]bool{}
	for _, c := range []byte(name[i+3:]) {
		if seen[c] {
			continue
		}
		seen[c] = true
		switch {
		case maildirFlags[c] != "":
			flags = append(flags, maildirFlags[c])
		case c >= 'a' && c <= 'z':
			keywords = append(keywords, c)
		}
	}
	return flags, keywords, true
}

// MaxKeywordsFile bounds a dovecot-keywords file.
const MaxKeywordsFile = 64 << 10

// ParseDovecotKeywords reads a dovecot-keywords file: lines "N name", N from 0 to 25
// standing for the letters a to z.
func ParseDovecotKeywords(r io.Reader) (map[byte]string, error) {
	out := map[byte]string{}
	sc := bufio.NewScanner(io.LimitReader(r, MaxKeywordsFile))
	for sc.Scan() {
		num, name, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(num)
		name = strings.TrimSpace(name)
		if err != nil || n < 0 || n > 25 || !validKeyword(name) {
			continue
		}
		out[byte('a'+n)] = name
	}
	return out, sc.Err()
}

// MaildirFolder is one folder of a Maildir++ tree.
type MaildirFolder struct {
	Name string // "/"-delimited, INBOX for the root
	Dir  string
}

// MaildirFolders lists root (INBOX) and its Maildir++ folders (".A.B" is A/B, each level
// decoded from modified UTF-7). A folder is a directory with a cur/ subdirectory.
func MaildirFolders(root string) ([]MaildirFolder, error) {
	var out []MaildirFolder
	if isMaildir(root) {
		out = append(out, MaildirFolder{Name: "INBOX", Dir: root})
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		dir := filepath.Join(root, name)
		if !e.IsDir() || !strings.HasPrefix(name, ".") || name == "." || name == ".." || !isMaildir(dir) {
			continue
		}
		parts := strings.Split(name[1:], ".")
		if slices.Contains(parts, "") {
			continue
		}
		// Dovecot keeps Maildir++ folder names in modified UTF-7 (RFC 3501 5.1.3) unless
		// its mail_location says UTF-8; a level that is not valid modified UTF-7 (8-bit,
		// a stray "&") is taken as UTF-8 as it stands.
		for i, p := range parts {
			if decoded, err := mutf7.Decode(p); err == nil {
				parts[i] = decoded
			}
		}
		folder := strings.Join(parts, "/")
		if strings.EqualFold(parts[0], "INBOX") {
			folder = "INBOX/" + strings.Join(parts[1:], "/")
		}
		out = append(out, MaildirFolder{Name: folder, Dir: dir})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s is no Maildir (no cur/ directory) and holds no Maildir++ folder", root)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func isMaildir(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "cur"))
	return err == nil && st.IsDir()
}

// MaildirMessage is one message file.
type MaildirMessage struct {
	Path  string
	Flags []string
	// Date is the file's modification time, which Maildir writers set to the delivery
	// time (Dovecot reads it as the internal date).
	Date time.Time
	Size int64
}

// MaildirMessages lists the messages of a Maildir folder (new/ and cur/) in delivery
// order (Maildir names start with the delivery time), with flags and keywords (keywords:
// the folder's dovecot-keywords).
func MaildirMessages(dir string) ([]MaildirMessage, error) {
	keywords := map[byte]string{}
	if f, err := os.Open(filepath.Join(dir, "dovecot-keywords")); err == nil {
		keywords, err = ParseDovecotKeywords(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s/dovecot-keywords: %w", dir, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var out []MaildirMessage
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue // gone meanwhile
			}
			m := MaildirMessage{Path: filepath.Join(dir, sub, e.Name()), Date: info.ModTime(), Size: info.Size()}
			if sub == "cur" {
				flags, letters, _ := ParseMaildirInfo(e.Name())
				m.Flags = flags
				for _, l := range letters {
					if k := keywords[l]; k != "" {
						m.Flags = append(m.Flags, k)
					}
				}
			}
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return filepath.Base(out[i].Path) < filepath.Base(out[j].Path)
	})
	return out, nil
}

// CopyCRLF copies a message file to w with CRLF line endings (RFC 5322 2.1), at most limit
// bytes; more is an error wrapping ErrTooLarge.
func CopyCRLF(w io.Writer, r io.Reader, limit int64) error {
	out := &limitedWriter{w: w, left: limit}
	return eachLine(r, func(line []byte, more bool) error {
		writeCRLF(out, line, more)
		if out.over {
			return fmt.Errorf("longer than %d bytes: %w", limit, ErrTooLarge)
		}
		return out.err
	})
}

// eachLine calls fn with each line of r and its LF; a line longer than the buffer comes in
// pieces, more marking all but the last.
func eachLine(r io.Reader, fn func(line []byte, more bool) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		more := errors.Is(err, bufio.ErrBufferFull)
		if len(line) > 0 {
			if ferr := fn(line, more); ferr != nil {
				return ferr
			}
		}
		if more {
			continue
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
