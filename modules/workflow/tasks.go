package workflow

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
)

// The built-in task types. Each is small: what it changes goes through tc.Status (saved by
// the engine with the transition) or rows written in tc.Tx.
func builtinTasks() []TaskType {
	return []TaskType{commentTask{}, mailTask{}, notifyTask{}, assignTask{}, correctTask{}, pdfTask{},
		callTask{}, setFieldTask{}, labelTask{}, archiveTask{}}
}

// TemplateData is what workflow templates see.
type TemplateData struct {
	Reference string         // the resource's ID in its module
	Title     string         // the resource's title
	State     string         // public label of the state the action leads to
	Fields    map[string]any // the workflow's field bag
	Answers   map[string]any // the owning module's answers (Describe)
	Link      string         // the citizen's page, or the correction link
	Extra     map[string]any
}

func (e *engine) render(ctx context.Context, tc *TaskContext, name string, html bool, extra map[string]any) (string, string, error) {
	t, ok := tc.Definition.Templates[name]
	if !ok {
		return "", "", errs.New(errs.Invalid, "workflow.error.template_not_found", "name", name)
	}
	d, err := tc.Describe(ctx)
	if err != nil {
		return "", "", err
	}
	data := TemplateData{Reference: tc.Status.Ref.ID, Title: d.Title, Fields: tc.Status.Fields, Answers: d.Answers,
		Link: e.absolute(d.PublicURL), Extra: extra}
	if s := tc.Definition.StateByKey(tc.Action.To); s != nil {
		data.State = s.PublicLabel
	}
	if l, ok := extra["link"].(string); ok {
		data.Link = l
	}
	subject, err := execText(name+".subject", t.Subject, data)
	if err != nil {
		return "", "", err
	}
	subject = strings.Join(strings.Fields(subject), " ") // no header injection through answers
	var body string
	if html {
		body, err = execHTML(name, t.Body, data)
	} else {
		body, err = execText(name, t.Body, data)
	}
	return subject, body, err
}

func execText(name, src string, data any) (string, error) {
	t, err := texttemplate.New(name).Option("missingkey=zero").Parse(src)
	if err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	return b.String(), nil
}

// execHTML renders the same source with html/template, so every answer is escaped, and keeps
// the author's line breaks.
func execHTML(name, src string, data any) (string, error) {
	t, err := htmltemplate.New(name).Option("missingkey=zero").Parse(src)
	if err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	return strings.ReplaceAll(b.String(), "\n", "<br>\n"), nil
}

func checkTemplate(t Template) error {
	if _, err := texttemplate.New("s").Parse(t.Subject); err != nil {
		return err
	}
	if _, err := htmltemplate.New("b").Parse(t.Body); err != nil {
		return err
	}
	return nil
}

func (e *engine) absolute(u string) string {
	if strings.HasPrefix(u, "/") && e.baseURL != "" {
		return strings.TrimRight(e.baseURL, "/") + u
	}
	return u
}

func needTemplate(d *Definition, cfg map[string]any, key string, required bool) []Problem {
	name := cfgString(cfg, key)
	if name == "" {
		return nil // required settings are checked from Fields()
	}
	if _, ok := d.Templates[name]; !ok {
		return []Problem{{Path: "config." + key, Code: "unknown_template", Message: fmt.Sprintf("unknown template %q", name)}}
	}
	return nil
}

func needState(d *Definition, cfg map[string]any, key string) []Problem {
	name := cfgString(cfg, key)
	if name != "" && d.StateByKey(name) == nil {
		return []Problem{{Path: "config." + key, Code: "unknown_state", Message: fmt.Sprintf("unknown state %q", name)}}
	}
	return nil
}

// MailData is the data of the "workflow/message" mail template.
type MailData struct {
	Subject string
	Text    string
	HTML    htmltemplate.HTML
}

// sendTemplate mails a workflow template to addresses.
func (e *engine) sendTemplate(ctx context.Context, tc *TaskContext, tmpl string, to []string, lang string, extra map[string]any, att []kernel.Attachment) error {
	if e.mail == nil {
		return errs.New(errs.Unavailable, "workflow.error.no_mail")
	}
	subject, text, err := e.render(ctx, tc, tmpl, false, extra)
	if err != nil {
		return err
	}
	_, html, err := e.render(ctx, tc, tmpl, true, extra)
	if err != nil {
		return err
	}
	return e.mail.Send(ctx, tc.Tx, kernel.Mail{To: to, Lang: lang, Template: "workflow/message", OrgID: tc.Status.OrgID,
		Data: MailData{Subject: subject, Text: text, HTML: htmltemplate.HTML(html)}, Attachments: att})
}

