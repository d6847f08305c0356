package appointments

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

const (
	rushAttempts = 2000
	rushSlots    = 30
	rushCapacity = 10 // 300 places
	secretKey    = "appointments-test-secret-key-0123456789abcdef"
)

// rushService adds a service whose only open day (Tuesday 3 March 2026, 09:00–16:30) has 30
// slots of 10 places, and returns the slot IDs.
func rushService(t testing.TB, f *fixture) []int64 {
	t.Helper()
	svc := Service{OrgID: f.org, CategoryID: f.svc.CategoryID, Name: "Rush", WindowDays: 60, HoldMinutes: 10, MaxUnits: 1}
	var err error
	if svc.ID, err = f.m.SaveService(f.ctx, svc); err != nil {
		t.Fatal(err)
	}
	tpl := Template{PlaceID: f.place.ID, ServiceID: svc.ID, ValidFrom: "2026-03-03", ValidTo: "2026-03-03", SlotMinutes: 15, Capacity: rushCapacity}
	tpl.Days[time.Tuesday] = []Range{{"09:00", "16:30"}}
	if _, err := f.m.SaveTemplate(f.ctx, tpl); err != nil {
		t.Fatal(err)
	}
	from, _ := time.ParseInLocation(dayLayout, "2026-03-03", f.m.loc)
	ss, err := f.m.Slots(f.ctx, SlotQuery{ServiceID: svc.ID, PlaceID: f.place.ID, From: from, To: from.AddDate(0, 0, 1)})
	if err != nil || len(ss) != rushSlots {
		t.Fatalf("rush slots: %d %v", len(ss), err)
	}
	ids := make([]int64, len(ss))
	for i, s := range ss {
		ids[i] = s.ID
	}
	return ids
}

type rushResult struct {
	created, full, other, failed atomic.Int64
	mu                           sync.Mutex
	refs                         []string
	others                       []string
}

// rush sends attempts createAppointment calls, 64 at a time, to the node chosen by pick.
func rush(t testing.TB, slots []int64, token string, attempts int, pick func(i int) string, onProgress func(i int)) *rushResult {
	res := &rushResult{}
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= attempts {
					return
				}
				if onProgress != nil {
					onProgress(i)
				}
				r := call(t, pick(i), "POST", "/api/appointments", token, map[string]any{"slot_id": slots[i%len(slots)],
					"name": fmt.Sprintf("Usager %d", i), "email": fmt.Sprintf("u%d@example.fr", i)})
				switch {
				case r.Status == 201:
					res.created.Add(1)
					ref, _ := r.JSON(t)["reference"].(string)
					res.mu.Lock()
					res.refs = append(res.refs, ref)
					res.mu.Unlock()
				case r.Status == 409 && strings.Contains(string(r.Body), `"code":"slot_full"`) && strings.Contains(string(r.Body), `"message":"`):
					res.full.Add(1)
				case r.Status == -1: // connection lost (a killed node): outcome unknown to the client
					res.failed.Add(1)
				default:
					res.other.Add(1)
					res.mu.Lock()
					res.others = append(res.others, fmt.Sprintf("%d %s", r.Status, r.Body))
					res.mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return res
}

func nodes(t *testing.T, d store.Dialect) (*fixture, *fixture) {
	clk := &testClock{t: start}
	opt := servertest.Options{Clock: clk, Env: []string{"PARVIS_TIMEZONE=Europe/Paris", "PARVIS_SECRET_KEY=" + secretKey}}
	if d == store.SQLite {
		f := fixtureOn(t, servertest.New(t, d, opt), clk, true)
		return f, nil
	}
	dsn := servertest.SharedURL(t, d)
	a := fixtureOn(t, servertest.NewNode(t, dsn, opt), clk, true)
	b := fixtureOn(t, servertest.NewNode(t, dsn, opt), clk, false)
	return a, b
}

// TestRush: 2,000 concurrent attempts on 300 places — one process on SQLite, two Parvis
// nodes sharing the database on PostgreSQL — give exactly 300 appointments, none beyond
// capacity, and every refusal says slot_full.
func TestRush(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			a, b := nodes(t, d)
			slots := rushService(t, a)
			pick := func(i int) string { return a.URL }
			if b != nil {
				pick = func(i int) string {
					if i%2 == 1 {
						return b.URL
					}
					return a.URL
				}
			}
			res := rush(t, slots, a.token, rushAttempts, pick, nil)
			if res.created.Load() != rushSlots*rushCapacity || res.full.Load() != rushAttempts-rushSlots*rushCapacity || res.other.Load()+res.failed.Load() != 0 {
				t.Fatalf("created %d, full %d, other %d, failed %d: %v", res.created.Load(), res.full.Load(), res.other.Load(), res.failed.Load(), first(res.others, 3))
			}
			if n := a.count(t, `SELECT COUNT(*) FROM appt_appointments WHERE status = 'confirmed' AND service_id = (SELECT service_id FROM appt_slots WHERE id = ?)`, slots[0]); n != 300 {
				t.Errorf("%d confirmed appointments, want 300", n)
			}
			checkAccounting(t, a)
		})
	}
}

