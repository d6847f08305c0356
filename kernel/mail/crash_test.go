package mail_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/riverqueue/river"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/mail"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

const crashEnv = "PARVIS_CRASH_CHILD_DATABASE"

// TestCrashChild is the child process of TestCrash: it commits changes, each with a mail
// queued in the same transaction, and prints each committed key ("C key") after commit; every
// fourth transaction queues its mail and then rolls back ("R key", printed before rollback).
// It loops until killed.
func TestCrashChild(t *testing.T) {
	dsn := os.Getenv(crashEnv)
	if dsn == "" {
		t.Skip("child process of TestCrash")
	}
	e := start(t, dsn, opts{noStart: true})
	ctx := context.Background()
	for i := 0; ; i++ {
		key := fmt.Sprintf("k%07d", i)
		rollback := i%4 == 3
		err := e.s.DB.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO crash_changes (k) VALUES (?)", key); err != nil {
				return err
			}
			err := e.mail.Send(ctx, tx, kernel.Mail{To: []string{key + "@example.org"}, Template: "kernel.mail/test", Data: key,
				Attachments: []kernel.Attachment{{Name: key + ".ics", ContentType: "text/calendar", Data: []byte("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")}}})
			if err != nil {
				return err
			}
			if rollback {
				fmt.Println("R", key)
				return errRollback
			}
			return nil
		})
		switch {
		case rollback && errors.Is(err, errRollback):
		case err != nil:
			fmt.Println("E", key, err)
			os.Exit(3)
		default:
			fmt.Println("C", key)
		}
	}
}

// TestCrash kills the child with SIGKILL partway, reopens the database and checks that every
// committed change has exactly one mail queued (with exactly one delivery job), and that no
// rolled-back change has one.
func TestCrash(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the child")
	}
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			dsn := storetest.URL(t, d)
			// Migrate, and create the table of "changes".
			e := start(t, dsn, opts{noStart: true})
			if _, err := e.s.DB.W.ExecContext(context.Background(), "CREATE TABLE crash_changes (k TEXT PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
			committed, rolledBack := runAndKill(t, dsn, 300)
			if len(committed) < 300 || len(rolledBack) == 0 {
				t.Fatalf("child committed %d and rolled back %d changes", len(committed), len(rolledBack))
			}

			// Restart: a fresh process state on the same database.
			e = start(t, dsn, opts{noStart: true})
			ctx := context.Background()
			changes := map[string]bool{}
			rows, err := e.s.DB.Read().QueryContext(ctx, "SELECT k FROM crash_changes")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var k string
				if err := rows.Scan(&k); err != nil {
					t.Fatal(err)
				}
				changes[k] = true
			}
			rows.Close()
			mailsByKey := map[string][]int64{}
			mailIDs := map[int64]bool{}
			rows, err = e.s.DB.Read().QueryContext(ctx, "SELECT id, recipients, status FROM mail_messages")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id int64
				var to, status string
				if err := rows.Scan(&id, &to, &status); err != nil {
					t.Fatal(err)
				}
				var addrs []string
				if err := json.Unmarshal([]byte(to), &addrs); err != nil || len(addrs) != 1 {
					t.Fatalf("mail %d recipients %q", id, to)
				}
				if status != mail.StatusQueued {
					t.Errorf("mail %d is %s, want queued (nothing works jobs here)", id, status)
				}
				k := strings.TrimSuffix(addrs[0], "@example.org")
				mailsByKey[k] = append(mailsByKey[k], id)
				mailIDs[id] = true
			}
			rows.Close()
			jobsByMail := map[int64]int{}
			res, err := e.jobs.Client().JobList(ctx, river.NewJobListParams().Kinds(mail.DeliverArgs{}.Kind()).First(10000))
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range res.Jobs {
				var a mail.DeliverArgs
				if err := json.Unmarshal(j.EncodedArgs, &a); err != nil {
					t.Fatal(err)
				}
				jobsByMail[a.MailID]++
			}

			for _, k := range committed {
				if !changes[k] {
					t.Errorf("committed change %s lost", k)
				}
				if n := len(mailsByKey[k]); n != 1 {
					t.Errorf("committed change %s has %d mails, want 1", k, n)
				}
			}
			for _, k := range rolledBack {
				if changes[k] || len(mailsByKey[k]) != 0 {
					t.Errorf("rolled-back change %s: stored %v, mails %v", k, changes[k], mailsByKey[k])
				}
			}
			// Also the last change, which may have committed without being printed: every
			// stored change has exactly one mail, every mail exactly one job, and nothing else.
			for k := range changes {
				if n := len(mailsByKey[k]); n != 1 {
					t.Errorf("stored change %s has %d mails, want 1", k, n)
				}
			}
			for k := range mailsByKey {
				if !changes[k] {
					t.Errorf("mail for %s, a change that is not stored", k)
				}
			}
			for id := range mailIDs {
				if jobsByMail[id] != 1 {
					t.Errorf("mail %d has %d delivery jobs, want 1", id, jobsByMail[id])
				}
			}
			if len(jobsByMail) != len(mailIDs) {
				t.Errorf("%d delivery jobs for %d mails", len(jobsByMail), len(mailIDs))
			}
			t.Logf("%s: %d committed and %d rolled back before SIGKILL; %d changes and %d mails stored",
				d, len(committed), len(rolledBack), len(changes), len(mailIDs))
		})
	}
}

// runAndKill re-executes this test binary as the child, SIGKILLs it once it has printed n
// committed keys, and returns every key it printed.
func runAndKill(t *testing.T, dsn string, n int) (committed, rolledBack []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dsn)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		kind, key, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "C":
			committed = append(committed, key)
		case "R":
			rolledBack = append(rolledBack, key)
		case "E":
			t.Errorf("child failed: %s", key)
		}
		if len(committed) == n && !killed {
			// Lines already written are still read below: they were committed too.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed: %v", err)
	}
	return committed, rolledBack
}
