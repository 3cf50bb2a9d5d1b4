package taskerhttp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/taskerhttp"
)

// An application mounts the API on its own server, beside its own routes.
func Example() {
	ctx := context.Background()
	eng, _ := tasker.New(memory.New(), nil) // error handling elided: see the Quickstart
	tmpl, _ := orders.Template()
	_ = orders.Handlers{}.Register(eng)
	_ = eng.AddTemplates(tmpl)
	_ = eng.Start(ctx)
	defer eng.Stop(ctx)

	api, err := taskerhttp.New(eng, nil) // or &taskerhttp.Options{Keys: ...}
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", api) // the guide's /api/v1/...
	mux.Handle("/v1/", api)  // Tasker's own prefix
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := srv.Client().Post(srv.URL+"/api/v1/tasks", "application/json", strings.NewReader(guideBody))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var task tasker.Task
	_ = json.NewDecoder(resp.Body).Decode(&task)
	done, _ := eng.Wait(ctx, task.ID)
	fmt.Println(resp.StatusCode, done.State, len(done.Steps), "steps")
	// Output: 201 complete 5 steps
}
