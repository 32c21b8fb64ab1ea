package main

import (
	"fmt"
	"io"

	"github.com/cellwarden/cellwarden/internal/config"
)

// runCheckConfig validates a configuration file and the inventory it names.
// It prints every problem, one per line, and fails with exit status 1, or
// prints a confirmation.
func runCheckConfig(path string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError{1}
	}
	inv, err := cfg.LoadInventory("")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError{1}
	}
	msg := fmt.Sprintf("%s: configuration is valid", path)
	if n := len(cfg.Collectors.Modbus); n > 0 {
		msg += fmt.Sprintf("; %d Modbus collector(s)", n)
	}
	if n := len(cfg.Collectors.MQTT); n > 0 {
		msg += fmt.Sprintf("; %d MQTT collector(s)", n)
	}
	if inv != nil {
		msg += fmt.Sprintf("; inventory %s: %d entries", cfg.Inventory, len(inv.Batteries))
	}
	fmt.Fprintln(stdout, msg)
	return nil
}
