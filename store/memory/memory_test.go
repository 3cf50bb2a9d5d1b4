package memory_test

import (
	"testing"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return memory.New() })
}

// TestSharedConformance runs the suite on Shared, a Leaser: its lease
// cases run there, and every other case checks that sharing changes
// nothing else.
func TestSharedConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return memory.NewShared() })
}
