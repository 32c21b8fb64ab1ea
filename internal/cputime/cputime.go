// Package cputime reads the CPU time the process has used, so that a
// benchmark can report its work per CPU-second ("per core"): on a shared
// machine, wall time also counts the time other processes held the cores.
package cputime

import (
	"syscall"
	"time"
)

// Process returns the user and system CPU time of every thread of the
// process so far (garbage collection included).
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
