package appointments

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Short-lived in-memory caches of the hot reads: services, and the free-slot answers of
// availableTimeSlots and listAvailableSlots (the ANTS hub polls the same periods over and
// over). Invalidation: any change of capacity made by this process (book, cancel, expiry,
// generation, capacity, block) bumps slotGen after commit, and saving a service drops it
// from the cache, so this node never serves its own stale data. Another node's changes are
// seen after at most cacheTTL (a few seconds): that is the bounded staleness of a listing;
// a booking is always decided by the database, never by a cached answer.
const (
	cacheTTL     = 5 * time.Second
	cacheEntries = 512
)

type cacheEntry[V any] struct {
	at  time.Time
	gen uint64
	v   V
}

// ttlCache is a small map with a time-to-live and a generation; it is emptied when full
// rather than tracking recency: the working set (a few services, the hub's few periods) is
// far smaller than the bound.
type ttlCache[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]cacheEntry[V]
}

func (c *ttlCache[K, V]) get(k K, now time.Time, gen uint64) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || e.gen != gen || now.Sub(e.at) >= cacheTTL || now.Before(e.at) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[K, V]) put(k K, v V, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= cacheEntries {
		c.m = map[K]cacheEntry[V]{}
	}
	c.m[k] = cacheEntry[V]{at: now, gen: gen, v: v}
}

func (c *ttlCache[K, V]) drop(k K) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

type caches struct {
	slotGen  atomic.Uint64
	services ttlCache[int64, Service]
	answers  ttlCache[string, []byte]
	// grids are the hub's offers' slots (perf_hub.go).
	grids gridCache
	// slots remembers what never changes in the slots booked lately (their service, place
	// and times), so that a booking reads nothing before its transaction; the booking's
	// UPDATE returns them, and a slot deleted or reused since is seen there (booking.go).
	slotMu sync.Mutex
	slots  map[int64]Slot
	// off disables the answer cache (the benchmark measures the uncached path).
	off atomic.Bool
}

// slotsChanged is registered with tx.AfterCommit by every change of booked, capacity or
// the set of slots.
func (m *Module) slotsChanged() { m.cache.slotGen.Add(1) }

// service returns a service through the cache (hot paths: booking, listings, jobs).
func (m *Module) cachedService(ctx context.Context, id int64) (Service, error) {
	now := m.now()
	if s, ok := m.cache.services.get(id, now, 0); ok {
		return s, nil
	}
	s, err := m.Service(ctx, m.db.Read(), id)
	if err == nil {
		m.cache.services.put(id, s, now, 0)
	}
	return s, err
}

// cachedAnswer returns a cached response body for key, or computes and caches it.
func (m *Module) cachedAnswer(key string, compute func() ([]byte, error)) ([]byte, error) {
	now := m.now()
	gen := m.cache.slotGen.Load()
	if !m.cache.off.Load() {
		if b, ok := m.cache.answers.get(key, now, gen); ok {
			return b, nil
		}
	}
	b, err := compute()
	if err == nil && !m.cache.off.Load() {
		m.cache.answers.put(key, b, now, gen)
	}
	return b, err
}

const slotsRemembered = 1 << 16

func (c *caches) slot(id int64) (Slot, bool) {
	c.slotMu.Lock()
	defer c.slotMu.Unlock()
	s, ok := c.slots[id]
	return s, ok
}

// rememberSlot keeps what never changes in s.
func (c *caches) rememberSlot(s Slot) {
	c.slotMu.Lock()
	defer c.slotMu.Unlock()
	if c.slots == nil || len(c.slots) >= slotsRemembered {
		c.slots = map[int64]Slot{}
	}
	c.slots[s.ID] = Slot{ID: s.ID, PlaceID: s.PlaceID, ServiceID: s.ServiceID, Day: s.Day, Start: s.Start, End: s.End}
}

func (c *caches) forgetSlot(id int64) {
	c.slotMu.Lock()
	delete(c.slots, id)
	c.slotMu.Unlock()
}
