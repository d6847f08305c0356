// Package workflow is Parvis's generic workflow engine: any module attaches its resources
// (form responses, appointments, street reports…) to a workflow that agents run in the back
// office. A workflow belongs to an organisation and is a versioned document of states (one
// initial, some final, each with the label the citizen sees), actions (from states to a target
// state, who may run them, manual, mass or automatic) and the tasks an action runs in order
// (comment, mail the citizen, notify, assign, ask for a correction, generate a PDF, call a
// business application, set a field or label, archive). Other modules add task types through
// the kernel.PointWorkflowTask extension point.
//
// # Using the engine from another module
//
// The owning module registers its resource type by contributing a ResourceType to the
// PointResourceType extension point, and fetches the Engine in Validate (modules are
// provisioned in order, so the engine may not exist yet during Provision):
//
//	func (m *Module) Validate() error {
//		var ok bool
//		if m.wf, ok = kernel.Service[workflow.Engine](m.env); !ok {
//			return errors.New("forms needs the workflow module")
//		}
//		return nil
//	}
//
//	func (m *Module) Declare() kernel.Parts {
//		return kernel.Parts{Extensions: []kernel.Extension{{Point: workflow.PointResourceType,
//			Value: workflow.ResourceType{Name: "forms.response", Title: "forms.response", Provider: m}}}}
//	}
//
//	// On submission, in the transaction that stores the response:
//	st, err := m.wf.Attach(ctx, tx, workflow.NewResource{
//		Ref:    workflow.Ref{Type: "forms.response", ID: "R-8KQ2"},
//		OrgID:  orgID,
//		Title:  "Terrasse – Café du Port",
//		Fields: map[string]any{"postcode": "75011", "surface": 12},
//		CitizenEmail: "lea@example.org",
//	}, "terrace")
//	// st.PublicLabel is what "my requests" shows; the workflow's routing rules chose st.UnitID.
//
//	// Later, on an agent's request (permissions are checked by the engine):
//	st, err = m.wf.Run(ctx, agent, ref, "accept", workflow.Input{Comment: "OK"})
//
//	// The citizen's page shows the public history:
//	events, err := m.wf.History(ctx, ref, true)
//	panel, err := m.wf.HistoryHTML(r, ref, true) // ready-made accessible panel
//
// A resource type's permission checks use kernel.Resource{Type: "workflow." + type, ID,
// UnitID, OrgID}. Webhook events are named "<type>.submitted" (on Attach) and
// "<type>.state_changed" (on every transition).
//
// # Corrections
//
// The "correct" task gives the citizen a capability link (a random 128-bit token; only its
// hash is stored). The owning module serves the editing page: it implements Corrector to
// build the link, calls Engine.Correction(ctx, token) to learn which fields may be edited,
// and Engine.Resubmit(ctx, tx, token, fields) in the transaction that saves the edit; the
// resource then returns to the state chosen in the task.
package workflow

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
)

// ID is the module ID and the prefix of its locale keys.
const ID = "workflow"

// PointResourceType is the extension point where modules contribute ResourceType values.
const PointResourceType = "workflow.resource"

// Permissions of the module.
const (
	// PermManage: edit workflow definitions, endpoints and webhooks.
	PermManage = "workflow.manage"
	// PermInbox: see the inbox and the resources of one's scope.
	PermInbox = "workflow.inbox"
	// PermAct: the default permission an action requires.
	PermAct = "workflow.act"
	// PermDecide: a second level that actions may require (roles holding it decide).
	PermDecide = "workflow.decide"
)

// Ref names a resource: its type ("forms.response") and its ID within the owning module.
type Ref struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

func (r Ref) String() string { return r.Type + "/" + r.ID }

// NewResource is what Attach needs to know about a resource.
type NewResource struct {
	Ref          Ref
	OrgID        int64
	UnitID       int64 // used when the workflow's routing (rules, then default unit) chooses none
	Title        string
	CitizenID    int64
	CitizenEmail string
	Lang         string // the citizen's language for messages ("fr" when empty)
	// Fields is the bag that conditions, routing rules and templates read and tasks set.
	Fields map[string]any
}

// Status is a resource's place in its workflow.
type Status struct {
	Ref          Ref
	OrgID        int64
	Workflow     string
	Version      int
	State        string
	StateTitle   string
	PublicLabel  string
	Final        bool
	UnitID       int64
	AgentID      int64
	Labels       []string
	Fields       map[string]any
	Archived     bool
	Title        string
	CitizenID    int64
	CitizenEmail string
	Lang         string
	Since        time.Time // entry in the current state
	CreatedAt    time.Time
	internalID   int64
	seq          int64
	def          *Definition
}

