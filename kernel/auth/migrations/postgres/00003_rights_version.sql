-- +goose Up
-- rights_version counts the changes to what an organisation's agents may do: their roles'
-- grants, their roles and units, the unit tree. Triggers raise it in the transaction that
-- makes the change, so that a node which cached an agent's rights sees, in the same query
-- that checks the session or API token, whether they still hold (see authz.go).
ALTER TABLE auth_orgs ADD COLUMN rights_version BIGINT NOT NULL DEFAULT 1;

-- +goose StatementBegin
CREATE FUNCTION auth_rights_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    orgs BIGINT[];
BEGIN
    IF TG_TABLE_NAME IN ('auth_units', 'auth_roles') THEN
        IF TG_OP <> 'INSERT' THEN orgs := orgs || OLD.org_id; END IF;
        IF TG_OP <> 'DELETE' THEN orgs := orgs || NEW.org_id; END IF;
    ELSIF TG_TABLE_NAME = 'auth_grants' THEN
        IF TG_OP <> 'INSERT' THEN orgs := orgs || ARRAY(SELECT org_id FROM auth_roles WHERE id = OLD.role_id); END IF;
        IF TG_OP <> 'DELETE' THEN orgs := orgs || ARRAY(SELECT org_id FROM auth_roles WHERE id = NEW.role_id); END IF;
    ELSE -- auth_agent_roles, auth_agent_units
        IF TG_OP <> 'INSERT' THEN orgs := orgs || ARRAY(SELECT org_id FROM auth_agents WHERE id = OLD.agent_id); END IF;
        IF TG_OP <> 'DELETE' THEN orgs := orgs || ARRAY(SELECT org_id FROM auth_agents WHERE id = NEW.agent_id); END IF;
    END IF;
    UPDATE auth_orgs SET rights_version = rights_version + 1 WHERE id = ANY (orgs);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER auth_units_rights AFTER INSERT OR UPDATE OR DELETE ON auth_units
    FOR EACH ROW EXECUTE FUNCTION auth_rights_changed();
CREATE TRIGGER auth_roles_rights AFTER UPDATE OF org_id OR DELETE ON auth_roles
    FOR EACH ROW EXECUTE FUNCTION auth_rights_changed();
CREATE TRIGGER auth_grants_rights AFTER INSERT OR UPDATE OR DELETE ON auth_grants
    FOR EACH ROW EXECUTE FUNCTION auth_rights_changed();
CREATE TRIGGER auth_agent_roles_rights AFTER INSERT OR UPDATE OR DELETE ON auth_agent_roles
    FOR EACH ROW EXECUTE FUNCTION auth_rights_changed();
CREATE TRIGGER auth_agent_units_rights AFTER INSERT OR UPDATE OR DELETE ON auth_agent_units
    FOR EACH ROW EXECUTE FUNCTION auth_rights_changed();

-- +goose Down
DROP TRIGGER auth_units_rights ON auth_units;
DROP TRIGGER auth_roles_rights ON auth_roles;
DROP TRIGGER auth_grants_rights ON auth_grants;
DROP TRIGGER auth_agent_roles_rights ON auth_agent_roles;
DROP TRIGGER auth_agent_units_rights ON auth_agent_units;
DROP FUNCTION auth_rights_changed();
ALTER TABLE auth_orgs DROP COLUMN rights_version;
