// Package standard is the default distribution of Parvis: the kernel's built-in parts and
// every module shipped with it. A town builds its own distribution by copying this file and
// adding or removing one import per module.
package standard

import (
	_ "parvis.org/parvis/kernel/builtin"       // the kernel's own parts: jobs, mail, audit, identity, citizens
	_ "parvis.org/parvis/modules/appointments" // appointments: services, slots, holds, planning, ANTS
	_ "parvis.org/parvis/modules/forms"        // form builder, filling, responses, API
	_ "parvis.org/parvis/modules/portal"       // sites, pages, news, search, page cache
	_ "parvis.org/parvis/modules/suites"       // suite files: install, export, catalogue; parvis doctor
	_ "parvis.org/parvis/modules/workflow"     // workflow engine, inbox, webhooks
)