// Input is what an agent gives when running an action.
type Input struct {
	Comment string            // recorded in the history (internal)
	Values  map[string]string // extra values tasks may read ("agent" for an assignment…)
}

// Event is one line of a resource's history.
type Event struct {
	ID        int64
	At        time.Time
	Kind      string // "attach", "transition", "task", "error", "correction"
	Action    string
	From, To  string
	Task      string
	ActorID   int64
	ActorName string // empty for the system
	Public    bool
	Message   string
	// PublicLabel is the public label of To, for the citizen's view.
	PublicLabel string
}

// File is a document attached to a resource (a generated PDF).
type File struct {
	ID          int64
	Name        string
	ContentType string
	Data        []byte
	CreatedAt   time.Time
}

// Correction is an open correction request, found by its token.
type Correction struct {
	Ref       Ref
	Fields    []string
	Message   string
	ExpiresAt time.Time
}

// Engine is the workflow service published with kernel.Provide[workflow.Engine]. Errors carry
// kernel/errs codes: NotFound (unknown resource, workflow or action), Forbidden (the actor may
// not run the action), Conflict (the resource moved meanwhile, or the action does not apply
// in its state), Invalid (bad input or definition, see *ValidationError).
type Engine interface {
	// Attach starts ref in the workflow key of its organisation, at the initial state, in the
	// caller's transaction: routing chooses the unit, on-enter automatic actions run, and the
	// "<type>.submitted" webhook event is queued.
	Attach(ctx context.Context, tx *store.Tx, res NewResource, workflowKey string) (Status, error)
	// Run runs a manual action as actor (checked through the Authorizer) in its own transaction.
	Run(ctx context.Context, actor *kernel.Agent, ref Ref, action string, in Input) (Status, error)
	// RunTx is Run inside the caller's transaction.
	RunTx(ctx context.Context, tx *store.Tx, actor *kernel.Agent, ref Ref, action string, in Input) (Status, error)
	// AvailableActions lists the manual actions actor may run on ref now.
	AvailableActions(ctx context.Context, actor *kernel.Agent, ref Ref) ([]Action, error)
	// State returns where ref stands.
	State(ctx context.Context, ref Ref) (Status, error)
	// History lists ref's events, oldest first; public keeps what the citizen may see.
	History(ctx context.Context, ref Ref, public bool) ([]Event, error)
	// HistoryHTML renders the history panel (an accessible list) in the request's language.
	HistoryHTML(r *http.Request, ref Ref, public bool) (template.HTML, error)
	// SetFields merges fields into ref's bag (in the caller's transaction) and runs the
	// condition-triggered actions that now hold.
	SetFields(ctx context.Context, tx *store.Tx, ref Ref, fields map[string]any) error
	// Correction returns the open correction request of a token.
	Correction(ctx context.Context, token string) (Correction, error)
	// Resubmit closes a correction request (the owning module saved the edit in tx) and
	// moves the resource back to the state the task chose. fields holds the corrected values
	// by the names the task listed; a value made of parts (a map) is stored flat, one field
	// "<name>_<part>" per part, and a nil value or part removes its field.
	Resubmit(ctx context.Context, tx *store.Tx, token string, fields map[string]any) (Status, error)
	// Files lists the documents attached to ref (without their bytes); File returns one.
	Files(ctx context.Context, ref Ref) ([]File, error)
	File(ctx context.Context, ref Ref, id int64) (File, error)
	// Forget applies a retention rule to ref in the caller's transaction: purge deletes the
	// resource with its history, documents, timers, correction links and queued deliveries;
	// otherwise it is anonymised: fields, title, citizen, documents, correction links,
	// deliveries and the texts of its history go, the states it went through stay (for
	// statistics). An unknown ref is not an error (already forgotten).
	Forget(ctx context.Context, tx *store.Tx, ref Ref, purge bool) error
	// OnStateChanged subscribes f to every transition; f runs inside the transaction (ev.Tx)
	// and an error from it undoes the transition. Subscribe in Validate or Start.
	OnStateChanged(f func(ctx context.Context, ev StateChanged) error)
	// Emit queues a webhook event "<ref.Type>.<name>" for the organisation's subscribers.
	Emit(ctx context.Context, tx *store.Tx, orgID int64, ref Ref, name string, data map[string]any) error

	// Definition returns the latest version of a workflow; Definitions lists them.
	Definition(ctx context.Context, orgID int64, key string) (*Definition, error)
	Definitions(ctx context.Context, orgID int64) ([]*Definition, error)
	// SaveDefinition validates def and stores it as a new version (audited), in the caller's
	// transaction so that a module importing a form with its workflow imports both or neither.
	SaveDefinition(ctx context.Context, tx *store.Tx, orgID int64, def *Definition) (int, error)
	// Export writes the latest version as "json" or "yaml"; Import parses, validates and saves.
	Export(ctx context.Context, orgID int64, key, format string) ([]byte, error)
	Import(ctx context.Context, tx *store.Tx, orgID int64, data []byte, format string) (*Definition, error)
}

