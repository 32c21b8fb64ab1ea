// Package outbox is the durable queue between cellwarden's notifiers and
// the receivers they deliver to: a notification is written here, synced to
// disk, before it is sent, and removed only after the receiver has
// acknowledged it. A crash (even kill -9) or a receiver that is down for
// hours loses nothing: on the next start the queue is still there and is
// delivered in order.
//
// The outbox is a bbolt database with two buckets:
//
//   - "queue": one sub-bucket per target (a receiver), its entries keyed by
//     a sequence number that is global to the database, so keys are in
//     enqueue order within a target and across targets;
//   - "state": small keyed records the notifiers keep alongside the queue
//     (their alert groups), written in the same transaction as the entries
//     they produce, so the two never disagree after a crash.
//
// The queue is bounded: with Options.MaxEntries entries queued, enqueueing
// one more first drops the oldest entry of the whole outbox (the oldest
// news is the least useful one) and counts it by target (Dropped). The
// notifiers make that rare: a receiver that is down accumulates one entry
// per change of an alert group, not one per retry or per repeat.
//
// Delivery is at least once: an entry whose receiver answered but whose
// removal did not reach the disk before a crash is sent again. The entry's
// sequence number, with the database's random ID, is its idempotency key
// (Entry.Key).
package outbox

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DefaultMaxEntries is the capacity of an outbox when Options leave it 0.
const DefaultMaxEntries = 10000

var (
	bucketQueue = []byte("queue")
	bucketState = []byte("state")
	bucketMeta  = []byte("meta")
	keyID       = []byte("id")
)

// Options tune Open.
type Options struct {
	// MaxEntries bounds the number of queued entries (DefaultMaxEntries
	// when 0).
	MaxEntries int
	// LockTimeout is how long Open waits for another process holding the
	// database to let go (1 s when 0).
	LockTimeout time.Duration
}

// Outbox is an open outbox database. It is safe for concurrent use.
type Outbox struct {
	db  *bolt.DB
	id  string
	max int

	// wmu serialises Update so that a transaction sees the counts of the
	// one committed before it.
	wmu sync.Mutex

	mu      sync.Mutex
	counts  map[string]int
	total   int
	dropped map[string]uint64
}

// Entry is one queued notification.
type Entry struct {
	// Seq orders entries; it is unique within the database.
	Seq uint64
	// Target names the receiver the entry is for.
	Target string
	// Data is the notification as the notifier stored it. It belongs to
	// the caller.
	Data []byte
}

