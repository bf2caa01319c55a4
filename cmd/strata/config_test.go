package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
)

// TestConfigPrecedence checks that flags win over STRATA_* variables, which win over the
// YAML file, which wins over the defaults.
func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "strata.yaml")
	yaml := "data: /from/file\nimap-listen: 127.0.0.1:1000\ngrpc-listen: 127.0.0.1:2000\nmax-message-size: 12345\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STRATA_IMAP_LISTEN", "127.0.0.1:3000")
	t.Setenv("STRATA_GRPC_LISTEN", "127.0.0.1:4000")

	var got map[string]string
	root := newRootCommand()
	serve, _, err := root.Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	serve.RunE = func(cmd *cobra.Command, _ []string) error {
		got = map[string]string{}
		for _, name := range []string{"data", "imap-listen", "grpc-listen", "max-message-size", "log-level"} {
			got[name] = cmd.Flags().Lookup(name).Value.String()
		}
		return nil
	}
	root.SetArgs([]string{"serve", "--config", file, "--grpc-listen", "127.0.0.1:5000"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"data":             "/from/file",     // file only
		"imap-listen":      "127.0.0.1:3000", // environment over file
		"grpc-listen":      "127.0.0.1:5000", // flag over environment and file
		"max-message-size": "12345",
		"log-level":        "info", // default
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestConfigRejectsUnknownKeysAndBadValues(t *testing.T) {
	dir := t.TempDir()
	for name, yaml := range map[string]string{
		"unknown.yaml": "imap-listn: 127.0.0.1:1\n",
		"badint.yaml":  "max-message-size: lots\n",
	} {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		root := newRootCommand()
		serve, _, _ := root.Find([]string{"serve"})
		serve.RunE = func(*cobra.Command, []string) error { return nil }
		root.SetArgs([]string{"serve", "--config", file})
		if err := root.Execute(); err == nil {
			t.Errorf("%s: accepted %q", name, yaml)
		}
	}
}