// ResourceType is contributed by a module to PointResourceType.
type ResourceType struct {
	Name     string // "forms.response"; permissions check "workflow." + Name
	Title    string // locale key
	Provider ResourceProvider
}

// ResourceProvider lets tasks and pages read a resource owned by another module.
type ResourceProvider interface {
	Describe(ctx context.Context, id string) (Description, error)
}

// Description is what the owning module tells about a resource.
type Description struct {
	Title        string
	Answers      map[string]any // question key → answer, for templates
	CitizenEmail string
	Lang         string
	PublicURL    string // the citizen's page
	AdminURL     string // the agents' page, "" to use the engine's generic one
}

// Corrector is implemented by providers that serve a correction page.
type Corrector interface {
	// CorrectionURL is the absolute or root-relative link the citizen follows.
	CorrectionURL(ref Ref, token string) string
}

// Action kinds.
const (
	KindManual = "manual" // run by an agent on one resource
	KindMass   = "mass"   // also offered on a selection in the inbox
	KindAuto   = "auto"   // run by the engine when its trigger fires
)

// Triggers of automatic actions.
const (
	OnEnter     = "enter"     // as soon as the resource enters one of From
	OnDelay     = "delay"     // after Delay in one of From ("silence means acceptance")
	OnCondition = "condition" // when Condition holds on the fields, checked on every change
)

// Definition is one version of a workflow, as stored, exported and imported.
type Definition struct {
	Key       string              `json:"key" yaml:"key"`
	Title     string              `json:"title" yaml:"title"`
	Version   int                 `json:"version,omitempty" yaml:"version,omitempty"`
	States    []State             `json:"states" yaml:"states"`
	Actions   []Action            `json:"actions" yaml:"actions"`
	Templates map[string]Template `json:"templates,omitempty" yaml:"templates,omitempty"`
	Routing   *Routing            `json:"routing,omitempty" yaml:"routing,omitempty"`
	UpdatedAt time.Time           `json:"-" yaml:"-"`
	OrgID     int64               `json:"-" yaml:"-"`
}

// State is a step of a workflow.
type State struct {
	Key         string `json:"key" yaml:"key"`
	Title       string `json:"title" yaml:"title"`
	PublicLabel string `json:"public_label" yaml:"public_label"`
	Initial     bool   `json:"initial,omitempty" yaml:"initial,omitempty"`
	Final       bool   `json:"final,omitempty" yaml:"final,omitempty"`
}

// Action moves a resource from one of From to To, running Tasks in order.
type Action struct {
	Key   string   `json:"key" yaml:"key"`
	Title string   `json:"title" yaml:"title"`
	From  []string `json:"from" yaml:"from"`
	To    string   `json:"to" yaml:"to"`
	Kind  string   `json:"kind,omitempty" yaml:"kind,omitempty"` // manual (default), mass, auto
	// Permission the actor needs on the resource (default workflow.act).
	Permission string `json:"permission,omitempty" yaml:"permission,omitempty"`
	// Units, when set, restricts the action to agents belonging to one of these units.
	Units     []int64    `json:"units,omitempty" yaml:"units,omitempty"`
	Trigger   string     `json:"trigger,omitempty" yaml:"trigger,omitempty"` // for auto: enter, delay, condition
	Delay     Duration   `json:"delay,omitempty" yaml:"delay,omitempty"`
	Condition *Condition `json:"condition,omitempty" yaml:"condition,omitempty"`
	Tasks     []Task     `json:"tasks,omitempty" yaml:"tasks,omitempty"`
}

// Task is one step of an action, of a registered TaskType.
type Task struct {
	Type   string         `json:"type" yaml:"type"`
	Config map[string]any `json:"config,omitempty" yaml:"config,omitempty"`
}

// Template is a message or document template stored with the workflow. Subject and Body are
// Go text/template sources over TemplateData; the HTML part of a mail is rendered with
// html/template from the same source, so answers are escaped.
type Template struct {
	Subject string `json:"subject,omitempty" yaml:"subject,omitempty"`
	Body    string `json:"body" yaml:"body"`
}

// Condition is a test on the fields: a leaf (Field, Op, Value/Values) or a combination (All
// for AND, Any for OR).
type Condition struct {
	Field  string       `json:"field,omitempty" yaml:"field,omitempty"`
	Op     string       `json:"op,omitempty" yaml:"op,omitempty"` // eq, ne, in, contains, gt, lt, empty, not_empty, prefix
	Value  any          `json:"value,omitempty" yaml:"value,omitempty"`
	Values []any        `json:"values,omitempty" yaml:"values,omitempty"`
	All    []*Condition `json:"all,omitempty" yaml:"all,omitempty"`
	Any    []*Condition `json:"any,omitempty" yaml:"any,omitempty"`
}

