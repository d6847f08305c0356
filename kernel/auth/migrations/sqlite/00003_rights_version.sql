-- +goose Up
-- rights_version counts the changes to what an organisation's agents may do: their roles'
-- grants, their roles and units, the unit tree. Triggers raise it in the transaction that
-- makes the change, so that a node which cached an agent's rights sees, in the same query
-- that checks the session or API token, whether they still hold (see authz.go).
ALTER TABLE auth_orgs ADD COLUMN rights_version INTEGER NOT NULL DEFAULT 1;

-- +goose StatementBegin
CREATE TRIGGER auth_units_rights_ins AFTER INSERT ON auth_units BEGIN
    UPDATE auth_orgs SET rights_version = rights_version + 1 WHERE id = NEW.org_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER auth_units_rights_upd AFTER UPDATE ON auth_units BEGIN
    UPDATE auth_orgs SET rights_version = rights_version + 1 WHERE id IN (OLD.org_id, NEW.org_id);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER auth_units_rights_del AFTER DELETE ON auth_units BEGIN
    UPDATE auth_orgs SET rights_version = rights_version + 1 WHERE id = OLD.org_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER auth_roles_rights_upd AFTER UPDATE OF org_id ON auth_roles BEGIN
    UPDATE auth_orgs SET rights_version = rights_version + 1 WHERE id IN (OLD.org_id, NEW.org_id);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER auth_roles_rights_del AFTER DELETE ON auth_roles BEGIN
    UPDATE auth_orgs SET rights_version = rights_version + 1 WHERE id = OLD.org_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER auth_grants_rights_ins AFTER INSERT ON auth_grants BEGIN
    UPDATE auth_orgs SET rights_version = rights_version + 1 WHERE id = (SELECT org_id FROM auth_roles WHERE id = NEW.role_id);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER auth_grants_rights_upd AFTER UPDATE ON auth_grants BEGIN
    UPDATE auth_orgs SET rights_version = rights_version + 1 WHERE id IN (SELECT org_id FROM auth_roles WHERE id IN (OLD.role_id, NEW.role_id));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER auth_grants_rights_del AFTER DELETE ON auth_grants BEGIN
    UPDATE auth_orgs SET rights_version = rights_version + 1 WHERE id = (SELECT org_id FROM auth_roles WHERE id = OLD.role_id);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER auth_agent_roles_rights_ins AFTER INSERT ON auth_agent_roles BEGIN
    UPDATE auth_orgs SET rights_version = rights_version + 1 WHERE id = (SELECT org_id FROM auth_agents WHERE id = NEW.agent_id);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER auth_agent_roles_rights_upd AFTER UPDATE ON auth_agent_roles BEGIN
    UPDATE auth_orgs SET rights_version = rights_version + 1 WHERE id IN (SELECT org_id FROM auth_agents WHERE id IN (OLD.agent_id, NEW.agent_id));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER auth_agent_roles_rights_del AFTER DELETE ON auth_agent_roles BEGIN
    UPDATE auth_orgs SET rights_version = rights_version + 1 WHERE id = (SELECT org_id FROM auth_agents WHERE id = OLD.agent_id);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER auth_agent_units_rights_ins AFTER INSERT ON auth_agent_units BEGIN
    UPDATE auth_orgs SET rights_version = rights_version + 1 WHERE id = (SELECT org_id FROM auth_agents WHERE id = NEW.agent_id);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER auth_agent_units_rights_upd AFTER UPDATE ON auth_agent_units BEGIN
    UPDATE auth_orgs SET rights_version = rights_version + 1 WHERE id IN (SELECT org_id FROM auth_agents WHERE id IN (OLD.agent_id, NEW.agent_id));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER auth_agent_units_rights_del AFTER DELETE ON auth_agent_units BEGIN
    UPDATE auth_orgs SET rights_version = rights_version + 1 WHERE id = (SELECT org_id FROM auth_agents WHERE id = OLD.agent_id);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER auth_units_rights_ins;
DROP TRIGGER auth_units_rights_upd;
DROP TRIGGER auth_units_rights_del;
DROP TRIGGER auth_roles_rights_upd;
DROP TRIGGER auth_roles_rights_del;
DROP TRIGGER auth_grants_rights_ins;
DROP TRIGGER auth_grants_rights_upd;
DROP TRIGGER auth_grants_rights_del;
DROP TRIGGER auth_agent_roles_rights_ins;
DROP TRIGGER auth_agent_roles_rights_upd;
DROP TRIGGER auth_agent_roles_rights_del;
DROP TRIGGER auth_agent_units_rights_ins;
DROP TRIGGER auth_agent_units_rights_upd;
DROP TRIGGER auth_agent_units_rights_del;
ALTER TABLE auth_orgs DROP COLUMN rights_version;