type commentTask struct{}

func (commentTask) Name() string  { return "comment" }
func (commentTask) Title() string { return "workflow.task.comment" }
func (commentTask) Fields() []ConfigField {
	return []ConfigField{{Name: "text", Label: "workflow.cfg.text", Kind: "textarea", Required: true},
		{Name: "public", Label: "workflow.cfg.public", Kind: "bool"}}
}
func (commentTask) Validate(*Definition, map[string]any) []Problem { return nil }
func (commentTask) Run(_ context.Context, tc *TaskContext) (Result, error) {
	return Result{Message: tc.ConfigString("text"), Public: cfgBool(tc.Config, "public")}, nil
}

type mailTask struct{}

func (mailTask) Name() string  { return "mail" }
func (mailTask) Title() string { return "workflow.task.mail" }
func (mailTask) Fields() []ConfigField {
	return []ConfigField{{Name: "template", Label: "workflow.cfg.template", Kind: "template", Required: true},
		{Name: "files", Label: "workflow.cfg.files", Kind: "bool"}}
}
func (mailTask) Validate(d *Definition, cfg map[string]any) []Problem {
	return needTemplate(d, cfg, "template", true)
}
func (mailTask) Run(ctx context.Context, tc *TaskContext) (Result, error) {
	d, err := tc.Describe(ctx)
	if err != nil {
		return Result{}, err
	}
	if d.CitizenEmail == "" {
		return Result{Message: "no citizen address: nothing sent"}, nil
	}
	var att []kernel.Attachment
	if cfgBool(tc.Config, "files") {
		att = tc.e.attachmentsOf(ctx, tc)
	}
	if err := tc.e.sendTemplate(ctx, tc, tc.ConfigString("template"), []string{d.CitizenEmail}, d.Lang, nil, att); err != nil {
		return Result{}, err
	}
	subject, _, _ := tc.Render(ctx, tc.ConfigString("template"), false, nil)
	return Result{Message: subject, Public: true}, nil
}

type notifyTask struct{}

func (notifyTask) Name() string  { return "notify" }
func (notifyTask) Title() string { return "workflow.task.notify" }
func (notifyTask) Fields() []ConfigField {
	return []ConfigField{{Name: "template", Label: "workflow.cfg.template", Kind: "template", Required: true},
		{Name: "emails", Label: "workflow.cfg.emails", Kind: "list"},
		{Name: "unit", Label: "workflow.cfg.notify_unit", Kind: "text"},
		{Name: "sub_units", Label: "workflow.cfg.sub_units", Kind: "bool"},
		{Name: "agent", Label: "workflow.cfg.notify_agent", Kind: "text"}}
}

// Special values of the notify task's unit and agent settings.
const (
	notifyResourceUnit = "resource" // the unit the resource is in when the task runs
	notifyAssigned     = "assigned" // the agent the resource is assigned to
)

func (notifyTask) Validate(d *Definition, cfg map[string]any) []Problem {
	ps := needTemplate(d, cfg, "template", true)
	emails := cfgList(cfg, "emails")
	for _, a := range emails {
		if !strings.Contains(a, "@") {
			ps = append(ps, Problem{Path: "config.emails", Code: "email", Message: fmt.Sprintf("%q is not an email address", a)})
		}
	}
	unit, agent := cfgString(cfg, "unit"), cfgString(cfg, "agent")
	if unit != "" && unit != notifyResourceUnit && cfgInt(cfg, "unit") <= 0 {
		ps = append(ps, Problem{Path: "config.unit", Code: "unit", Message: `must be a unit ID or "resource"`})
	}
	if agent != "" && agent != notifyAssigned && cfgInt(cfg, "agent") <= 0 {
		ps = append(ps, Problem{Path: "config.agent", Code: "agent", Message: `must be an agent ID or "assigned"`})
	}
	if len(emails) == 0 && unit == "" && agent == "" {
		ps = append(ps, Problem{Path: "config.emails", Code: "required", Message: "name addresses, a unit or an agent to notify"})
	}
	return ps
}