// Routing chooses the unit of a new resource: the first rule whose condition holds wins,
// else DefaultUnit (else the unit given to Attach).
type Routing struct {
	Rules       []Rule `json:"rules,omitempty" yaml:"rules,omitempty"`
	DefaultUnit int64  `json:"default_unit,omitempty" yaml:"default_unit,omitempty"`
}

// Rule routes to Unit when When holds.
type Rule struct {
	When Condition `json:"when" yaml:"when"`
	Unit int64     `json:"unit" yaml:"unit"`
}

// Duration is a time.Duration written as "72h", "30m" or "60d" in documents.
type Duration time.Duration

// MarshalText writes days when the duration is a whole number of days.
func (d Duration) MarshalText() ([]byte, error) {
	td := time.Duration(d)
	if td != 0 && td%(24*time.Hour) == 0 {
		return []byte(fmt.Sprintf("%dd", td/(24*time.Hour))), nil
	}
	return []byte(td.String()), nil
}

// String writes the duration as documents do ("60d", "72h0m0s").
func (d Duration) String() string { b, _ := d.MarshalText(); return string(b) }

// UnmarshalText reads "60d", "72h", "1h30m".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// ParseDuration reads a duration with an optional "d" (days) suffix.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err != nil || days < 0 || fmt.Sprint(days) != n {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return v, nil
}

// TaskType is a kind of task. Modules contribute theirs as kernel.PointWorkflowTask values.
type TaskType interface {
	// Name is the stable key used in definitions ("mail", "pdf"…).
	Name() string
	// Title is the locale key shown in the editor.
	Title() string
	// Fields describes the configuration, for the editor and for validation.
	Fields() []ConfigField
	// Validate checks a configuration; problems' paths are relative ("config.template").
	Validate(def *Definition, cfg map[string]any) []Problem
	// Run does the task. It may change tc.Status (fields, labels, unit, agent); the engine
	// saves it. An error aborts the whole action (nothing is stored).
	Run(ctx context.Context, tc *TaskContext) (Result, error)
}

// ConfigField is one setting of a task type.
type ConfigField struct {
	Name     string
	Label    string // locale key
	Kind     string // "text", "textarea", "state", "template", "bool", "unit", "list"
	Required bool
}

// Result is what a task reports, recorded in the history.
type Result struct {
	Message string
	Public  bool // shown to the citizen
}

// TaskContext is what a running task sees.
type TaskContext struct {
	Tx         *store.Tx
	Status     *Status
	Definition *Definition
	Action     *Action
	Config     map[string]any
	Actor      *kernel.Agent // nil when the engine runs an automatic action
	Input      Input
	Now        time.Time
	// Services of the kernel, for task types contributed by other modules.
	Mail kernel.Mailer
	Jobs kernel.Jobs

	e *engine
}

// Describe asks the owning module about the resource (cached for the action).
func (tc *TaskContext) Describe(ctx context.Context) (Description, error) {
	return tc.e.describe(ctx, tc.Status)
}

// Render executes a template of the workflow over the resource's data; html selects
// html/template escaping.
func (tc *TaskContext) Render(ctx context.Context, name string, html bool, extra map[string]any) (subject, body string, err error) {
	return tc.e.render(ctx, tc, name, html, extra)
}

// ConfigString returns a string setting ("" when absent).
func (tc *TaskContext) ConfigString(k string) string { return cfgString(tc.Config, k) }

func cfgString(cfg map[string]any, k string) string {
	switch v := cfg[k].(type) {
	case string:
		return v
	case nil:
		return ""
	case float64:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%f", v), "0"), ".")
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func cfgBool(cfg map[string]any, k string) bool {
	switch v := cfg[k].(type) {
	case bool:
		return v
	case string:
		return v == "true" || v == "on" || v == "1" || v == "yes"
	}
	return false
}

func cfgList(cfg map[string]any, k string) []string {
	switch v := cfg[k].(type) {
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	case []string:
		return v
	case string:
		var out []string
		for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\n' }) {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	return nil
}

func cfgInt(cfg map[string]any, k string) int64 {
	switch v := cfg[k].(type) {
	case float64:
		return int64(v)
	case int:
		return int64(v)
	case int64:
		return v
	case uint64:
		return int64(v)
	case string:
		var n int64
		fmt.Sscanf(v, "%d", &n)
		return n
	}
	return 0
}

// StateChanged is fired (in the transaction) after every transition, for Go subscribers.
type StateChanged struct {
	Tx     *store.Tx
	Ref    Ref
	From   string
	To     string
	Action string
	Status Status
}
