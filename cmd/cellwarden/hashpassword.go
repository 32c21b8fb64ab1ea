package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"golang.org/x/crypto/bcrypt"
)

// hashPasswordCmd is `cellwarden hash-password`: the bcrypt hash a web
// configuration file's basic_auth_users entry needs, without htpasswd or
// Python on the machine.
type hashPasswordCmd struct {
	cmd  *kingpin.CmdClause
	cost int
}

func addHashPassword(app *kingpin.Application) *hashPasswordCmd {
	h := &hashPasswordCmd{}
	h.cmd = app.Command("hash-password", "Read a password from standard input (its first line) and print its bcrypt hash for basic_auth_users in the web configuration file (--web.config.file).")
	h.cmd.Flag("cost", "bcrypt cost (each login not yet cached by the server costs about 2^cost hash rounds).").
		Default(fmt.Sprint(bcrypt.DefaultCost)).IntVar(&h.cost)
	return h
}

// run hashes the first line of stdin. The password is never echoed or
// logged; a trailing CR or LF is not part of it.
func (h *hashPasswordCmd) run(stdin io.Reader, stdout io.Writer) error {
	if h.cost < bcrypt.MinCost || h.cost > bcrypt.MaxCost {
		return fmt.Errorf("--cost must be between %d and %d, got %d", bcrypt.MinCost, bcrypt.MaxCost, h.cost)
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	switch {
	case pw == "":
		return errors.New("no password on standard input (e.g. `cellwarden hash-password < password-file`)")
	case len(pw) > 72:
		return errors.New("the password is longer than bcrypt's 72 bytes")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), h.cost)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", hash)
	return err
}
