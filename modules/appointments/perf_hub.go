package appointments

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"parvis.org/parvis/kernel/store"
)

// The ANTS hub asks for every free start of up to 200 meeting points over months: tens of
// thousands of entries. Reading each free slot from the database (one row each) cost most
// of the answer's time, so each offer's slots are kept in memory as a grid: their IDs and
// times, which never change for a slot, and the text of their date and time, written once.
// The grid stays valid while the offer's slots_version (raised by triggers on every insert,
// delete or move of its slots, on any node: migration 00004) is the one it was read at.
// Per answer, the database is asked only which slots of the period are free, as IDs, and
// of the two sets (free, or not free) the one expected to be smaller; then the versions
// are read again, and the answer is computed again if a grid changed meanwhile.

// offerGrid is the slots of one offer from a start on, in time order.
type offerGrid struct {
	version int64
	from    int64 // slots starting at or after from (Unix seconds)
	ids     []int64
	starts  []int64
	ends    []int64
	pos     map[int64]int32
	// dates[dateOff[i]:dateOff[i+1]] is slot i's start as the answer writes it (RFC 3339,
	// local time); its first ten bytes are the day of its callback URL.
	dates   []byte
	dateOff []int32
	// mid is the text between the date and the day: `","callback_url":"…/SVC/PLACE/`,
	// written with pre (the base URL, as JSON).
	mid []byte
	pre string
}

// appendEntry writes slot i's entry up to the number of documents, which ends it.
func (g *offerGrid) appendEntry(b []byte, i int32) []byte {
	date := g.dates[g.dateOff[i]:g.dateOff[i+1]]
	b = append(b, `{"datetime":"`...)
	b = append(b, date...)
	b = append(b, g.mid...)
	b = append(b, date[:10]...)
	b = append(b, "?creneau="...)
	b = strconv.AppendInt(b, g.ids[i], 10)
	return append(b, "&personnes="...)
}

// entrySize bounds the length of an entry of g.
func (g *offerGrid) entrySize(i int32) int {
	return int(g.dateOff[i+1]-g.dateOff[i]) + len(g.mid) + 13 + 10 + 9 + 20 + 11
}

// gridCache holds the grids of the offers the hub asked about, up to gridBudget slots.
type gridCache struct {
	mu    sync.Mutex
	m     map[[2]int64]*offerGrid
	slots int
	// nonFreePermille is the share of not-free slots in the last answer, which chooses the
	// smaller set to read next time.
	nonFreePermille atomic.Int64
}

// gridBudget bounds the slots kept (about 100 bytes each): beyond, the cache is emptied.
// An answer needing more builds its grids for itself alone.
const gridBudget = 250_000

func (c *gridCache) get(k [2]int64) *offerGrid {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *gridCache) put(k [2]int64, g *offerGrid) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[k]; old != nil {
		c.slots -= len(old.ids)
	}
	if c.m == nil || c.slots+len(g.ids) > gridBudget {
		c.m, c.slots = map[[2]int64]*offerGrid{}, 0
	}
	c.m[k] = g
	c.slots += len(g.ids)
}

