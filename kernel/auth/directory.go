package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"parvis.org/parvis/kernel"
)

// Directory lists agents, for modules that notify people rather than check rights (the
// Authorizer answers "may this agent…", never "who are the agents of…").
// Published with kernel.Provide[auth.Directory]; only active agents are returned.
type Directory interface {
	// AgentsOfUnit returns the active agents who are members of the unit (and, with
	// withSubUnits, of its sub-units), ordered by ID; an unknown unit of the
	// organisation gives none.
	AgentsOfUnit(ctx context.Context, orgID, unitID int64, withSubUnits bool) ([]kernel.Agent, error)
	// Agent returns one active agent of the organisation; ok is false when there is none.
	Agent(ctx context.Context, orgID, agentID int64) (a kernel.Agent, ok bool, err error)
	// Units lists the organisation's units in tree order, each with its depth (for the
	// filters and choices of other modules' pages).
	Units(ctx context.Context, orgID int64) ([]Unit, error)
}

type directory struct{ st *Store }

var _ Directory = directory{}

func (d directory) AgentsOfUnit(ctx context.Context, orgID, unitID int64, withSubUnits bool) ([]kernel.Agent, error) {
	q := d.st.DB.Read()
	parents, err := d.st.unitParents(ctx, q, orgID)
	if err != nil {
		return nil, err
	}
	units := []int64{unitID}
	if withSubUnits {
		units = descendants(parents, units)
	} else if _, ok := parents[unitID]; !ok {
		units = nil // not a unit of this organisation
	}
	if len(units) == 0 {
		return nil, nil
	}
	args := []any{orgID}
	for _, u := range units {
		args = append(args, u)
	}
	rows, err := q.QueryContext(ctx, `SELECT id, org_id, email, name, lang FROM auth_agents a
 WHERE a.org_id = ? AND a.active = TRUE AND EXISTS (SELECT 1 FROM auth_agent_units au
 WHERE au.agent_id = a.id AND au.unit_id IN (?`+strings.Repeat(", ?", len(units)-1)+`)) ORDER BY a.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("agents of unit: %w", err)
	}
	defer rows.Close()
	var out []kernel.Agent
	for rows.Next() {
		var a kernel.Agent
		if err := rows.Scan(&a.ID, &a.OrgID, &a.Email, &a.Name, &a.Lang); err != nil {
			return nil, fmt.Errorf("agents of unit: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (d directory) Agent(ctx context.Context, orgID, agentID int64) (kernel.Agent, bool, error) {
	var a kernel.Agent
	err := d.st.DB.Read().QueryRowContext(ctx, `SELECT id, org_id, email, name, lang FROM auth_agents
 WHERE id = ? AND org_id = ? AND active = TRUE`, agentID, orgID).Scan(&a.ID, &a.OrgID, &a.Email, &a.Name, &a.Lang)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return kernel.Agent{}, false, nil
		}
		return kernel.Agent{}, false, fmt.Errorf("agent: %w", err)
	}
	return a, true, nil
}

func (d directory) Units(ctx context.Context, orgID int64) ([]Unit, error) {
	return d.st.Units(ctx, d.st.DB.Read(), orgID)
}