// Run mails each recipient separately, agents in their own language, so that no one sees
// the others' addresses.
func (notifyTask) Run(ctx context.Context, tc *TaskContext) (Result, error) {
	type recipient struct{ email, lang string }
	var to []recipient
	seen := map[string]bool{}
	add := func(email, lang string) {
		k := strings.ToLower(email)
		if email == "" || seen[k] {
			return
		}
		seen[k] = true
		if lang == "" {
			lang = "fr"
		}
		to = append(to, recipient{email, lang})
	}
	for _, a := range cfgList(tc.Config, "emails") {
		add(a, "fr")
	}
	unit, agent := tc.ConfigString("unit"), tc.ConfigString("agent")
	if (unit != "" || agent != "") && tc.e.dir == nil {
		return Result{}, errs.New(errs.Unavailable, "workflow.error.no_directory")
	}
	var none []string // what was asked for but named no one, for the history
	if unit != "" {
		id := cfgInt(tc.Config, "unit")
		if unit == notifyResourceUnit {
			id = tc.Status.UnitID
		}
		var agents []kernel.Agent
		if id != 0 {
			var err error
			if agents, err = tc.e.dir.AgentsOfUnit(ctx, tc.Status.OrgID, id, cfgBool(tc.Config, "sub_units")); err != nil {
				return Result{}, err
			}
		}
		for _, a := range agents {
			add(a.Email, a.Lang)
		}
		if len(agents) == 0 {
			none = append(none, fmt.Sprintf("unit %d: no agent", id))
		}
	}
	if agent != "" {
		id := cfgInt(tc.Config, "agent")
		if agent == notifyAssigned {
			id = tc.Status.AgentID
		}
		a, ok := kernel.Agent{}, false
		if id != 0 {
			var err error
			if a, ok, err = tc.e.dir.Agent(ctx, tc.Status.OrgID, id); err != nil {
				return Result{}, err
			}
		}
		if ok {
			add(a.Email, a.Lang)
		} else {
			none = append(none, "no agent assigned")
		}
	}
	var names []string
	for _, r := range to {
		if err := tc.e.sendTemplate(ctx, tc, tc.ConfigString("template"), []string{r.email}, r.lang, nil, nil); err != nil {
			return Result{}, err
		}
		names = append(names, r.email)
	}
	return Result{Message: strings.Join(append(names, none...), ", ")}, nil
}

type assignTask struct{}

func (assignTask) Name() string  { return "assign" }
func (assignTask) Title() string { return "workflow.task.assign" }
func (assignTask) Fields() []ConfigField {
	return []ConfigField{{Name: "unit", Label: "workflow.cfg.unit", Kind: "unit"},
		{Name: "agent", Label: "workflow.cfg.agent", Kind: "text"},
		{Name: "actor", Label: "workflow.cfg.actor", Kind: "bool"}}
}
func (assignTask) Validate(_ *Definition, cfg map[string]any) []Problem {
	if cfgInt(cfg, "unit") == 0 && cfgInt(cfg, "agent") == 0 && !cfgBool(cfg, "actor") {
		return []Problem{{Path: "config", Code: "assign", Message: "name a unit, an agent, or assign to the agent running the action"}}
	}
	return nil
}
func (assignTask) Run(_ context.Context, tc *TaskContext) (Result, error) {
	var parts []string
	if u := cfgInt(tc.Config, "unit"); u != 0 {
		tc.Status.UnitID, tc.Status.AgentID = u, 0
		parts = append(parts, fmt.Sprintf("unit %d", u))
	}
	if a := cfgInt(tc.Config, "agent"); a != 0 {
		tc.Status.AgentID = a
		parts = append(parts, fmt.Sprintf("agent %d", a))
	}
	if cfgBool(tc.Config, "actor") && tc.Actor != nil {
		tc.Status.AgentID = tc.Actor.ID
		parts = append(parts, tc.Actor.Name)
	}
	return Result{Message: "→ " + strings.Join(parts, ", ")}, nil
}

type correctTask struct{}

