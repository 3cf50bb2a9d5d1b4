package main

import (
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/exampleutil/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTemplateIsTaskers(t *testing.T) {
	exampletest.SameAsTestdata(t, templateYAML, "microservices_user_registration.yaml")
}

const (
	user   = `"user_id":"usr_1","email":"grace@example.com","name":"Grace Hopper","plan":"enterprise"`
	prefs  = `{"user_id":"usr_1","newsletter":true,"product_updates":true,"channels":["email","newsletter"]}`
	sent   = `"sent":["Welcome, Grace Hopper!","Your enterprise plan: 99.00 a month","Your first newsletter"]`
	signup = `{` + user + `,"monthly_price":99,"channels":["email","newsletter"],` + sent + `}`
)

func TestRun(t *testing.T) {
	args := []string{"-email", "grace@example.com", "-name", "Grace Hopper", "-plan", "enterprise", "-marketing-consent"}
	results := map[string]string{
		"create_user_account":    `{` + user + `,"status":"pending"}`,
		"setup_billing_profile":  `{"profile_id":"bill_usr_1","user_id":"usr_1","plan":"enterprise","monthly_price":99}`,
		"initialize_preferences": prefs,
		"send_welcome_sequence":  signup,
		"update_user_status":     `{` + user + `,"status":"active"}`,
	}
	exampletest.Check(t, run, templateYAML,
		exampletest.Case{Name: "registers", Args: args, State: tasker.TaskComplete, Results: results,
			Output: []string{`user_registration: complete`,
				`(?m)^user usr_1 \(grace@example.com\) is active on the enterprise plan; sent: Welcome, Grace Hopper! \| .* \| Your first newsletter$`}},
		exampletest.Case{Name: "503 retried", Args: append([]string{"-flaky", "billing-service"}, args...),
			State: tasker.TaskComplete, Results: results, Attempts: map[string]int{"setup_billing_profile": 2},
			Output: []string{`(?m)^setup_billing_profile\s+complete\s+2\s`,
				`last error \(attempt 1\): retryable_error \[HTTP_503\]: POST http://\S+/billing-service/profiles: 503 Service Unavailable: \{"error":"billing-service is overloaded"\}`}},
		exampletest.Case{Name: "welcome fails", Args: []string{"-fail", "send_welcome_sequence"}, State: tasker.TaskFailed,
			Steps: map[string]tasker.StepState{"setup_billing_profile": tasker.StepComplete, "initialize_preferences": tasker.StepComplete,
				"send_welcome_sequence": tasker.StepFailed, "update_user_status": tasker.StepPending},
			Results: map[string]string{"initialize_preferences": `{"user_id":"usr_1","newsletter":false,"product_updates":true,"channels":["email"]}`},
			Output:  []string{`user_registration: error`, `FAILED_ON_PURPOSE`}},
	)
}
