package postgres_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/postgres"
	"github.com/gotasker/tasker/store/postgres/pgtest"
	"github.com/gotasker/tasker/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// open returns a Store on a fresh schema of its own, closed when t ends.
func open(t testing.TB, pool *pgxpool.Pool) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), pool, &postgres.Options{Schema: pgtest.NewSchema(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Each subtest has a schema of its own, on one pool the Stores share.
func TestConformance(t *testing.T) {
	pool := pgtest.Pool(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return postgres.New(pool, &postgres.Options{Schema: pgtest.NewSchema(t)})
	})
}

// ownPool is a Store that closes its pool when it closes: each reopen of
// RunDurable starts from new connections.
type ownPool struct {
	*postgres.Store
	pool *pgxpool.Pool
}

func (o ownPool) Close() error {
	err := o.Store.Close()
	o.pool.Close()
	return err
}

// RunDurable's path names a schema: a store reopened on the path opens a
// new pool and Store on that schema.
func TestDurable(t *testing.T) {
	url := pgtest.URL(t)
	var dropping sync.Map // path → true once its schema's drop is registered
	storetest.RunDurable(t, func(t *testing.T, path string) store.Store {
		sum := sha256.Sum256([]byte(path))
		schema := "tasker_durable_" + hex.EncodeToString(sum[:8])
		if _, seen := dropping.LoadOrStore(path, true); !seen {
			t.Cleanup(func() { pgtest.DropSchema(t, url, schema) })
		}
		pool, err := pgxpool.New(context.Background(), url)
		if err != nil {
			t.Fatalf("pool: %v", err)
		}
		s, err := postgres.Open(context.Background(), pool, &postgres.Options{Schema: schema})
		if err != nil {
			pool.Close()
			t.Fatalf("Open: %v", err)
		}
		return ownPool{s, pool}
	})
}
