package pgtest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// fakeTB records how URL ends a test: Fatal and Skip end the goroutine, as
// testing's do.
type fakeTB struct {
	testing.TB
	failed, skipped string
	done            chan struct{}
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatal(args ...any) {
	f.failed = fmt.Sprint(args...)
	f.stop()
}

func (f *fakeTB) Skip(args ...any) {
	f.skipped = fmt.Sprint(args...)
	f.stop()
}

func (f *fakeTB) stop() {
	close(f.done)
	runtime.Goexit()
}

// urlWith runs URL on a fakeTB in a goroutine of its own and returns the
// URL and how the call ended.
func urlWith(t *testing.T, url, ci string) (got string, f *fakeTB) {
	t.Setenv(EnvURL, url)
	t.Setenv("CI", ci)
	f = &fakeTB{TB: t, done: make(chan struct{})}
	go func() {
		got = URL(f)
		close(f.done)
	}()
	<-f.done
	return got, f
}

func TestURLSkipsWithoutAServer(t *testing.T) {
	_, f := urlWith(t, "", "")
	if f.skipped == "" || f.failed != "" || !strings.Contains(f.skipped, EnvURL) || !strings.Contains(f.skipped, ".ci/run") {
		t.Errorf("URL without %s: skipped %q, failed %q; want a skip naming the variable and .ci/run", EnvURL, f.skipped, f.failed)
	}
}

func TestURLFailsWithoutAServerInCI(t *testing.T) {
	_, f := urlWith(t, "", "true")
	if f.failed == "" || f.skipped != "" || !strings.Contains(f.failed, "CI=true") {
		t.Errorf("URL without %s under CI=true: failed %q, skipped %q; want a failure naming CI=true", EnvURL, f.failed, f.skipped)
	}
}

func TestURLReturnsTheServer(t *testing.T) {
	got, f := urlWith(t, "postgres://x@127.0.0.1:1/db", "true")
	if got != "postgres://x@127.0.0.1:1/db" || f.failed != "" || f.skipped != "" {
		t.Errorf("URL = %q (failed %q, skipped %q), want the variable's value", got, f.failed, f.skipped)
	}
}
