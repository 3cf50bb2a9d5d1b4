// Command microservices runs Tasker's user registration workflow once, on
// the template testdata/templates/tasker/microservices_user_registration.yaml
// (copied here as template.yaml): create the account, then set up billing
// and preferences in parallel, send the welcome sequence and mark the user
// active. Each step calls its service over HTTP through package httpstep;
// the services are simulated in-process, on a local port. It prints the
// outcome and each step's timing:
//
//	go run ./examples/microservices
//	go run ./examples/microservices -plan enterprise -marketing-consent -store memory
//	go run ./examples/microservices -flaky billing-service   # a 503, retried
//	go run ./examples/microservices -fail send_welcome_sequence   # fails for good
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/exampleutil"
)

//go:embed template.yaml
var templateYAML []byte

func main() { exampleutil.Main("microservices", run) }

func run(ctx context.Context, args []string, out io.Writer) error {
	h := &handlers{}
	var flaky *string
	const ns = "Microservices::StepHandlers::"
	ex := exampleutil.Example{
		Name: "microservices", TemplateFile: "examples/microservices/template.yaml", TemplateYAML: templateYAML,
		Flags: func(fs *flag.FlagSet) func() (any, error) {
			flaky = fs.String("flaky", "", "a service that answers its first request with a 503: "+
				"user-service, billing-service, preferences-service or notification-service")
			return userFlags(fs)
		},
		Setup: func() (func(), error) {
			srv := httptest.NewServer(newServices(*flaky))
			h.http, h.base = srv.Client(), srv.URL
			return srv.Close, nil
		},
		Summary: printUser,
		Handlers: map[string]tasker.StepHandler{
			ns + "CreateUserAccountHandler":     tasker.HandlerFunc(h.createUserAccount),
			ns + "SetupBillingProfileHandler":   tasker.HandlerFunc(h.setupBillingProfile),
			ns + "InitializePreferencesHandler": tasker.HandlerFunc(h.initializePreferences),
			ns + "SendWelcomeSequenceHandler":   tasker.HandlerFunc(h.sendWelcomeSequence),
			ns + "UpdateUserStatusHandler":      tasker.HandlerFunc(h.updateUserStatus),
		},
	}
	return ex.Run(ctx, args, out)
}

// userFlags declares the flags of the task input.
func userFlags(fs *flag.FlagSet) func() (any, error) {
	var in Input
	fs.StringVar(&in.Email, "email", "ada@example.com", "the user's email")
	fs.StringVar(&in.Name, "name", "Ada Lovelace", "the user's name")
	fs.StringVar(&in.Plan, "plan", "pro", "the plan: free, pro or enterprise")
	fs.BoolVar(&in.MarketingConsent, "marketing-consent", false, "the user accepts the newsletter")
	return func() (any, error) { return in, nil }
}

// printUser prints who was registered, once the task completed.
func printUser(w io.Writer, t *tasker.Task) {
	var u User
	var welcome Welcome
	if t.State != tasker.TaskComplete || json.Unmarshal(t.Step("update_user_status").Result, &u) != nil ||
		json.Unmarshal(t.Step("send_welcome_sequence").Result, &welcome) != nil {
		return
	}
	fmt.Fprintf(w, "user %s (%s) is %s on the %s plan; sent: %s\n", u.ID, u.Email, u.Status, u.Plan,
		strings.Join(welcome.Sent, " | "))
}
