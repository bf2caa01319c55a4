package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// Passwords on the command line show in `ps` and in shell history, so every command that
// takes one reads it, in this order, from --password-file, from a prompt when standard
// input is a terminal, or from the first line of standard input. --password is kept for
// scripts written before, and discouraged.

// addPasswordFlags adds --password-file and the discouraged --password for what (e.g. "the
// account's password").
func addPasswordFlags(f *pflag.FlagSet, what string) {
	f.String("password-file", "", "file whose first line is "+what+" (else a prompt on a terminal, or the first line of standard input)")
	f.String("password", "", what+"; discouraged: it shows in ps and in shell history, use --password-file, the prompt or standard input")
}

// readPassword returns the password the flags of addPasswordFlags or standard input give.
func readPassword(cmd *cobra.Command, what string) (string, error) {
	f := cmd.Flags()
	if pw, _ := f.GetString("password"); pw != "" {
		return pw, nil
	}
	path, _ := f.GetString("password-file")
	return passwordFromFileOrInput(cmd, path, what)
}

// passwordFromFileOrInput reads the password from the file at path when it is not empty,
// else from a prompt when standard input is a terminal, else from its first line.
func passwordFromFileOrInput(cmd *cobra.Command, path, what string) (string, error) {
	if path != "" {
		file, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		defer file.Close()
		pw, err := firstLine(file)
		if err != nil {
			return "", fmt.Errorf("--password-file %s: %w", path, err)
		}
		return pw, nil
	}
	in := cmd.InOrStdin()
	if file, ok := in.(*os.File); ok && term.IsTerminal(int(file.Fd())) {
		return prompt(cmd, int(file.Fd()), what)
	}
	pw, err := firstLine(in)
	if err != nil {
		return "", fmt.Errorf("%s from standard input: %w (or give --password-file)", what, err)
	}
	return pw, nil
}

// prompt asks for the password twice on the terminal, without echo.
func prompt(cmd *cobra.Command, fd int, what string) (string, error) {
	ask := func(label string) (string, error) {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: ", label)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(cmd.ErrOrStderr())
		return string(b), err
	}
	pw, err := ask(capitalize(what))
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	again, err := ask("Again")
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("the passwords differ")
	}
	return pw, nil
}

// firstLine reads the first line of r without its line ending; an empty one is an error.
func firstLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty password")
	}
	return line, nil
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
