//go:build race

package main

// raceEnabled reports a build with the race detector, under which the
// SQLite store runs many times slower: the soak test runs fewer tasks.
const raceEnabled = true