// loadGrid reads the slots of an offer starting at or after from.
func (m *Module) loadGrid(ctx context.Context, o hubOffer, from int64, pre []byte) (*offerGrid, error) {
	rows, err := m.db.Read().QueryContext(ctx, `SELECT id, start_s, end_s FROM appt_slots WHERE place_id = ? AND service_id = ? AND start_s >= ?
		ORDER BY start_s`, o.place, o.svc, from)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	g := &offerGrid{version: o.version, from: from, pre: string(pre)}
	for rows.Next() {
		var id, s, e int64
		if err := rows.Scan(&id, &s, &e); err != nil {
			return nil, err
		}
		g.ids, g.starts, g.ends = append(g.ids, id), append(g.starts, s), append(g.ends, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	g.mid = append(append([]byte(`","callback_url":`), pre...), strconv.FormatInt(o.svc, 10)+"/"+strconv.FormatInt(o.place, 10)+"/"...)
	g.pos = make(map[int64]int32, len(g.ids))
	g.dateOff = make([]int32, 0, len(g.ids)+1)
	g.dates = make([]byte, 0, len(g.ids)*25)
	for i, id := range g.ids {
		g.pos[id] = int32(i)
		g.dateOff = append(g.dateOff, int32(len(g.dates)))
		g.dates = time.Unix(g.starts[i], 0).In(m.loc).AppendFormat(g.dates, time.RFC3339)
	}
	g.dateOff = append(g.dateOff, int32(len(g.dates)))
	return g, nil
}

// hubGrid finds the starts of the answer from the offers' grids and the IDs of the free (or
// of the not free) slots of the period. ok is false when an offer's slots changed while
// reading: the caller reads again.
func (m *Module) hubGrid(ctx context.Context, kept []hubOffer, minFrom, maxTo int64, docs int) (found gridFound, ok bool, err error) {
	found = gridFound{}
	if len(kept) == 0 {
		return found, true, nil
	}
	pre := m.hubCallbackPrefix()
	loadFrom := m.now().Add(-24 * time.Hour).Unix()
	grids := make([]*offerGrid, len(kept))
	var loaded []int
	total := 0
	for i, o := range kept {
		k := [2]int64{o.place, o.svc}
		g := m.cache.grids.get(k)
		if g == nil || o.version < 0 || g.version != o.version || g.from > minFrom || g.pre != string(pre) {
			if o.version < 0 {
				return nil, false, nil // generated by this call: read the version again
			}
			if g, err = m.loadGrid(ctx, o, min(loadFrom, minFrom), pre); err != nil {
				return nil, false, err
			}
			loaded = append(loaded, i)
		}
		grids[i] = g
		total += len(g.ids)
	}
	if total <= gridBudget {
		for _, i := range loaded {
			m.cache.grids.put([2]int64{kept[i].place, kept[i].svc}, grids[i])
		}
	}
	// Which slots of the period are free: one ID per row, of the smaller set.
	places, svcs := hubScanArgs(kept)
	nonFree := m.cache.grids.nonFreePermille.Load() <= 500
	from, cond := `appt_slots`, `booked < capacity AND blocked = 0`
	if nonFree {
		// On SQLite, a partial index holds exactly these (migration 00004).
		cond = `(booked >= capacity OR blocked <> 0)`
		if m.db.Dialect == store.SQLite {
			from = `appt_slots INDEXED BY appt_slots_not_free`
		}
	}
	args := append(append(places, svcs...), minFrom, maxTo)
	rows, err := m.db.Read().QueryContext(ctx, `SELECT id FROM `+from+` WHERE place_id IN (`+placeholders(len(places))+`)
		AND service_id IN (`+placeholders(len(svcs))+`) AND start_s >= ? AND start_s < ? AND `+cond, args...)
	if err != nil {
		return nil, false, err
	}
	// marks[i][p] is set for the slots the query returned.
	flat := make([]bool, total)
	marks := make([][]bool, len(grids))
	for i, g := range grids {
		marks[i], flat = flat[:len(g.ids):len(g.ids)], flat[len(g.ids):]
	}
	cur, returned := 0, 0
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, false, err
		}
		returned++
		// Rows come grouped by offer, so the offer of the last one is tried first.
		if p, hit := grids[cur].pos[id]; hit {
			marks[cur][p] = true
			continue
		}
		for i, g := range grids {
			if p, hit := g.pos[id]; hit {
				marks[i][p] = true
				cur = i
				break
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	// The grids must still be the offers' slots now that their state has been read.
	if same, err := m.sameVersions(ctx, kept, grids, places); err != nil || !same {
		return nil, false, err
	}
	inPeriod := 0
	var free []int32
	for i, o := range kept {
		g, mk := grids[i], marks[i]
		// The free slots of the period, in time order, as the scan would return them.
		free = free[:0]
		for p := range g.ids {
			if g.starts[p] < minFrom || g.starts[p] >= maxTo {
				continue
			}
			inPeriod++
			if mk[p] != nonFree {
				free = append(free, int32(p))
			}
		}
		need := o.perUnit * docs
		refs := found[o.place]
		if refs == nil {
			refs = make([]gridRef, 0, len(free))
		}
		for j, p := range free {
			if g.starts[p] < o.from || g.starts[p] >= o.to {
				continue
			}
			// need free slots following each other without a gap (a full one is a gap).
			fits := j+need <= len(free)
			for k := j + 1; fits && k < j+need; k++ {
				fits = g.starts[free[k]] == g.ends[free[k-1]]
			}
			if fits {
				refs = append(refs, gridRef{g: g, pos: p})
			}
		}
		found[o.place] = refs
	}
	if inPeriod > 0 {
		nf := returned
		if !nonFree {
			nf = inPeriod - returned
		}
		m.cache.grids.nonFreePermille.Store(int64(nf) * 1000 / int64(inPeriod))
	}
	return found, true, nil
}

// gridRef is a start of the answer: a slot of a grid.
type gridRef struct {
	g   *offerGrid
	pos int32
}

// gridFound lists the starts of each meeting point.
type gridFound map[int64][]gridRef

func (f gridFound) appendPlace(b []byte, place int64, tail []byte) []byte {
	for i, r := range f[place] {
		if i > 0 {
			b = append(b, ',')
		}
		b = r.g.appendEntry(b, r.pos)
		b = append(b, tail...)
	}
	return b
}

func (f gridFound) size() (size, n int) {
	for _, refs := range f {
		for _, r := range refs {
			size += r.g.entrySize(r.pos)
		}
		n += len(refs)
	}
	return size, n
}

// sameVersions reports whether every grid is still at its offer's slots_version.
func (m *Module) sameVersions(ctx context.Context, kept []hubOffer, grids []*offerGrid, places []any) (bool, error) {
	rows, err := m.db.Read().QueryContext(ctx, `SELECT place_id, service_id, slots_version FROM appt_offers WHERE place_id IN (`+
		placeholders(len(places))+`)`, places...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	now := map[[2]int64]int64{}
	for rows.Next() {
		var p, s, v int64
		if err := rows.Scan(&p, &s, &v); err != nil {
			return false, err
		}
		now[[2]int64{p, s}] = v
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	for i, o := range kept {
		if v, ok := now[[2]int64{o.place, o.svc}]; !ok || v != grids[i].version {
			return false, nil
		}
	}
	return true, nil
}
