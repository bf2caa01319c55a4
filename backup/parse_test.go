package backup

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseLocation(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want Location
		bad  bool
	}{
		{spec: "/var/backups/strata", want: Location{Dir: "/var/backups/strata"}},
		{spec: "backups/", want: Location{Dir: "backups"}},
		{spec: "s3://strata-backups", want: Location{Bucket: "strata-backups"}},
		{spec: "s3://strata-backups/nightly/", want: Location{Bucket: "strata-backups", Prefix: "nightly/"}},
		{spec: "s3://strata-backups//a/b", want: Location{Bucket: "strata-backups", Prefix: "a/b/"}},
		{spec: "", bad: true},
		{spec: "s3://", bad: true},
		{spec: "s3://Upper/x", bad: true},
		{spec: "s3://ab/x", bad: true},
		{spec: "s3://bucket/../x", bad: true},
		{spec: "s3://bucket/a\nb", bad: true},
		{spec: "https://bucket/x", bad: true},
	} {
		got, err := ParseLocation(tc.spec)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseLocation(%q) = %+v, want an error", tc.spec, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseLocation(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
}

func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{"/tmp/b", "s3://bucket/prefix", "s3://b.c-d/x/y/", "s3://x", "s3://bucket/../..", "a://b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		loc, err := ParseLocation(spec)
		if err != nil {
			return
		}
		if (loc.Dir == "") == (loc.Bucket == "") {
			t.Fatalf("ParseLocation(%q) = %+v: exactly one of a directory and a bucket", spec, loc)
		}
		if loc.Bucket != "" {
			if !bucketPattern.MatchString(loc.Bucket) || (loc.Prefix != "" && !strings.HasSuffix(loc.Prefix, "/")) {
				t.Fatalf("ParseLocation(%q) = %+v", spec, loc)
			}
			for _, seg := range strings.Split(loc.Prefix, "/") {
				if seg == ".." {
					t.Fatalf("ParseLocation(%q) = %+v: a .. segment", spec, loc)
				}
			}
		}
	})
}

func validManifest() *Manifest {
	return &Manifest{Version: ManifestVersion, ID: "20261206T010203Z", Started: time.Unix(1, 0).UTC(), AppliedIndex: 42,
		SnapshotSHA256: strings.Repeat("ab", 32), BlobListSHA256: strings.Repeat("cd", 32), Messages: 3, Blobs: 2}
}

func TestParseManifest(t *testing.T) {
	good, _ := json.Marshal(validManifest())
	if m, err := ParseManifest(bytes.NewReader(good)); err != nil || m.AppliedIndex != 42 {
		t.Fatalf("ParseManifest(valid) = %+v, %v", m, err)
	}
	for name, change := range map[string]func(*Manifest){
		"version":  func(m *Manifest) { m.Version = 2 },
		"id":       func(m *Manifest) { m.ID = "../../etc" },
		"index":    func(m *Manifest) { m.AppliedIndex = 0 },
		"checksum": func(m *Manifest) { m.SnapshotSHA256 = "zz" },
	} {
		m := validManifest()
		change(m)
		data, _ := json.Marshal(m)
		if _, err := ParseManifest(bytes.NewReader(data)); err == nil {
			t.Errorf("ParseManifest with a bad %s: no error", name)
		}
	}
	if _, err := ParseManifest(bytes.NewReader(bytes.Repeat([]byte(" "), maxManifestBytes+10))); err == nil {
		t.Error("ParseManifest of an oversized manifest: no error")
	}
}

func FuzzParseManifest(f *testing.F) {
	good, _ := json.Marshal(validManifest())
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"id":"20261206T010203Z-12","applied_index":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(bytes.NewReader(data))
		if err != nil {
			return
		}
		if !ValidID(m.ID) || m.Version != ManifestVersion || m.AppliedIndex == 0 {
			t.Fatalf("ParseManifest accepted %+v", m)
		}
	})
}
