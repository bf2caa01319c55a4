package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// applyConfig fills every flag the user did not set on the command line, first from the
// STRATA_<FLAG> environment variable (dashes become underscores), then from the YAML file
// named by --config or STRATA_CONFIG, whose keys are the flag names. Flags win over the
// environment, which wins over the file, which wins over the built-in defaults.
func applyConfig(cmd *cobra.Command) error {
	path, _ := cmd.Flags().GetString("config")
	if !cmd.Flags().Changed("config") {
		if env := os.Getenv("STRATA_CONFIG"); env != "" {
			path = env
		}
	}
	file := map[string]any{}
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read config file: %w", err)
		}
		if err := yaml.Unmarshal(raw, &file); err != nil {
			return fmt.Errorf("parse config file %s: %w", path, err)
		}
		for key := range file {
			if cmd.Flags().Lookup(key) == nil {
				return fmt.Errorf("config file %s: unknown setting %q for %q", path, key, cmd.CommandPath())
			}
		}
	}
	var errs []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" || f.Name == "help" {
			return
		}
		env := "STRATA_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", env, err))
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if err := f.Value.Set(fmt.Sprint(v)); err != nil {
				errs = append(errs, fmt.Sprintf("%s in %s: %v", f.Name, path, err))
			}
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return nil
}

// newLogger returns a text logger on stderr at the level named by --log-level.
func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