func first(xs []string, n int) []string {
	if len(xs) > n {
		return xs[:n]
	}
	return xs
}

// TestRushWithKill repeats the rush across this process and a child Parvis process on the
// same database, killing the child (SIGKILL) mid-run: no place is lost or counted twice, and
// every appointment a client was told about is in the database.
func TestRushWithKill(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			clk := &testClock{t: start}
			opt := servertest.Options{Clock: clk, Env: []string{"PARVIS_TIMEZONE=Europe/Paris", "PARVIS_SECRET_KEY=" + secretKey}}
			dsn := servertest.SharedURL(t, d)
			a := fixtureOn(t, servertest.NewNode(t, dsn, opt), clk, true)
			slots := rushService(t, a)
			cmd := exec.Command(os.Args[0], "-test.run=^TestChildNode$", "-test.v")
			cmd.Env = append(os.Environ(), "APPT_CHILD_DSN="+dsn)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			childURL := ""
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if u, ok := strings.CutPrefix(sc.Text(), "CHILD_URL="); ok {
					childURL = u
					break
				}
			}
			if childURL == "" {
				t.Fatal("child node did not start")
			}
			go func() {
				for sc.Scan() {
				}
			}()
			var killed atomic.Bool
			pick := func(i int) string {
				if i%2 == 1 && !killed.Load() {
					return childURL
				}
				return a.URL
			}
			kill := func(i int) {
				if i == 400 && killed.CompareAndSwap(false, true) {
					_ = cmd.Process.Signal(syscall.SIGKILL)
				}
			}
			res := rush(t, slots, a.token, rushAttempts, pick, kill)
			if !killed.Load() {
				t.Fatal("the child was not killed")
			}
			if res.other.Load() != 0 {
				t.Errorf("unexpected answers: %v", first(res.others, 3))
			}
			// A request lost with the child may or may not have committed; all others are known.
			confirmed := a.count(t, `SELECT COUNT(*) FROM appt_appointments WHERE status = 'confirmed' AND service_id = (SELECT service_id FROM appt_slots WHERE id = ?)`, slots[0])
			if confirmed != 300 {
				t.Errorf("%d confirmed after the kill, want 300 (created %d, full %d, lost %d)", confirmed, res.created.Load(), res.full.Load(), res.failed.Load())
			}
			for _, ref := range res.refs {
				if a.count(t, `SELECT COUNT(*) FROM appt_appointments WHERE ref = ? AND status = 'confirmed'`, ref) != 1 {
					t.Errorf("appointment %s confirmed to a client is missing", ref)
				}
			}
			checkAccounting(t, a)
			t.Logf("created %d, full %d, lost with the child %d", res.created.Load(), res.full.Load(), res.failed.Load())
		})
	}
}

// TestChildNode is the child process of TestRushWithKill: a Parvis node on APPT_CHILD_DSN.
func TestChildNode(t *testing.T) {
	dsn := os.Getenv("APPT_CHILD_DSN")
	if dsn == "" {
		t.Skip("child process only")
	}
	clk := &testClock{t: start}
	s := servertest.NewNode(t, dsn, servertest.Options{Clock: clk, Env: []string{"PARVIS_TIMEZONE=Europe/Paris", "PARVIS_SECRET_KEY=" + secretKey}})
	fmt.Printf("CHILD_URL=%s\n", s.URL)
	select {} // until killed
}