func (correctTask) Name() string  { return "correct" }
func (correctTask) Title() string { return "workflow.task.correct" }
func (correctTask) Fields() []ConfigField {
	return []ConfigField{{Name: "fields", Label: "workflow.cfg.fields", Kind: "list", Required: true},
		{Name: "return_state", Label: "workflow.cfg.return_state", Kind: "state", Required: true},
		{Name: "template", Label: "workflow.cfg.template", Kind: "template", Required: true},
		{Name: "expires", Label: "workflow.cfg.expires", Kind: "text"}}
}
func (correctTask) Validate(d *Definition, cfg map[string]any) []Problem {
	ps := append(needTemplate(d, cfg, "template", true), needState(d, cfg, "return_state")...)
	if _, err := ParseDuration(cfgString(cfg, "expires")); err != nil {
		ps = append(ps, Problem{Path: "config.expires", Code: "delay", Message: err.Error()})
	}
	return ps
}
func (correctTask) Run(ctx context.Context, tc *TaskContext) (Result, error) {
	exp, _ := ParseDuration(tc.ConfigString("expires"))
	if exp == 0 {
		exp = 30 * 24 * time.Hour
	}
	fields := cfgList(tc.Config, "fields")
	fj, _ := json.Marshal(fields)
	tok := newHexToken()
	// The link stays valid while the resource stays in the state this action leads to.
	_, err := tc.Tx.ExecContext(ctx, `INSERT INTO workflow_corrections (resource_id, token_hash, fields, message, return_state,
 seq, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, tc.Status.internalID, hashToken(tok), string(fj),
		tc.Input.Comment, tc.ConfigString("return_state"), tc.Status.seq+1, tc.Now, tc.Now.Add(exp))
	if err != nil {
		return Result{}, fmt.Errorf("correction: %w", err)
	}
	d, err := tc.Describe(ctx)
	if err != nil {
		return Result{}, err
	}
	link := d.PublicURL + "?correction=" + tok
	if c, ok := tc.e.rtypes[tc.Status.Ref.Type].Provider.(Corrector); ok {
		link = c.CorrectionURL(tc.Status.Ref, tok)
	}
	link = tc.e.absolute(link)
	if d.CitizenEmail != "" {
		if err := tc.e.sendTemplate(ctx, tc, tc.ConfigString("template"), []string{d.CitizenEmail}, d.Lang,
			map[string]any{"link": link, "fields": fields}, nil); err != nil {
			return Result{}, err
		}
	}
	return Result{Message: strings.Join(fields, ", "), Public: true}, nil
}

type pdfTask struct{}

func (pdfTask) Name() string  { return "pdf" }
func (pdfTask) Title() string { return "workflow.task.pdf" }
func (pdfTask) Fields() []ConfigField {
	return []ConfigField{{Name: "template", Label: "workflow.cfg.template", Kind: "template", Required: true},
		{Name: "filename", Label: "workflow.cfg.filename", Kind: "text"},
		{Name: "mail_template", Label: "workflow.cfg.mail_template", Kind: "template"}}
}
func (pdfTask) Validate(d *Definition, cfg map[string]any) []Problem {
	return append(needTemplate(d, cfg, "template", true), needTemplate(d, cfg, "mail_template", false)...)
}
func (pdfTask) Run(ctx context.Context, tc *TaskContext) (Result, error) {
	title, body, err := tc.Render(ctx, tc.ConfigString("template"), false, nil)
	if err != nil {
		return Result{}, err
	}
	doc, err := makePDF(title, body, tc.Now)
	if err != nil {
		return Result{}, err
	}
	name := tc.ConfigString("filename")
	if name == "" {
		name = tc.ConfigString("template")
	}
	name = strings.TrimSuffix(name, ".pdf") + "-" + tc.Status.Ref.ID + ".pdf"
	if _, err := tc.e.addFile(ctx, tc.Tx, tc.Status, name, "application/pdf", doc); err != nil {
		return Result{}, fmt.Errorf("store pdf: %w", err)
	}
	if mt := tc.ConfigString("mail_template"); mt != "" {
		d, err := tc.Describe(ctx)
		if err != nil {
			return Result{}, err
		}
		if d.CitizenEmail != "" {
			att := []kernel.Attachment{{Name: name, ContentType: "application/pdf", Data: doc}}
			if err := tc.e.sendTemplate(ctx, tc, mt, []string{d.CitizenEmail}, d.Lang, nil, att); err != nil {
				return Result{}, err
			}
		}
	}
	return Result{Message: name, Public: true}, nil
}

func (e *engine) attachmentsOf(ctx context.Context, tc *TaskContext) []kernel.Attachment {
	rows, err := tc.Tx.QueryContext(ctx, `SELECT name, content_type, data FROM workflow_files WHERE resource_id = ? ORDER BY id`, tc.Status.internalID)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []kernel.Attachment
	for rows.Next() {
		var a kernel.Attachment
		if rows.Scan(&a.Name, &a.ContentType, &a.Data) == nil {
			out = append(out, a)
		}
	}
	return out
}

type callTask struct{}

func (callTask) Name() string  { return "call" }
func (callTask) Title() string { return "workflow.task.call" }
func (callTask) Fields() []ConfigField {
	return []ConfigField{{Name: "endpoint", Label: "workflow.cfg.endpoint", Kind: "text", Required: true},
		{Name: "answers", Label: "workflow.cfg.answers", Kind: "bool"}}
}
func (callTask) Validate(*Definition, map[string]any) []Problem { return nil }

// Run only queues the call: the job sends it, retries with backoff and records the answers,
// so a failing application never blocks the agent.
func (callTask) Run(ctx context.Context, tc *TaskContext) (Result, error) {
	key := tc.ConfigString("endpoint")
	var id int64
	err := tc.Tx.QueryRowContext(ctx, `SELECT id FROM workflow_endpoints WHERE org_id = ? AND key = ? AND active = TRUE`,
		tc.Status.OrgID, key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		// An endpoint removed or switched off is a failing application like any other: the
		// action goes on (an agent's decision, a "silence means acceptance" timer), and the
		// history says that nothing was sent.
		return Result{Message: key + ": no active endpoint, nothing sent"}, nil
	}
	if err != nil {
		return Result{}, err
	}
	doc := map[string]any{"resource": tc.Status.Ref, "workflow": tc.Status.Workflow, "action": tc.Action.Key,
		"from": tc.Status.State, "to": tc.Action.To, "fields": tc.Status.Fields}
	if cfgBool(tc.Config, "answers") {
		d, err := tc.Describe(ctx)
		if err != nil {
			return Result{}, err
		}
		doc["answers"] = d.Answers
	}
	idem := newHexToken()
	doc["id"], doc["event"] = idem, tc.Status.Ref.Type+".call"
	body, err := json.Marshal(doc)
	if err != nil {
		return Result{}, err
	}
	if err := tc.e.queueDelivery(ctx, tc.Tx, tc.Status, id, "call", tc.Status.Ref.Type+".call", idem, body); err != nil {
		return Result{}, err
	}
	return Result{Message: key}, nil
}

type setFieldTask struct{}

func (setFieldTask) Name() string  { return "set_field" }
func (setFieldTask) Title() string { return "workflow.task.set_field" }
func (setFieldTask) Fields() []ConfigField {
	return []ConfigField{{Name: "field", Label: "workflow.cfg.field", Kind: "text", Required: true},
		{Name: "value", Label: "workflow.cfg.value", Kind: "text"}}
}
func (setFieldTask) Validate(*Definition, map[string]any) []Problem { return nil }
func (setFieldTask) Run(_ context.Context, tc *TaskContext) (Result, error) {
	f := tc.ConfigString("field")
	v := tc.Config["value"]
	if s, ok := tc.Input.Values[f]; ok && v == nil {
		v = s // the agent typed it
	}
	tc.Status.Fields[f] = v
	return Result{Message: f + " = " + text(v)}, nil
}

type labelTask struct{}

func (labelTask) Name() string  { return "label" }
func (labelTask) Title() string { return "workflow.task.label" }
func (labelTask) Fields() []ConfigField {
	return []ConfigField{{Name: "add", Label: "workflow.cfg.add", Kind: "list"},
		{Name: "remove", Label: "workflow.cfg.remove", Kind: "list"}}
}
func (labelTask) Validate(_ *Definition, cfg map[string]any) []Problem {
	if len(cfgList(cfg, "add")) == 0 && len(cfgList(cfg, "remove")) == 0 {
		return []Problem{{Path: "config.add", Code: "required", Message: "add or remove at least one label"}}
	}
	return nil
}
func (labelTask) Run(_ context.Context, tc *TaskContext) (Result, error) {
	var out []string
	rm := cfgList(tc.Config, "remove")
	for _, l := range tc.Status.Labels {
		if !contains(rm, l) {
			out = append(out, l)
		}
	}
	for _, l := range cfgList(tc.Config, "add") {
		if !contains(out, l) {
			out = append(out, l)
		}
	}
	tc.Status.Labels = out
	return Result{Message: strings.Join(out, ", ")}, nil
}

type archiveTask struct{}

func (archiveTask) Name() string                                   { return "archive" }
func (archiveTask) Title() string                                  { return "workflow.task.archive" }
func (archiveTask) Fields() []ConfigField                          { return nil }
func (archiveTask) Validate(*Definition, map[string]any) []Problem { return nil }
func (archiveTask) Run(_ context.Context, tc *TaskContext) (Result, error) {
	tc.Status.Archived = true
	return Result{}, nil
}
