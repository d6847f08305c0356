package suites

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/audit"
	"parvis.org/parvis/kernel/config"
	"parvis.org/parvis/kernel/errs"
)

// Commands contributes `parvis suite …` and `parvis doctor`.
func (m *Module) Commands() []kernel.Command {
	return []kernel.Command{
		{Name: "suite list", Help: "list the built-in and uploaded suites, what they need and what is installed", Run: m.cmdList},
		{Name: "suite apply", Args: "FILE|NAME [--dry-run] [--org N]", Help: "install or update a suite (idempotent); --dry-run prints the plan", Run: m.cmdApply},
		{Name: "suite export", Args: "[--org N] [--only SECTIONS] [--name N] [--out FILE]", Help: "write the organisation's services as a suite file", Run: m.cmdExport},
		{Name: "suite schema", Help: "print the JSON Schema of suite files", Run: m.cmdSchema},
		{Name: "doctor", Help: "check the configuration and the running instance, and say what to fix",
			Run: func(context.Context, []string, io.Writer) error { return nil },
			Offline: func(ctx context.Context, cfg *config.Config, args []string, out io.Writer) error {
				return Doctor(ctx, cfg, out)
			}},
	}
}

// flags reads --name value / --name=value / --bool options anywhere among args.
func flags(args []string, bools map[string]bool) (map[string]string, []string, error) {
	opts, rest := map[string]string{}, []string(nil)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			rest = append(rest, a)
			continue
		}
		name, val, has := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if bools[name] {
			opts[name] = "true"
			continue
		}
		if !has {
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("%w: --%s needs a value", config.ErrUsage, name)
			}
			i++
			val = args[i]
		}
		opts[name] = val
	}
	return opts, rest, nil
}

func (m *Module) orgOf(ctx context.Context, opts map[string]string) (int64, error) {
	if s := opts["org"]; s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%w: --org must be an organisation number", config.ErrUsage)
		}
		if _, err := m.auth.Org(ctx, m.db.Read(), n); err != nil {
			return 0, fmt.Errorf("%w: no organisation %d", config.ErrUsage, n)
		}
		return n, nil
	}
	return m.auth.DefaultOrgID(ctx, m.db.Read())
}

func (m *Module) lang() string {
	if m.env.Config != nil && m.env.Config.Lang != "" {
		return m.env.Config.Lang
	}
	return "fr"
}

// describe renders an error for people: each problem of an invalid suite on its own line,
// "file:line:col: path: message".
func (m *Module) describe(lang string, err error) string {
	var inv *Invalid
	if errors.As(err, &inv) {
		lines := make([]string, len(inv.Problems))
		for i, p := range inv.Problems {
			lines[i] = fmt.Sprintf("%s:%d:%d: %s: %s", p.File, p.Line, p.Col, p.Path, m.env.I18n.T(lang, p.Key, p.Args...))
		}
		return strings.Join(lines, "\n")
	}
	if de, ok := errs.As(err); ok && de.Key != "" {
		msg := m.env.I18n.T(lang, de.Key, de.Args...)
		if de.Field != "" {
			msg = de.Field + ": " + msg
		}
		return msg
	}
	return err.Error()
}

func (m *Module) cmdList(ctx context.Context, args []string, out io.Writer) error {
	opts, _, err := flags(args, nil)
	if err != nil {
		return err
	}
	org, err := m.orgOf(ctx, opts)
	if err != nil {
		return err
	}
	cat, err := m.Catalogue(ctx, org)
	if err != nil {
		return err
	}
	lang := m.lang()
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tINSTALLED\tORIGIN\tNEEDS\tTITLE")
	for _, s := range cat {
		inst, _ := m.installed(ctx, m.db.Read(), org, s.Name)
		if inst == "" {
			inst = "-"
		}
		origin := "built-in"
		if !s.Builtin {
			origin = "uploaded"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Version, inst, origin, strings.Join(s.Requires, ","), s.Title)
	}
	tw.Flush()
	for _, s := range cat {
		if s.Problems != nil {
			fmt.Fprintf(out, "\n%s cannot be applied here:\n%s\n", s.Name, m.describe(lang, s.Problems))
		}
	}
	return nil
}

func (m *Module) cmdApply(ctx context.Context, args []string, out io.Writer) error {
	opts, rest, err := flags(args, map[string]bool{"dry-run": true})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: usage: parvis suite apply FILE|NAME [--dry-run] [--org N]", config.ErrUsage)
	}
	org, err := m.orgOf(ctx, opts)
	if err != nil {
		return err
	}
	ctx = audit.WithOrg(audit.WithActor(ctx, "cli"), org)
	lang := m.lang()
	s, err := m.ReadFile(ctx, org, rest[0])
	if err != nil {
		return errors.New(m.describe(lang, err))
	}
	dry := opts["dry-run"] == "true"
	plan, err := m.Apply(ctx, org, s, dry)
	if plan != nil {
		m.printPlan(out, lang, plan)
	}
	if err != nil {
		return errors.New(m.describe(lang, err))
	}
	if dry {
		fmt.Fprintln(out, "dry run: nothing was changed")
	}
	return nil
}

func (m *Module) printPlan(out io.Writer, lang string, plan *Plan) {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	for _, st := range plan.Steps {
		why := ""
		if st.Reason != "" {
			why = m.env.I18n.T(lang, st.Reason, "suite", st.Other)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\n", st.Action, st.Suite, st.Section, st.Key, why)
	}
	tw.Flush()
	fmt.Fprintf(out, "%d to create, %d to update, %d unchanged, %d in conflict (left as the town has them)\n",
		plan.Count(Create), plan.Count(Update), plan.Count(Unchanged), plan.Count(Conflict))
}

func (m *Module) cmdExport(ctx context.Context, args []string, out io.Writer) error {
	opts, rest, err := flags(args, nil)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: usage: parvis suite export [--org N] [--only SECTIONS] [--name N] [--title T] [--version V] [--out FILE]", config.ErrUsage)
	}
	org, err := m.orgOf(ctx, opts)
	if err != nil {
		return err
	}
	eo := ExportOptions{Name: opts["name"], Title: opts["title"], Version: opts["version"], Description: opts["description"]}
	if o := opts["only"]; o != "" {
		eo.Only = strings.Split(o, ",")
	}
	b, err := m.Export(ctx, org, eo)
	if err != nil {
		return errors.New(m.describe(m.lang(), err))
	}
	if f := opts["out"]; f != "" {
		if err := os.WriteFile(f, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintln(out, "suite written to", f)
		return nil
	}
	_, err = out.Write(b)
	return err
}

func (m *Module) cmdSchema(_ context.Context, _ []string, out io.Writer) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(m.registry().schemaDoc)
}
