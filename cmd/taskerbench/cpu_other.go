//go:build !unix

package main

import "time"

// processCPU reports that the process's CPU time is not measured here: the
// cpu_seconds and cpu_util fields are left out.
func processCPU() (time.Duration, bool) { return 0, false }