// Open opens (creating if needed) the outbox database at path.
func Open(path string, opts Options) (*Outbox, error) {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	o := &Outbox{db: db, max: opts.MaxEntries, counts: map[string]int{}, dropped: map[string]uint64{}}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketQueue, bucketState, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if id := meta.Get(keyID); id != nil {
			o.id = string(id)
		} else {
			var b [8]byte
			if _, err := rand.Read(b[:]); err != nil {
				return err
			}
			o.id = hex.EncodeToString(b[:])
			if err := meta.Put(keyID, []byte(o.id)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketQueue).ForEachBucket(func(k []byte) error {
			n := tx.Bucket(bucketQueue).Bucket(k).Stats().KeyN
			o.counts[string(k)] = n
			o.total += n
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	return o, nil
}

// Close closes the database. Entries stay queued for the next Open.
func (o *Outbox) Close() error { return o.db.Close() }

// ID is the database's random identity, created with it.
func (o *Outbox) ID() string { return o.id }

// Key is the idempotency key of entry seq: the database's ID and the
// sequence number. It is the same on every delivery attempt of the entry,
// across restarts, and differs between entries and between databases.
func (o *Outbox) Key(seq uint64) string { return fmt.Sprintf("%s-%d", o.id, seq) }

// Capacity is the most entries the outbox holds.
func (o *Outbox) Capacity() int { return o.max }

// Tx is a write transaction of Update.
type Tx struct {
	o     *Outbox
	tx    *bolt.Tx
	delta map[string]int
	drops map[string]uint64
}

// Update runs fn in one transaction and syncs it to disk before returning.
// Either everything fn wrote is durable or, when fn or the commit fails,
// nothing is.
func (o *Outbox) Update(fn func(*Tx) error) error {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	t := &Tx{o: o, delta: map[string]int{}, drops: map[string]uint64{}}
	err := o.db.Update(func(tx *bolt.Tx) error {
		t.tx = tx
		return fn(t)
	})
	if err != nil {
		return err
	}
	o.mu.Lock()
	for k, d := range t.delta {
		o.counts[k] += d
		o.total += d
	}
	for k, n := range t.drops {
		o.dropped[k] += n
	}
	o.mu.Unlock()
	return nil
}

// pending is the number of entries queued, counting this transaction's.
func (t *Tx) pending() int {
	t.o.mu.Lock()
	n := t.o.total
	t.o.mu.Unlock()
	for _, d := range t.delta {
		n += d
	}
	return n
}

// Enqueue appends data to target's queue. When the outbox is full it
// first drops the oldest entry of the whole outbox. It returns the new
// entry's sequence number.
func (t *Tx) Enqueue(target string, data []byte) (uint64, error) {
	if target == "" {
		return 0, errors.New("outbox: empty target")
	}
	for t.pending() >= t.o.max {
		if err := t.dropOldest(); err != nil {
			return 0, err
		}
	}
	q := t.tx.Bucket(bucketQueue)
	b, err := q.CreateBucketIfNotExists([]byte(target))
	if err != nil {
		return 0, err
	}
	seq, err := q.NextSequence()
	if err != nil {
		return 0, err
	}
	if err := b.Put(seqKey(seq), data); err != nil {
		return 0, err
	}
	t.delta[target]++
	return seq, nil
}

// dropOldest deletes the entry with the smallest sequence number.
func (t *Tx) dropOldest() error {
	q := t.tx.Bucket(bucketQueue)
	var (
		oldest uint64
		target []byte
	)
	err := q.ForEachBucket(func(name []byte) error {
		k, _ := q.Bucket(name).Cursor().First()
		if k != nil && (target == nil || binary.BigEndian.Uint64(k) < oldest) {
			oldest, target = binary.BigEndian.Uint64(k), slices.Clone(name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if target == nil {
		return errors.New("outbox: full but no entry to drop")
	}
	if err := q.Bucket(target).Delete(seqKey(oldest)); err != nil {
		return err
	}
	t.delta[string(target)]--
	t.drops[string(target)]++
	return nil
}

// PutState stores a state record under key.
func (t *Tx) PutState(key string, value []byte) error {
	return t.tx.Bucket(bucketState).Put([]byte(key), value)
}

// DeleteState removes the state record key, if there is one.
func (t *Tx) DeleteState(key string) error {
	return t.tx.Bucket(bucketState).Delete([]byte(key))
}

// States calls fn for every state record in key order. value is valid only
// during the call.
func (o *Outbox) States(fn func(key string, value []byte) error) error {
	return o.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketState).ForEach(func(k, v []byte) error { return fn(string(k), v) })
	})
}

// Oldest returns the oldest queued entry of target, false when its queue
// is empty.
func (o *Outbox) Oldest(target string) (Entry, bool, error) {
	var e Entry
	found := false
	err := o.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQueue).Bucket([]byte(target))
		if b == nil {
			return nil
		}
		k, v := b.Cursor().First()
		if k == nil {
			return nil
		}
		e = Entry{Seq: binary.BigEndian.Uint64(k), Target: target, Data: slices.Clone(v)}
		found = true
		return nil
	})
	return e, found, err
}

// Ack removes entry seq of target after its delivery. Removing an entry
// that is gone (dropped when the outbox was full) is not an error.
func (o *Outbox) Ack(target string, seq uint64) error {
	return o.Update(func(t *Tx) error {
		b := t.tx.Bucket(bucketQueue).Bucket([]byte(target))
		if b == nil || b.Get(seqKey(seq)) == nil {
			return nil
		}
		t.delta[target]--
		return b.Delete(seqKey(seq))
	})
}

// Len returns the number of entries queued for target.
func (o *Outbox) Len(target string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[target]
}

// Total returns the number of entries queued for every target.
func (o *Outbox) Total() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.total
}

// Dropped returns, by target, how many entries were dropped because the
// outbox was full since it was opened.
func (o *Outbox) Dropped() map[string]uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.dropped)
}

// Targets returns the targets that have or had entries, sorted.
func (o *Outbox) Targets() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Sorted(maps.Keys(o.counts))
}

// Size returns the size of the database file in bytes.
func (o *Outbox) Size() int64 {
	var n int64
	o.db.View(func(tx *bolt.Tx) error {
		n = tx.Size()
		return nil
	})
	return n
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}
