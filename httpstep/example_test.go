package httpstep_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/httpstep"
)

// A step handler that calls a billing service: a 2xx response becomes the
// step's result, a 503 a retryable failure, a 400 a permanent one.
func Example() {
	billing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("plan") {
		case "pro":
			fmt.Fprint(w, `{"plan":"pro","monthly":29}`)
		case "busy":
			w.Header().Set("Retry-After", "30")
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		default:
			http.Error(w, `{"error":"unknown plan"}`, http.StatusBadRequest)
		}
	}))
	defer billing.Close()
	client := &httpstep.Client{HTTP: billing.Client(), BaseURL: billing.URL + "/v1/"}

	// In a handler: return client.GetJSON's error as it is.
	for _, plan := range []string{"pro", "busy", "gold"} {
		var price struct {
			Plan    string `json:"plan"`
			Monthly int    `json:"monthly"`
		}
		err := client.GetJSON(context.Background(), "prices?plan="+plan, &price)
		var se *tasker.StepError
		switch {
		case err == nil:
			fmt.Printf("%s: result %+v\n", plan, price)
		case errors.As(err, &se):
			fmt.Printf("%s: %s %s retryable=%v retry after %s\n", plan, se.Type, se.Code, se.Retryable, se.RetryAfter)
		}
	}
	// Output:
	// pro: result {Plan:pro Monthly:29}
	// busy: retryable_error HTTP_503 retryable=true retry after 30s
	// gold: permanent_error HTTP_400 retryable=false retry after 0s
}

// Do returns the raw body of a 2xx response; Result makes it a step result.
func ExampleClient_Do() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "pong")
	}))
	defer srv.Close()
	client := &httpstep.Client{HTTP: srv.Client(), BaseURL: srv.URL}
	req, _ := http.NewRequest(http.MethodGet, "/ping", nil)
	resp, err := client.Do(context.Background(), req)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d %q\n", resp.StatusCode, resp.Result())
	// Output: 200 "pong"
}
